"""S3 objects: list, head, upload and download, one AWS thing per function.

Every function takes a client and raises pipectl errors that name the bucket and key;
nothing above this module inspects botocore's ClientError. Transfers go through
boto3's transfer manager (multipart, concurrency, retries, atomic downloads): one
`Transfers` per command, every file submitted to it, as `aws s3 cp --recursive` does.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import botocore.exceptions

from pipectl.aws.session import error_code
from pipectl.errors import AwsError, NotFound, PipectlError

if TYPE_CHECKING:
    # s3transfer (and boto3's transfer module) cost about 150 ms to import: loaded on
    # first use, so `pipectl --help` and `--version` do not pay for them.
    from boto3.s3.transfer import TransferConfig
    from s3transfer.futures import TransferFuture
    from s3transfer.manager import TransferManager

MiB = 1024 * 1024
# Part size 8 MiB: S3 allows at most 10,000 parts, so a single object up to ~78 GiB
# (s3transfer grows the part size beyond that, and part_size() follows it). One manager
# serves the whole command, so max_concurrency is requests in flight across all files;
# the client's connection pool (32) must hold them.
DEFAULT_CONCURRENCY = 10


@cache
def transfer_config(max_concurrency: int = DEFAULT_CONCURRENCY) -> TransferConfig:
    """The transfer settings, with max_concurrency requests in flight (--jobs)."""
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(multipart_threshold=8 * MiB, multipart_chunksize=8 * MiB,
                          max_concurrency=max_concurrency, use_threads=True)


def __getattr__(name: str) -> Any:
    if name == "DEFAULT_TRANSFER_CONFIG":   # built on first use, see TYPE_CHECKING above
        return transfer_config()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@cache
def transfer_errors() -> tuple[type[BaseException], ...]:
    """The errors one file's transfer can hit without the others being affected: botocore's
    own (a connection dropped mid-transfer) and the transfer manager's (a transfer cancelled
    after another one's fatal error)."""
    import s3transfer.exceptions

    return (botocore.exceptions.BotoCoreError, s3transfer.exceptions.CancelledError,
            s3transfer.exceptions.FatalError)


# S3 computes the SHA-256 of what it receives and rejects the PUT (or each part, and the
# completed multipart object) when it differs from the one the client sent.
UPLOAD_EXTRA_ARGS = {"ChecksumAlgorithm": "SHA256"}

_NO_BUCKET = ("NoSuchBucket",)
_NOT_FOUND = ("404", "NoSuchKey", "NotFound")
_DENIED = ("403", "AccessDenied", "Forbidden")


class AccessDenied(AwsError):
    """S3 answered 403 for the bucket or key."""


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
        return AccessDenied(f"access denied to {where} ({action}): {message}")
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


def read_if_exists(client: Any, bucket: str, key: str) -> bytes | None:
    """The object's bytes; None when there is no such key (GetObject's NoSuchKey or 404)."""
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in ("NoSuchKey", "404"):
            return None
        raise


def first_page(client: Any, bucket: str, prefix: str, max_keys: int
               ) -> tuple[list[dict[str, Any]], bool]:
    """One ListObjectsV2 page: the objects as S3 lists them, and whether more follow."""
    page = client.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=max_keys)
    return page.get("Contents", []), bool(page.get("IsTruncated"))


def listed_objects(client: Any, bucket: str) -> Iterator[dict[str, Any]]:
    """Every object in the bucket as ListObjectsV2 lists it, page after page."""
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        yield from page.get("Contents", [])


def object_sizes(client: Any, bucket: str, prefix: str) -> dict[str, int] | None:
    """Key -> size of every object under prefix; None when listing is denied (403)."""
    try:
        return {o.key: o.size for o in iter_objects(client, bucket, prefix)
                if isinstance(o, ObjectSummary)}
    except AccessDenied:
        return None


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
                config: TransferConfig | None = None,
                callback: Callable[[int], None] | None = None) -> None:
    """Upload one file, multipart above config.multipart_threshold, checksummed by S3."""
    import boto3.exceptions  # loaded with the client already; see DEFAULT_TRANSFER_CONFIG

    try:
        client.upload_file(str(path), bucket, key, ExtraArgs=dict(UPLOAD_EXTRA_ARGS),
                           Callback=callback, Config=config or transfer_config())
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
                  config: TransferConfig | None = None,
                  callback: Callable[[int], None] | None = None) -> None:
    """Download one object. boto3 writes to a temporary file next to path and renames it
    into place only when complete, so path never holds a partial object."""
    import boto3.exceptions

    try:
        client.download_file(bucket, key, str(path), Callback=callback,
                             Config=config or transfer_config())
    except botocore.exceptions.ClientError as exc:
        raise _translate(exc, bucket, key, "downloading") from None
    except boto3.exceptions.RetriesExceededError as exc:
        raise AwsError(f"downloading {uri(bucket, key)} failed after retries: "
                       f"{exc.last_exception}") from None


# ---------------------------------------------------------------- checksums

def part_size(size: int, config: TransferConfig | None = None) -> int | None:
    """The part size the transfer manager will use for a file of this size; None for a
    single PutObject (below the multipart threshold)."""
    from s3transfer.utils import ChunksizeAdjuster

    config = config or transfer_config()
    if size < config.multipart_threshold:
        return None
    return ChunksizeAdjuster().adjust_chunksize(config.multipart_chunksize, size)


def file_checksum(path: Path, size: int, config: TransferConfig | None = None) -> str:
    """The ChecksumSHA256 S3 reports for this file uploaded with config: the base64 SHA-256
    of the bytes for a single PUT; for a multipart upload the COMPOSITE form AWS documents,
    the SHA-256 of the parts' SHA-256 digests, then "-<parts>" (S3 offers no full-object
    SHA-256 for multipart uploads, only CRCs)."""
    part = part_size(size, config)
    with open(path, "rb") as f:
        if part is None:
            whole = hashlib.sha256()
            for chunk in iter(lambda: f.read(MiB), b""):
                whole.update(chunk)
            return _b64(whole.digest())
        digests = [hashlib.sha256(chunk).digest()
                   for chunk in iter(lambda: f.read(part), b"")]
    return f"{_b64(hashlib.sha256(b''.join(digests)).digest())}-{len(digests)}"


def same_checksum(a: str | None, b: str | None) -> bool:
    """Whether two ChecksumSHA256 values name the same bytes. The "-<parts>" suffix of a
    composite checksum is left out by some responses (GetObjectAttributes on AWS, moto's
    HeadObject), and the digest of the part digests already pins every part."""
    return a is not None and b is not None and a.split("-")[0] == b.split("-")[0]


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def object_checksum(client: Any, bucket: str, key: str) -> tuple[int, str | None] | None:
    """(size, ChecksumSHA256) of an object, the checksum None when it was stored without
    one; None when there is no such key. HeadObject returns checksums only when asked
    (ChecksumMode ENABLED), as "<base64>-<parts>" for a multipart object."""
    try:
        head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in _NOT_FOUND or error_code(exc) in _NO_BUCKET:
            return None
        raise _translate(exc, bucket, key, "reading metadata of") from None
    return int(head["ContentLength"]), head.get("ChecksumSHA256")


# ---------------------------------------------------------------- one transfer manager

class _Reporter:
    """Tells the manager the size we already know (so it needs no HeadObject or stat of its
    own) and forwards progress. s3transfer calls a subscriber's on_<event> methods by name
    (s3transfer.utils.get_callbacks), so this needs no BaseSubscriber at import time."""

    def __init__(self, size: int, callback: Callable[[int], None] | None):
        self.size, self.callback = size, callback

    def on_queued(self, future: TransferFuture, **kwargs: Any) -> None:
        future.meta.provide_transfer_size(self.size)

    def on_progress(self, future: TransferFuture, bytes_transferred: int, **kwargs: Any) -> None:
        if self.callback is not None:
            self.callback(bytes_transferred)


# botocore asks S3 for "100 Continue" before sending any file body: one more round trip
# per object, for nothing when the body is small. AWS's Go SDK sends the header only above
# 2 MB (ContinueHeaderThresholdBytes); so does pipectl.
_CONTINUE_THRESHOLD = 2 * MiB


def _no_continue_for_small_bodies(request: Any, **kwargs: Any) -> None:
    length = request.headers.get("Content-Length")
    if length is not None and int(length) < _CONTINUE_THRESHOLD:
        request.headers.pop("Expect", None)


class Transfers:
    """One s3transfer manager for a whole command: every file is submitted to it and shares
    its thread pool and connections. The responses of PutObject and CompleteMultipartUpload
    are kept per key, so an upload is verified by the checksum S3 returns, without a
    HeadObject. Leaving the block on an exception (Ctrl-C included) cancels whatever has not
    run yet and waits for requests already in flight."""

    _OPERATIONS = ("PutObject", "CompleteMultipartUpload")

    def __init__(self, client: Any, config: TransferConfig | None = None):
        self.client, self.config = client, config or transfer_config()
        self._responses: dict[tuple[str, str], dict[str, Any]] = {}
        self._sent: dict[tuple[str | None, str | None], str | None] = {}
        self._hook_id = f"pipectl-transfers-{next(_ids)}"
        self._manager: TransferManager | None = None

    def __enter__(self) -> Transfers:
        events = self.client.meta.events
        for operation in self._OPERATIONS:
            events.register(f"before-parameter-build.s3.{operation}", self._remember_target,
                            unique_id=f"{self._hook_id}-before-{operation}")
            events.register(f"after-call.s3.{operation}", self._keep_response,
                            unique_id=f"{self._hook_id}-after-{operation}")
        events.register_last("before-send.s3.PutObject", _no_continue_for_small_bodies,
                             unique_id=f"{self._hook_id}-expect")
        from s3transfer.manager import TransferManager

        self._manager = TransferManager(self.client, self.config)
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            if self._manager is not None:
                self._manager.__exit__(*exc)
        finally:
            events = self.client.meta.events
            events.unregister("before-send.s3.PutObject", unique_id=f"{self._hook_id}-expect")
            for operation in self._OPERATIONS:
                events.unregister(f"before-parameter-build.s3.{operation}",
                                  unique_id=f"{self._hook_id}-before-{operation}")
                events.unregister(f"after-call.s3.{operation}",
                                  unique_id=f"{self._hook_id}-after-{operation}")

    # botocore passes the same request context to both events of one API call.
    def _remember_target(self, params: dict[str, Any], context: dict[str, Any],
                         **kwargs: Any) -> None:
        target = (params.get("Bucket"), params.get("Key"))
        context["pipectl_target"] = target
        if "MultipartUpload" in params:
            self._sent[target] = composite_checksum(params["MultipartUpload"].get("Parts", []))
        else:
            self._sent[target] = params.get("ChecksumSHA256")

    def _keep_response(self, http_response: Any, parsed: dict[str, Any],
                       context: dict[str, Any], **kwargs: Any) -> None:
        target = context.get("pipectl_target")
        if target is not None and http_response is not None and http_response.status_code < 300:
            self._responses[target] = parsed

    def upload(self, path: Path, bucket: str, key: str, size: int, checksum: str | None, *,
               callback: Callable[[int], None] | None = None) -> TransferFuture:
        """Submit one file. A single PUT carries the SHA-256 we computed (S3 refuses the
        body if it differs); a multipart upload asks S3 for SHA-256 per part, which botocore
        computes and S3 checks."""
        extra: dict[str, Any] = dict(UPLOAD_EXTRA_ARGS)
        if checksum is not None and part_size(size, self.config) is None:
            extra["ChecksumSHA256"] = checksum
        assert self._manager is not None, "Transfers is a context manager"
        return self._manager.upload(str(path), bucket, key, extra_args=extra,
                                    subscribers=[_Reporter(size, callback)])

    def download(self, bucket: str, key: str, target: Path | BinaryIO, size: int, *,
                 callback: Callable[[int], None] | None = None) -> TransferFuture:
        """Submit one object. To a path the manager writes a temporary file beside it and
        renames it into place when complete; to a stream (stdout) it writes in order."""
        assert self._manager is not None, "Transfers is a context manager"
        return self._manager.download(bucket, key, str(target) if isinstance(target, Path)
                                      else target, subscribers=[_Reporter(size, callback)])

    def uploaded_checksum(self, bucket: str, key: str) -> str | None:
        """The ChecksumSHA256 S3 returned for the object it stored, or None."""
        return self._responses.get((bucket, key), {}).get("ChecksumSHA256")

    def sent_checksum(self, bucket: str, key: str) -> str | None:
        """The ChecksumSHA256 pipectl sent for the object: the header of a single PUT, or
        for a multipart upload the composite of the parts' checksums that botocore computed
        from the file and S3 checked part by part."""
        return self._sent.get((bucket, key))


def composite_checksum(parts: list[dict[str, Any]]) -> str | None:
    """AWS's COMPOSITE checksum of a multipart object from its parts' ChecksumSHA256
    values; None when a part has none."""
    digests = [p.get("ChecksumSHA256") for p in sorted(parts, key=lambda p: p["PartNumber"])]
    if not digests or any(d is None for d in digests):
        return None
    joined = b"".join(base64.b64decode(d) for d in digests if d is not None)
    return f"{_b64(hashlib.sha256(joined).digest())}-{len(digests)}"


_ids = itertools.count()


def wait(future: TransferFuture, bucket: str, key: str, action: str) -> None:
    """The outcome of one submitted transfer, as a pipectl error naming the object."""
    import s3transfer.exceptions

    try:
        future.result()
    except botocore.exceptions.ClientError as exc:
        raise _translate(exc, bucket, key, action) from None
    except s3transfer.exceptions.RetriesExceededError as exc:
        raise AwsError(f"{action} {uri(bucket, key)} failed after retries: "
                       f"{exc.last_exception}") from None
