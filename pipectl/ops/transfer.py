"""Bucket operations behind `pipectl ls / upload / download`: plain results, no printing.

Locations are `ROLE[/KEY-OR-PREFIX]` (raw, processed, archive) or `s3://BUCKET[/KEY]`,
parsed here and only here. Transfers run in parallel on one S3 client (boto3 clients
are thread-safe) and are verified against S3's ContentLength; progress goes to a
callback the caller supplies.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

import botocore.exceptions

from pipectl.aws import s3
from pipectl.errors import NotFound, PipectlError, UsageError
from pipectl.naming import BUCKET_ROLES

if TYPE_CHECKING:
    from boto3.s3.transfer import TransferConfig  # a 150 ms import, not for start-up

DEFAULT_JOBS = 8
OK, FAILED, SKIPPED = "ok", "failed", "skipped"
# Lenient on purpose (legacy buckets may hold capitals or underscores); S3 says the rest.
_BUCKET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")
_DRIVE = re.compile(r"^[A-Za-z]:")


# ---------------------------------------------------------------- locations

@dataclass(frozen=True)
class Location:
    bucket: str
    key: str = ""  # "" is the whole bucket; a trailing "/" makes it a prefix
    role: str | None = None

    @property
    def uri(self) -> str:
        return s3.uri(self.bucket, self.key)

    @property
    def is_prefix(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    def as_prefix(self) -> Location:
        return self if self.is_prefix else Location(self.bucket, self.key + "/", self.role)


def parse_location(text: str, bucket_of_role: Callable[[str], str]) -> Location:
    """`raw/incoming/` -> the raw bucket's incoming/ prefix; `s3://b/k` -> bucket b, key k."""
    usage = (f"'{text}' is not a location: use {'|'.join(BUCKET_ROLES)} or s3://BUCKET, "
             "optionally followed by /KEY or /PREFIX/")
    if "://" in text:
        scheme, _, rest = text.partition("://")
        if scheme.lower() != "s3":
            raise UsageError(usage)
        bucket, _, key = rest.partition("/")
        if not _BUCKET_NAME.match(bucket):
            raise UsageError(f"'{text}': '{bucket}' is not a valid bucket name" if bucket
                             else f"'{text}': the bucket name is missing")
        return Location(bucket, key)
    role, _, key = text.partition("/")
    if role not in BUCKET_ROLES:
        raise UsageError(usage)
    return Location(bucket_of_role(role), key, role)


# ---------------------------------------------------------------- ls

@dataclass(frozen=True)
class BucketStatus:
    role: str
    name: str
    exists: bool | None  # None: S3 answered 403, so it exists but is not readable here


@dataclass
class ObjectEntry:
    key: str
    size: int
    last_modified: datetime | None
    storage_class: str


@dataclass
class Listing:
    bucket: str
    prefix: str
    prefixes: list[str] = field(default_factory=list)
    objects: list[ObjectEntry] = field(default_factory=list)


def bucket_statuses(client: Any, buckets: dict[str, str]) -> list[BucketStatus]:
    return [BucketStatus(role, name, s3.bucket_exists(client, name))
            for role, name in buckets.items()]


def list_location(client: Any, location: Location, *, recursive: bool = False) -> Listing:
    """Like `aws s3 ls`: one level under the prefix (Delimiter "/"), or everything."""
    prefixes, objects = s3.list_objects(client, location.bucket, location.key,
                                        None if recursive else "/")
    return Listing(location.bucket, location.key, prefixes,
                   [ObjectEntry(o.key, o.size, o.last_modified, o.storage_class) for o in objects])


# ---------------------------------------------------------------- reports and progress

@dataclass
class FileResult:
    local: str
    uri: str
    bytes: int
    status: str  # ok | failed | skipped
    error: str | None = None


@dataclass
class TransferReport:
    operation: str  # upload | download
    files: list[FileResult] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for f in self.files if f.status == status)

    @property
    def ok(self) -> int:
        return self.count(OK)

    @property
    def failed(self) -> int:
        return self.count(FAILED)

    @property
    def skipped(self) -> int:
        return self.count(SKIPPED)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files if f.status == OK)


class Progress(Protocol):
    """What a transfer reports while it runs; called from worker threads."""

    def started(self, files: int, total_bytes: int) -> None: ...

    def transferred(self, nbytes: int) -> None: ...

    def finished(self, result: FileResult) -> None: ...


class NoProgress:
    def started(self, files: int, total_bytes: int) -> None:
        pass

    def transferred(self, nbytes: int) -> None:
        pass

    def finished(self, result: FileResult) -> None:
        pass


def _run_parallel(work: Sequence[Callable[[], FileResult]], jobs: int) -> list[FileResult]:
    # Every item is attempted; a failure is a result, never an exception that stops the rest.
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="transfer") as pool:
        return list(pool.map(lambda fn: fn(), work))


def _failure(exc: Exception) -> str:
    if isinstance(exc, PipectlError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


# Errors one file can hit without the others being affected: S3's answer (already a
# pipectl error), a dropped connection mid-transfer, the local disk.
_PER_FILE_ERRORS = (PipectlError, botocore.exceptions.BotoCoreError, OSError)


# ---------------------------------------------------------------- upload

@dataclass(frozen=True)
class LocalFile:
    path: Path
    relative: str  # the key under a destination prefix, "/"-separated
    size: int


def collect_files(paths: Iterable[Path]) -> list[LocalFile]:
    """Files and directories (recursively, under the directory's own name). Checks every
    path before anything is uploaded."""
    files: list[LocalFile] = []
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: no such file or directory")
        if path.is_file():
            files.append(LocalFile(path, path.name, path.stat().st_size))
        elif path.is_dir():
            base = path.resolve().name
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                rel = child.relative_to(path).as_posix()
                files.append(LocalFile(child, f"{base}/{rel}" if base else rel,
                                       child.stat().st_size))
        else:
            raise UsageError(f"{path}: not a regular file or directory")
    if not files:
        raise UsageError(f"no files to upload in {', '.join(str(p) for p in paths)}")
    return files


def upload_keys(files: Sequence[LocalFile], destination: Location) -> list[str]:
    """One file to a location without a trailing "/" is that exact key; otherwise the
    destination is a prefix and each file keeps its relative path under it."""
    if len(files) == 1 and not destination.is_prefix and "/" not in files[0].relative:
        return [destination.key]
    prefix = destination.as_prefix().key
    keys = [prefix + f.relative for f in files]
    seen: dict[str, Path] = {}
    for f, key in zip(files, keys, strict=True):
        if key in seen:
            raise UsageError(f"{seen[key]} and {f.path} would both upload to "
                             f"{s3.uri(destination.bucket, key)}")
        seen[key] = f.path
    return keys


def upload(client: Any, files: Sequence[LocalFile], destination: Location, *,
           jobs: int = DEFAULT_JOBS, progress: Progress | None = None,
           config: TransferConfig = s3.DEFAULT_TRANSFER_CONFIG) -> TransferReport:
    progress = progress or NoProgress()
    keys = upload_keys(files, destination)
    s3.require_bucket(client, destination.bucket)
    progress.started(len(files), sum(f.size for f in files))

    def one(local: LocalFile, key: str) -> FileResult:
        result = FileResult(str(local.path), s3.uri(destination.bucket, key), local.size, OK)
        try:
            s3.upload_file(client, local.path, destination.bucket, key, config=config,
                           callback=progress.transferred)
            # The checksum proved the bytes S3 received; the size proves we sent the
            # whole file (it may have changed while we read it).
            head = s3.head_object(client, destination.bucket, key)
            if head is None:
                raise PipectlError(f"{result.uri} is missing right after the upload")
            if int(head["ContentLength"]) != local.size:
                raise PipectlError(f"{result.uri} holds {head['ContentLength']} bytes, "
                                   f"{local.path} has {local.size}")
        except _PER_FILE_ERRORS as exc:
            result.status, result.error = FAILED, _failure(exc)
        progress.finished(result)
        return result

    work = [lambda f=f, k=k: one(f, k) for f, k in zip(files, keys, strict=True)]
    return TransferReport("upload", _run_parallel(work, jobs))


# ---------------------------------------------------------------- download

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


@dataclass(frozen=True)
class _Download:
    key: str
    size: int
    path: Path | None  # None: refused, the key would escape the destination
    reason: str | None = None


def _plan_download(client: Any, source: Location, destination: Path
                   ) -> list[_Download]:
    single = None if source.is_prefix else s3.head_object(client, source.bucket, source.key)
    if single is not None:
        # One key: DEST is a directory (existing, or written with a trailing separator)
        # or the file to write.
        name = source.key.rsplit("/", 1)[-1]
        to_dir = destination.is_dir() or str(destination).endswith(("/", os.sep))
        rel = safe_relative_path(name) if to_dir else PurePosixPath(destination.name)
        size = int(single["ContentLength"])
        if rel is None:
            return [_Download(source.key, size, None, f"key name '{name}' is not a safe file name")]
        root = destination if to_dir else destination.parent
        return [_Download(source.key, size, root / rel)]

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
            plan.append(_Download(obj.key, obj.size, None,
                                  f"refusing {s3.uri(source.bucket, obj.key)}: its local path "
                                  f"would be outside {destination}"))
        else:
            plan.append(_Download(obj.key, obj.size, path))
    return plan


def download(client: Any, source: Location, destination: Path, *,
             jobs: int = DEFAULT_JOBS, progress: Progress | None = None,
             config: TransferConfig = s3.DEFAULT_TRANSFER_CONFIG) -> TransferReport:
    """A key to a file, or every object under a prefix to the same tree under destination.
    Keys whose local path would leave destination are skipped, never written."""
    progress = progress or NoProgress()
    plan = _plan_download(client, source, destination)
    wanted = [d for d in plan if d.path is not None]
    progress.started(len(wanted), sum(d.size for d in wanted))

    def one(item: _Download) -> FileResult:
        result = FileResult(str(item.path or ""), s3.uri(source.bucket, item.key), item.size, OK)
        if item.path is None:
            result.status, result.error = SKIPPED, item.reason
            progress.finished(result)
            return result
        try:
            item.path.parent.mkdir(parents=True, exist_ok=True)
            # download_file is atomic: boto3 writes a temporary file beside the target
            # and renames it into place only when every byte has arrived.
            s3.download_file(client, source.bucket, item.key, item.path, config=config,
                             callback=progress.transferred)
            written = item.path.stat().st_size
            if written != item.size:
                item.path.unlink(missing_ok=True)
                raise PipectlError(f"{result.uri}: got {written} bytes, S3 says {item.size} "
                                   "(did it change during the download?)")
        except _PER_FILE_ERRORS as exc:
            result.status, result.error = FAILED, _failure(exc)
        progress.finished(result)
        return result

    work = [lambda d=d: one(d) for d in plan]
    return TransferReport("download", _run_parallel(work, jobs))
