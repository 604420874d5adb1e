"""S3 objects: list, head, upload and download, one AWS thing per function.

Every function takes a client and raises pipectl errors that name the bucket and key;
nothing above this module inspects botocore's ClientError. Transfers go through
boto3's transfer manager (multipart, concurrency, retries, atomic downloads).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3.exceptions
import botocore.exceptions
from boto3.s3.transfer import TransferConfig

from pipectl.aws.session import error_code
from pipectl.errors import AwsError, NotFound, PipectlError

MiB = 1024 * 1024
# Part size 8 MiB: S3 allows at most 10,000 parts, so a single object up to ~78 GiB.
# max_concurrency is per file; the CLI runs several files at once on top of it, and
# the client's connection pool (32) is shared by all of them.
DEFAULT_TRANSFER_CONFIG = TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB,
                                         max_concurrency=4, use_threads=True)
# S3 computes the SHA-256 of what it receives and rejects the PUT (or each part, and the
# completed multipart object) when it differs from the one the client sent.
UPLOAD_EXTRA_ARGS = {"ChecksumAlgorithm": "SHA256"}

_NO_BUCKET = ("NoSuchBucket",)
_NOT_FOUND = ("404", "NoSuchKey", "NotFound")
_DENIED = ("403", "AccessDenied", "Forbidden")


@dataclass(frozen=True)
class ObjectSummary:
    key: str
    size: int
    last_modified: datetime | None
    storage_class: str
    etag: str | None = None


def uri(bucket: str, key: str = "") -> str:
    return f"s3://{bucket}/{key}"


def no_such_bucket(bucket: str) -> NotFound:
    return NotFound(f"bucket '{bucket}' does not exist (run `pipectl deploy`?)")


def _translate(exc: botocore.exceptions.ClientError, bucket: str, key: str | None,
               action: str) -> PipectlError:
    code = error_code(exc)
    message = exc.response.get("Error", {}).get("Message", "") or code
    where = uri(bucket, key or "")
    if code in _NO_BUCKET:
        return no_such_bucket(bucket)
    if code in _NOT_FOUND:
        return NotFound(f"{where} not found")
    if code in _DENIED:
        return AwsError(f"access denied to {where} ({action}): {message}")
    if code in ("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "InvalidRequest"):
        return AwsError(f"S3 rejected {action} of {where}: {code}: {message}")
    return AwsError(f"{action} {where} failed: {code}: {message}")


def bucket_exists(client: Any, bucket: str) -> bool | None:
    """True or False; None when S3 answers 403 (the bucket exists, maybe in another account)."""
    try:
        client.head_bucket(Bucket=bucket)
        return True
    except botocore.exceptions.ClientError as exc:
        code = error_code(exc)
        if code in _NO_BUCKET or code in _NOT_FOUND:
            return False
        if code in _DENIED:
            return None
        raise _translate(exc, bucket, None, "checking bucket") from None


def require_bucket(client: Any, bucket: str) -> None:
    """NotFound naming the bucket unless it exists. A 403 passes: uploaders often may
    PutObject without ListBucket, and the transfer itself will tell."""
    if bucket_exists(client, bucket) is False:
        raise no_such_bucket(bucket)


def iter_objects(client: Any, bucket: str, prefix: str = "", delimiter: str | None = None
                 ) -> Iterator[str | ObjectSummary]:
    """Common prefixes (str) and objects under prefix, page after page (1,000 per page)."""
    kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
    if delimiter:
        kwargs["Delimiter"] = delimiter
    try:
        for page in client.get_paginator("list_objects_v2").paginate(**kwargs):
            for common in page.get("CommonPrefixes", []):
                yield common["Prefix"]
            for obj in page.get("Contents", []):
                yield ObjectSummary(key=obj["Key"], size=int(obj.get("Size", 0)),
                                    last_modified=obj.get("LastModified"),
                                    storage_class=obj.get("StorageClass", "STANDARD"),
                                    etag=obj.get("ETag"))
    except botocore.exceptions.ClientError as exc:
        raise _translate(exc, bucket, prefix, "listing") from None


def list_objects(client: Any, bucket: str, prefix: str = "", delimiter: str | None = None
                 ) -> tuple[list[str], list[ObjectSummary]]:
    prefixes: list[str] = []
    objects: list[ObjectSummary] = []
    for item in iter_objects(client, bucket, prefix, delimiter):
        (prefixes if isinstance(item, str) else objects).append(item)  # type: ignore[arg-type]
    return prefixes, objects


def head_object(client: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """The object's metadata, or None when there is no such key (or no such bucket:
    a HEAD response has no body, so S3 cannot say which)."""
    try:
        return client.head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in _NOT_FOUND or error_code(exc) in _NO_BUCKET:
            return None
        raise _translate(exc, bucket, key, "reading metadata of") from None


def upload_file(client: Any, path: Path, bucket: str, key: str, *,
                config: TransferConfig = DEFAULT_TRANSFER_CONFIG,
                callback: Callable[[int], None] | None = None) -> None:
    """Upload one file, multipart above config.multipart_threshold, checksummed by S3."""
    try:
        client.upload_file(str(path), bucket, key, ExtraArgs=dict(UPLOAD_EXTRA_ARGS),
                           Callback=callback, Config=config)
    except boto3.exceptions.S3UploadFailedError as exc:
        # boto3 wraps the ClientError it caught; its code says what went wrong.
        cause = exc.__context__
        if isinstance(cause, botocore.exceptions.ClientError):
            raise _translate(cause, bucket, key, "uploading") from None
        raise AwsError(f"uploading {uri(bucket, key)} failed: {exc}") from None
    except botocore.exceptions.ClientError as exc:
        raise _translate(exc, bucket, key, "uploading") from None
    except boto3.exceptions.RetriesExceededError as exc:
        raise AwsError(f"uploading {uri(bucket, key)} failed after retries: "
                       f"{exc.last_exception}") from None


def download_file(client: Any, bucket: str, key: str, path: Path, *,
                  config: TransferConfig = DEFAULT_TRANSFER_CONFIG,
                  callback: Callable[[int], None] | None = None) -> None:
    """Download one object. boto3 writes to a temporary file next to path and renames it
    into place only when complete, so path never holds a partial object."""
    try:
        client.download_file(bucket, key, str(path), Callback=callback, Config=config)
    except botocore.exceptions.ClientError as exc:
        raise _translate(exc, bucket, key, "downloading") from None
    except boto3.exceptions.RetriesExceededError as exc:
        raise AwsError(f"downloading {uri(bucket, key)} failed after retries: "
                       f"{exc.last_exception}") from None
