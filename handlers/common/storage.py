"""S3 for the handlers: streamed reads, a bounded-memory JSON Lines writer, verified moves.

Every object version is its own input: reads and moves name the version they act on
(GetObject/CopyObject/DeleteObject VersionId), so an overwrite between the event and
the read neither swaps the bytes nor loses the older version.

"Not found" comes back as None / False; every other ClientError propagates (the
processor treats it as transient and lets SQS retry).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from botocore.exceptions import ClientError

from common import user_metadata

PART_SIZE = 8 * 1024 * 1024          # multipart part size (S3 minimum is 5 MiB)
COPY_OBJECT_LIMIT = 5 * 1024 ** 3    # CopyObject copies at most 5 GB in one request


class VerifyError(Exception):
    """A written or copied object does not match what was expected (transient: retry)."""

    transient = True


def _not_found(e: ClientError) -> bool:
    return e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound",
                                                            "NoSuchVersion")


@dataclass
class Source:
    body: BinaryIO
    size: int
    etag: str
    last_modified: datetime
    version_id: str | None = None   # None in a bucket that never had versioning


def open_object(s3, bucket: str, key: str, version_id: str | None = None) -> Source | None:
    """GetObject, streamed, of that version (else the current one); None when it does
    not exist. The Source names the version it read, so the move takes that one."""
    extra = {"VersionId": version_id} if version_id else {}
    try:
        r = s3.get_object(Bucket=bucket, Key=key, **extra)
    except ClientError as e:
        if _not_found(e):
            return None
        raise
    # An unversioned bucket answers no VersionId; a suspended one, "null" (still a version).
    return Source(body=r["Body"], size=r["ContentLength"], etag=r["ETag"],
                  last_modified=r["LastModified"], version_id=r.get("VersionId") or None)


def head(s3, bucket: str, key: str) -> dict | None:
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except ClientError as e:
        if _not_found(e):
            return None
        raise


class ObjectWriter:
    """Streams bytes to one S3 object: PutObject if it fits one part, else multipart.

    A full part uploads on a background thread while the next one fills, so the
    caller does not stop for every UploadPart round trip; with one part in flight
    memory stays at about two parts. On error the multipart upload is aborted, so
    no invisible parts are left behind (and billed).
    """

    def __init__(self, s3, bucket: str, key: str, content_type: str = "application/x-ndjson",
                 metadata: dict | None = None):
        self._s3 = s3
        # Keys are UTF-8, metadata only ASCII: values are encoded (user_metadata.py).
        self._args: dict[str, Any] = {"Bucket": bucket, "Key": key, "ContentType": content_type,
                      "Metadata": user_metadata.encode_all(metadata or {})}
        self._buffer = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict] = []
        self._uploader: ThreadPoolExecutor | None = None
        self._in_flight: Future | None = None
        self.bytes_written = 0
        self.etag: str | None = None  # the finished object's, once close() verified it

    def write(self, data: bytes) -> None:
        self._buffer += data
        self.bytes_written += len(data)
        if len(self._buffer) >= PART_SIZE:
            self._upload_part(PART_SIZE)

    def _upload_part(self, size: int) -> None:
        if self._upload_id is None:
            self._upload_id = self._s3.create_multipart_upload(**self._args)["UploadId"]
            self._uploader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="upload-part")
        self._finish_in_flight()        # one part in flight bounds memory (and surfaces errors)
        number = len(self._parts) + 1
        body = bytes(self._buffer[:size])
        del self._buffer[:size]
        self._in_flight = self._uploader.submit(  # type: ignore[union-attr]  # started above
            self._send_part, self._upload_id, number, body)

    def _send_part(self, upload_id: str, number: int, body: bytes) -> dict:
        r = self._s3.upload_part(Bucket=self._args["Bucket"], Key=self._args["Key"],
                                 UploadId=upload_id, PartNumber=number, Body=body)
        return {"PartNumber": number, "ETag": r["ETag"]}

    def _finish_in_flight(self) -> None:
        if self._in_flight is not None:
            in_flight, self._in_flight = self._in_flight, None
            self._parts.append(in_flight.result())

    def _stop_uploader(self) -> None:
        if self._uploader is not None:
            self._uploader.shutdown(wait=True)
            self._uploader = None

    def close(self) -> None:
        """Finish the object and verify it: a single PUT by the SHA-256 S3 answers for the
        bytes it stored, else (multipart, or a store that answers no checksum) by the
        size a HeadObject reports."""
        if self._upload_id is None:
            body = bytes(self._buffer)
            self._buffer = bytearray()
            # S3 refuses a body that does not match the SHA-256 sent with it (BadDigest),
            # and the one it answers is of what it stored, compared with ours. Given
            # the value, botocore sends it instead of hashing the body a second time;
            # ChecksumAlgorithm still names it (moto answers a checksum only then).
            ours = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")
            r = self._s3.put_object(Body=body, ChecksumAlgorithm="SHA256", ChecksumSHA256=ours,
                                    **self._args)
            stored = r.get("ChecksumSHA256")
            if stored is not None:
                if stored != ours:
                    raise VerifyError(f"s3://{self._args['Bucket']}/{self._args['Key']}: "
                                      f"S3 stored other bytes than were written")
                self.etag = r["ETag"]
                return
        else:
            if self._buffer:
                self._upload_part(len(self._buffer))   # the last part may be small
            self._finish_in_flight()
            self._stop_uploader()
            self._s3.complete_multipart_upload(
                Bucket=self._args["Bucket"], Key=self._args["Key"], UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts})
        self._buffer = bytearray()
        written = head(self._s3, self._args["Bucket"], self._args["Key"])
        if written is None or written["ContentLength"] != self.bytes_written:
            got = None if written is None else written["ContentLength"]
            raise VerifyError(f"s3://{self._args['Bucket']}/{self._args['Key']}: wrote "
                              f"{self.bytes_written} bytes, found {got}")
        self.etag = written.get("ETag")

    def abort(self) -> None:
        self._buffer = bytearray()
        if self._in_flight is not None:
            # Let a part in flight land before AbortMultipartUpload: a part that
            # arrives after the abort can be stored and billed.
            self._in_flight.exception()
            self._in_flight = None
        self._stop_uploader()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            self._s3.abort_multipart_upload(Bucket=self._args["Bucket"], Key=self._args["Key"],
                                            UploadId=upload_id)


def move(s3, bucket: str, key: str, dest_key: str, etag: str, size: int, *,
         version_id: str | None = None, resume: bool = False,
         checkpoint: Callable[[str], None] | None = None) -> None:
    """Copy key -> dest_key only if it is still the version we read, verify, then delete.

    The original is deleted only after the copy is verified, so a crash at any
    point leaves it in place for the next attempt. With resume (finishing an
    earlier attempt's move), a verified copy already there is not made again, so
    the versioned bucket does not gain a second version of it.

    With version_id, exactly that version is copied and then deleted (DeleteObject
    with VersionId removes the version; without it, a versioned bucket would only
    stack a delete marker on top of whatever version is current, hiding a newer
    upload that is still waiting for its own event).
    """
    source = {"Bucket": bucket, "Key": key}
    if version_id:
        source["VersionId"] = version_id
    which = {"VersionId": version_id} if version_id else {}
    checkpoint = checkpoint or (lambda step: None)
    if not (resume and _is_copy(head(s3, bucket, dest_key), etag, size)):
        _copy_verified(s3, bucket, dest_key, source, etag, size, checkpoint)
    checkpoint("before_delete")
    s3.delete_object(Bucket=bucket, Key=key, **which)


def _copy_verified(s3, bucket: str, dest_key: str, source: dict, etag: str, size: int,
                   checkpoint: Callable[[str], None]) -> None:
    answered = None
    if size <= COPY_OBJECT_LIMIT:
        answered = s3.copy_object(
            Bucket=bucket, Key=dest_key, CopySource=source, CopySourceIfMatch=etag,
            MetadataDirective="COPY").get("CopyObjectResult", {}).get("ETag")
    else:
        s3.copy(source, bucket, dest_key, ExtraArgs={"CopySourceIfMatch": etag})
    checkpoint("after_copy")
    # CopyObjectResult.ETag is the copy's: a single-part original's ETag (its MD5) that
    # comes back is the same bytes, so no HeadObject is needed to know it.
    if "-" not in etag and answered == etag:
        return
    copy = head(s3, bucket, dest_key)
    if copy is None or copy["ContentLength"] != size:
        raise VerifyError(f"copy s3://{bucket}/{dest_key} is missing or has the wrong size")
    # A single-part object's ETag is its MD5, which a copy keeps; a multipart ETag
    # depends on the part sizes, so only the size can be compared for those.
    if "-" not in etag and copy["ETag"] != etag:
        raise VerifyError(f"copy s3://{bucket}/{dest_key} has ETag {copy['ETag']}, "
                          f"expected {etag}")


def _is_copy(found: dict | None, etag: str, size: int) -> bool:
    # Only a single-part ETag (the MD5) proves the copy is this version; a multipart
    # original is copied again rather than risk deleting it on a size match alone.
    return found is not None and found["ContentLength"] == size and "-" not in etag \
        and found["ETag"] == etag
