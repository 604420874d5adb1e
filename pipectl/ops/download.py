"""`pipectl download`: a key to a file, a directory or stdout; a prefix to a directory tree.

Every object goes through one transfer manager (s3.Transfers); sizes come from the
listing, so there is no HeadObject per object. Nothing is written outside the destination,
and an existing local file that differs is never replaced unless asked (--force), as
`cp -n` and rsync users expect; one with the same content is skipped.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, BinaryIO

from pipectl.aws import s3
from pipectl.errors import NotFound, PipectlError, UsageError
from pipectl.ops.transfer import (
    DEFAULT_JOBS,
    FAILED,
    OK,
    PLANNED,
    REFUSED,
    SKIPPED,
    FileResult,
    Interrupted,
    Location,
    NoProgress,
    Progress,
    TransferReport,
    failure,
    per_file_errors,
    run_parallel,
)

if TYPE_CHECKING:
    from pipectl.aws.s3 import TransferConfig  # a type only: boto3 loads on first use

_DRIVE = re.compile(r"^[A-Za-z]:")
# What to do with an existing local file that differs from the object.
REFUSE, FORCE, KEEP = "refuse", "force", "keep"
STDOUT = "-"


def safe_relative_path(relative: str) -> PurePosixPath | None:
    """The local path for a key relative to the download prefix, or None when writing it
    could land outside the destination: "..", ".", empty segments, absolute paths,
    backslashes, drive letters, NUL."""
    if not relative or relative.startswith("/") or "\\" in relative or "\x00" in relative:
        return None
    parts = relative.split("/")
    if any(p in ("", ".", "..") for p in parts) or _DRIVE.match(parts[0]):
        return None
    return PurePosixPath(*parts)


def _inside(path: Path, root: Path) -> bool:
    # resolve() follows symlinks already in the destination, so a link pointing out of
    # it cannot be used to write elsewhere either.
    try:
        path.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


@dataclass
class _Item:
    key: str
    size: int
    etag: str | None
    result: FileResult
    path: Path | None = None


def _refused(bucket: str, key: str, size: int, reason: str) -> _Item:
    return _Item(key, size, None, FileResult("", s3.uri(bucket, key), size, REFUSED, reason))


def _wanted(bucket: str, key: str, size: int, etag: str | None, path: Path) -> _Item:
    return _Item(key, size, etag, FileResult(str(path), s3.uri(bucket, key), size, PLANNED),
                 path)


def _plan_key(source: Location, head: dict[str, Any], destination: str) -> list[_Item]:
    # One key: DEST is a directory (existing, or written with a trailing separator, as
    # `aws s3 cp` and cp take it: created) or the file to write.
    name = source.key.rsplit("/", 1)[-1]
    size = int(head["ContentLength"])
    to_dir = destination.endswith(("/", os.sep)) or Path(destination).is_dir()
    if not to_dir:
        return [_wanted(source.bucket, source.key, size, head.get("ETag"), Path(destination))]
    rel = safe_relative_path(name)
    if rel is None:
        return [_refused(source.bucket, source.key, size,
                         f"key name '{name}' is not a safe file name")]
    return [_wanted(source.bucket, source.key, size, head.get("ETag"), Path(destination) / rel)]


def _plan_prefix(client: Any, source: Location, destination: Path) -> list[_Item]:
    if destination.exists() and not destination.is_dir():
        raise UsageError(f"{destination}: not a directory (a prefix downloads into one)")
    prefix = source.as_prefix()
    _, objects = s3.list_objects(client, source.bucket, prefix.key)
    if not objects:
        if s3.bucket_exists(client, source.bucket) is False:
            raise s3.no_such_bucket(source.bucket)
        raise NotFound(f"{source.uri}: no such key, and no objects under {prefix.uri}")
    try:
        destination.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{destination}: cannot create the directory: "
                         f"{exc.strerror or exc}") from None
    plan = []
    for obj in objects:
        relative = obj.key[len(prefix.key):]
        if relative == "" or (relative.endswith("/") and obj.size == 0):
            continue  # a "folder" placeholder the S3 console creates; nothing to write
        rel = safe_relative_path(relative)
        path = destination / rel if rel is not None else None
        if path is None or not _inside(path, destination):
            plan.append(_refused(source.bucket, obj.key, obj.size,
                                 f"unsafe key: its local path would be outside {destination}"))
        else:
            plan.append(_wanted(source.bucket, obj.key, obj.size, obj.etag, path))
    return plan


def _same_content(client: Any, item: _Item, bucket: str) -> bool:
    """Whether the local file holds the object's bytes: by the SHA-256 S3 keeps when the
    object was uploaded with one (pipectl's always are), else by the ETag, which is the
    MD5 of the bytes for a single-part upload without SSE-KMS (32 hex digits)."""
    assert item.path is not None
    if item.path.stat().st_size != item.size:
        return False
    there = s3.object_checksum(client, bucket, item.key)
    if there is None:
        return False
    if there[1] is not None:
        return s3.same_checksum(s3.file_checksum(item.path, item.size), there[1])
    etag = (item.etag or "").strip('"')
    if re.fullmatch(r"[0-9a-f]{32}", etag):
        digest = hashlib.md5(usedforsecurity=False)
        with open(item.path, "rb") as f:
            for chunk in iter(lambda: f.read(s3.MiB), b""):
                digest.update(chunk)
        return digest.hexdigest() == etag
    return False


def _check_existing(client: Any, item: _Item, bucket: str, clobber: str) -> None:
    assert item.path is not None
    try:
        if not item.path.exists():
            return
        if item.path.is_dir():
            item.result.status, item.result.error = REFUSED, f"{item.path} is a directory"
        elif _same_content(client, item, bucket):
            item.result.status, item.result.reason = SKIPPED, "unchanged"
        elif clobber == KEEP:
            item.result.status, item.result.reason = SKIPPED, "exists (--no-clobber)"
        elif clobber == REFUSE:
            item.result.status, item.result.error = REFUSED, (
                f"{item.path} exists and differs: --force replaces it, --no-clobber keeps it")
    except per_file_errors() as exc:
        item.result.status, item.result.error = FAILED, failure(exc)


def download(client: Any, source: Location, destination: str | Path, *,
             jobs: int = DEFAULT_JOBS, progress: Progress | None = None,
             clobber: str = REFUSE, config: TransferConfig | None = None) -> TransferReport:
    """A key to a file or into a directory, or every object under a prefix to the same tree
    under destination. Unsafe keys and local files that differ are refused, never written."""
    progress = progress or NoProgress()
    config = config or s3.transfer_config(jobs)
    destination = str(destination)
    head = None if source.is_prefix else s3.head_object(client, source.bucket, source.key)
    plan = (_plan_key(source, head, destination) if head is not None
            else _plan_prefix(client, source, Path(destination)))
    wanted = [i for i in plan if i.path is not None]
    run_parallel([functools.partial(_check_existing, client, i, source.bucket, clobber)
                  for i in wanted], jobs)
    report = TransferReport("download", [i.result for i in plan])
    for item in plan:
        if item.result.status != PLANNED:
            progress.finished(item.result)
    todo = [i for i in wanted if i.result.status == PLANNED]
    progress.started(len(todo), sum(i.size for i in todo))
    try:
        with s3.Transfers(client, config) as transfers:
            submitted = [(item, _submit(transfers, source.bucket, item, progress))
                         for item in todo]
            for item, future in submitted:
                _settle(item, future, source.bucket)
                progress.finished(item.result)
    except KeyboardInterrupt:
        done = sum(1 for i in todo if i.result.status == OK)
        raise Interrupted(f"interrupted: {done} of {len(todo)} files downloaded") from None
    return report


def _submit(transfers: s3.Transfers, bucket: str, item: _Item, progress: Progress) -> Any:
    assert item.path is not None
    try:
        item.path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        item.result.status, item.result.error = FAILED, (
            f"cannot create the directory {item.path.parent}: {exc.strerror or exc}")
        return None
    return transfers.download(bucket, item.key, item.path, item.size,
                              callback=progress.transferred)


def _settle(item: _Item, future: Any, bucket: str) -> None:
    if future is None:
        return  # failed before it was submitted
    assert item.path is not None
    try:
        # The manager wrote a temporary file beside the target and renamed it into place
        # only when every byte had arrived; the size proves it is the object we listed.
        s3.wait(future, bucket, item.key, "downloading")
        written = item.path.stat().st_size
        if written != item.size:
            item.path.unlink(missing_ok=True)
            raise PipectlError(f"{item.result.uri}: got {written} bytes, S3 says {item.size} "
                               "(did it change during the download?)")
        item.result.status = OK
    except per_file_errors() as exc:
        item.result.status, item.result.error = FAILED, failure(exc)


def stream(client: Any, source: Location, out: BinaryIO, *,
           config: TransferConfig | None = None,
           progress: Progress | None = None) -> TransferReport:
    """One object's bytes to a stream (`download KEY -`), in order."""
    progress = progress or NoProgress()
    if source.is_prefix:
        raise UsageError(f"{source.uri}: '-' streams one object; a prefix downloads into a "
                         "directory")
    head = s3.head_object(client, source.bucket, source.key)
    if head is None:
        if s3.bucket_exists(client, source.bucket) is False:
            raise s3.no_such_bucket(source.bucket)
        raise NotFound(f"{source.uri}: no such key")
    size = int(head["ContentLength"])
    result = FileResult(STDOUT, source.uri, size, PLANNED)
    counted = _Counter(progress)
    progress.started(1, size)
    try:
        with s3.Transfers(client, config or s3.transfer_config()) as transfers:
            future = transfers.download(source.bucket, source.key, out, size,
                                        callback=counted)
            s3.wait(future, source.bucket, source.key, "downloading")
        out.flush()
        if counted.total != size:
            raise PipectlError(f"{source.uri}: got {counted.total} bytes, S3 says {size} "
                               "(did it change during the download?)")
        result.status = OK
    except KeyboardInterrupt:
        raise Interrupted(f"interrupted after {counted.total} of {size} bytes") from None
    except per_file_errors() as exc:
        result.status, result.error = FAILED, failure(exc)
    progress.finished(result)
    return TransferReport("download", [result])


class _Counter:
    def __init__(self, progress: Progress):
        self.progress, self.total = progress, 0

    def __call__(self, nbytes: int) -> None:
        self.total += nbytes
        self.progress.transferred(nbytes)
