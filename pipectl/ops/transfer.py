"""Bucket operations behind `pipectl ls / upload` (download: ops/download.py): plain
results, no printing.

Locations are `ROLE[/KEY-OR-PREFIX]` (raw, processed, archive) or `s3://BUCKET[/KEY]`,
parsed here and only here. A command's files all go through one transfer manager
(s3.Transfers) on one S3 client; an upload is verified by the SHA-256 S3 returns for the
one pipectl sent, and a file already there with the same size and SHA-256 is skipped.
Progress goes to a callback the caller supplies.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pipectl.aws import s3
from pipectl.errors import ExitStatus, PipectlError, UsageError
from pipectl.naming import BUCKET_ROLES

if TYPE_CHECKING:
    from pipectl.aws.s3 import TransferConfig  # a type only: boto3 loads on first use

# Requests in flight for the whole command (aws s3 cp uses 10).
DEFAULT_JOBS = 10
# ok: transferred and verified; skipped: nothing to do (unchanged, or kept by --no-clobber);
# refused: pipectl would not do it (an unsafe key, a local file that differs) - exit 1;
# planned: what --dry-run would transfer.
OK, FAILED, SKIPPED, REFUSED, PLANNED = "ok", "failed", "skipped", "refused", "planned"
# Lenient on purpose (legacy buckets may hold capitals or underscores); S3 says the rest.
_BUCKET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,254}$")


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
    status: str  # ok | failed | skipped | refused | planned
    error: str | None = None  # why it failed or was refused
    reason: str | None = None  # why it was skipped


@dataclass
class TransferReport:
    operation: str  # upload | download
    files: list[FileResult] = field(default_factory=list)
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)

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
    def refused(self) -> int:
        return self.count(REFUSED)

    @property
    def planned(self) -> int:
        return self.count(PLANNED)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files if f.status in (OK, PLANNED))


class Interrupted(PipectlError):
    """Ctrl-C during a transfer: what was done is done and verified, the rest was cancelled."""

    exit_status = ExitStatus.INTERRUPTED


class Progress(Protocol):
    """What a transfer reports while it runs; transferred() is called from worker threads."""

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


def run_parallel(work: Sequence[Callable[[], Any]], jobs: int) -> list[Any]:
    """Every item is attempted, results in order (planning: hashing files, HeadObjects)."""
    if len(work) <= 1:
        return [fn() for fn in work]
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="transfer") as pool:
        return list(pool.map(lambda fn: fn(), work))


def failure(exc: BaseException) -> str:
    if isinstance(exc, PipectlError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}" + (f": {exc.filename}" if exc.filename else "")
    return str(exc) or "the transfer failed"


# Errors one file can hit without the others being affected: S3's answer (already a
# pipectl error), a dropped connection mid-transfer, the local disk; the manager's own
# (a cancelled transfer after another one's fatal error).
def per_file_errors() -> tuple[type[BaseException], ...]:
    return (PipectlError, OSError, *s3.transfer_errors())


# ---------------------------------------------------------------- upload

@dataclass(frozen=True)
class LocalFile:
    path: Path
    relative: str  # the key under a destination prefix, "/"-separated
    size: int
    in_directory: bool = False  # found by walking a directory argument


def collect_files(paths: Iterable[Path | str]) -> list[LocalFile]:
    """Files, and directories recursively by rsync's rule: `DIR` uploads under the
    directory's own name (DIR/a.csv), `DIR/` (or `.`) uploads its contents (a.csv). Checks
    every path before anything is uploaded."""
    files: list[LocalFile] = []
    for given in paths:
        text = str(given)
        path = Path(text)
        if not path.exists():
            raise UsageError(f"{text}: no such file or directory")
        if path.is_file():
            files.append(LocalFile(path, path.name, path.stat().st_size))
        elif path.is_dir():
            # basename before pathlib normalizes "dir/." and "dir/" to "dir"
            contents = os.path.basename(text) in ("", ".", "..")
            base = "" if contents else path.name
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                rel = child.relative_to(path).as_posix()
                files.append(LocalFile(child, f"{base}/{rel}" if base else rel,
                                       child.stat().st_size, in_directory=True))
        else:
            raise UsageError(f"{text}: not a regular file or directory")
    if not files:
        raise UsageError(f"no files to upload in {', '.join(str(p) for p in paths)}")
    return files


def upload_keys(files: Sequence[LocalFile], destination: Location) -> list[str]:
    """One file to a location without a trailing "/" is that exact key. Anything more needs
    a prefix (as `aws s3 cp` and rsync would otherwise guess), under which each file keeps
    its relative path."""
    if not destination.is_prefix:
        if len(files) > 1:
            raise UsageError(f"{len(files)} files need a prefix ending in /: "
                             f"--to {destination.uri}/")
        if files[0].in_directory:
            raise UsageError(f"a directory needs a prefix ending in /: --to {destination.uri}/")
        return [destination.key]
    prefix = destination.key
    keys = [prefix + f.relative for f in files]
    seen: dict[str, Path] = {}
    for f, key in zip(files, keys, strict=True):
        if key in seen:
            raise UsageError(f"{seen[key]} and {f.path} would both upload to "
                             f"{s3.uri(destination.bucket, key)}")
        seen[key] = f.path
    return keys


def unprocessed(files: Sequence[LocalFile], keys: Sequence[str], incoming: str,
                suffixes: Sequence[str]) -> list[str]:
    """A warning per file uploaded under the incoming prefix that no notification rule will
    ever deliver: S3 matches a rule's suffix byte for byte, so UPPER.CSV is not .csv."""
    warnings = []
    for f, key in zip(files, keys, strict=True):
        if not key.startswith(incoming) or key.endswith(tuple(suffixes)):
            continue
        case = (" (S3 filters are case-sensitive)"
                if key.lower().endswith(tuple(s.lower() for s in suffixes)) else "")
        warnings.append(f"{f.path}: no processor.suffixes rule matches{case}; "
                        "it will not be processed")
    return warnings


@dataclass
class _Planned:
    local: LocalFile
    key: str
    result: FileResult
    checksum: str | None = None  # a single PUT's SHA-256, sent with it (s3.file_checksum)


def _plan_upload(client: Any, local: LocalFile, key: str, bucket: str,
                 maybe_there: Callable[[str, int], bool], config: TransferConfig) -> _Planned:
    item = _Planned(local, key, FileResult(str(local.path), s3.uri(bucket, key), local.size,
                                           PLANNED))
    try:
        # A single PUT carries the file's SHA-256, so it is read once here; a multipart
        # upload's parts are hashed by botocore as they go, so the file is read here only
        # when an object is there to compare with.
        single = s3.part_size(local.size, config) is None
        if single:
            item.checksum = s3.file_checksum(local.path, local.size, config)
        # A listing carries sizes, never checksum values: one HeadObject for each object of
        # the same size, none on a first upload.
        if maybe_there(key, local.size):
            try:
                there = s3.object_checksum(client, bucket, key)
            except s3.AccessDenied:
                there = None  # may write without reading: send it
            if there is not None and there[0] == local.size and there[1] is not None:
                local_sum = item.checksum or s3.file_checksum(local.path, local.size, config)
                if s3.same_checksum(there[1], local_sum):
                    item.result.status, item.result.reason = SKIPPED, "unchanged"
    except per_file_errors() as exc:
        item.result.status, item.result.error = FAILED, failure(exc)
    return item


def _maybe_there(client: Any, bucket: str, keys: Sequence[str]) -> Callable[[str, int], bool]:
    """Which keys may already hold their file: those with an object of the same size, from
    one listing (paged) of the keys' common prefix."""
    if len(keys) == 1:
        return lambda key, size: True  # one HeadObject is cheaper than a listing
    sizes = s3.object_sizes(client, bucket, os.path.commonprefix(list(keys)))
    if sizes is None:
        # Listing denied (uploaders often may PutObject without ListBucket): send everything.
        return lambda key, size: False
    return lambda key, size: sizes.get(key) == size


def upload(client: Any, files: Sequence[LocalFile], destination: Location, *,
           jobs: int = DEFAULT_JOBS, progress: Progress | None = None, dry_run: bool = False,
           config: TransferConfig | None = None) -> TransferReport:
    """Every file to its key through one transfer manager, skipping those already there
    with the same size and SHA-256. --dry-run plans the same way and sends nothing."""
    progress = progress or NoProgress()
    config = config or s3.transfer_config(jobs)
    keys = upload_keys(files, destination)
    bucket = destination.bucket
    s3.require_bucket(client, bucket)
    maybe_there = _maybe_there(client, bucket, keys)
    planned = run_parallel([functools.partial(_plan_upload, client, f, k, bucket, maybe_there,
                                              config)
                            for f, k in zip(files, keys, strict=True)], jobs)
    report = TransferReport("upload", [p.result for p in planned], dry_run=dry_run)
    todo = [p for p in planned if p.result.status == PLANNED]
    for p in planned:
        if p.result.status != PLANNED:
            progress.finished(p.result)
    if dry_run:
        for p in todo:
            progress.finished(p.result)
        return report
    progress.started(len(todo), sum(p.local.size for p in todo))
    _send(client, bucket, todo, config, progress, already=report.skipped, total=len(planned))
    return report


def _send(client: Any, bucket: str, todo: list[_Planned], config: TransferConfig,
          progress: Progress, *, already: int, total: int) -> None:
    """Submit every file to one manager, then settle each in order. already: files that
    were there unchanged, counted as uploaded when Ctrl-C stops the rest."""
    submitted: list[tuple[_Planned, Any]] = []
    transfers = s3.Transfers(client, config)
    try:
        with transfers:
            for p in todo:
                submitted.append((p, transfers.upload(p.local.path, bucket, p.key, p.local.size,
                                                      p.checksum, callback=progress.transferred)))
            for p, future in submitted:
                _settle(p, future, transfers, bucket)
                progress.finished(p.result)
    except KeyboardInterrupt:
        # The manager cancelled what had not started and let requests in flight end; those
        # are settled now too, so the count says exactly what is in S3, verified.
        for p, future in submitted:
            if p.result.status == PLANNED and future.done():
                _settle(p, future, transfers, bucket)
        done = already + sum(1 for p in todo if p.result.status == OK)
        raise Interrupted(f"interrupted: {done} of {total} files uploaded; run the same "
                          "command again to send the rest") from None


def _settle(p: _Planned, future: Any, transfers: s3.Transfers, bucket: str) -> None:
    try:
        s3.wait(future, bucket, p.key, "uploading")
        sent = transfers.sent_checksum(bucket, p.key)
        returned = transfers.uploaded_checksum(bucket, p.key)
        if returned is None:
            # AWS returns it from PutObject and CompleteMultipartUpload alike; an endpoint
            # that leaves it out of a response (moto's CompleteMultipartUpload) is asked once.
            there = s3.object_checksum(transfers.client, bucket, p.key)
            returned = there[1] if there else None
        if returned is None:
            raise PipectlError(f"{p.result.uri}: S3 keeps no SHA-256 checksum for the upload")
        if sent is None:
            raise PipectlError(f"{p.result.uri}: S3 returned no SHA-256 for a part")
        if not s3.same_checksum(returned, sent):
            raise PipectlError(f"{p.result.uri}: S3 stored SHA-256 {returned}, pipectl sent "
                               f"{sent} for {p.local.path}")
        p.result.status = OK
    except per_file_errors() as exc:
        p.result.status, p.result.error = FAILED, failure(exc)
