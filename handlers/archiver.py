"""Archiver function: processed objects older than the retention period move to the archive bucket.

Event: an EventBridge scheduled event (the configured retention), or from `pipectl archive`
{"older_than_days": N | "older_than_hours": N, "dry_run": bool, "now": ISO-8601,
"run_id": str}. An invocation without a run_id starts a run (and returns its new id); one
that runs out of time returns "truncated", and `pipectl archive` invokes it again with
the first invocation's now and run_id, so the `__archiver__` item adds up the whole run.

What ages out: everything the processor writes to the processed bucket, each under its
own part of the archive prefix (which the archive bucket's lifecycle rule covers):
  processed/YYYY/MM/DD/<name>   -> archive/YYYY/MM/DD/<name>
  rejects/YYYY/MM/DD/<name>     -> archive/rejects/YYYY/MM/DD/<name>
  thumbnails/YYYY/MM/DD/<name>  -> archive/thumbnails/YYYY/MM/DD/<name>

Per object: copy it with the configured storage class, verify the copy (size, then ETag
or SHA-256), update the results row (an output: the row ARCHIVED; a rejects file or a
thumbnail: the row's link to it), and only then delete the original (DeleteObjects,
1,000 keys a call). Every step is safe to repeat, so a run stopped anywhere loses
nothing and the next run finishes the job:
- copy and original both exist: the copy is verified (re-copied if it does not match),
  the row marked, the original deleted;
- the original is gone: its row was marked before the delete, so nothing is left to do
  (and if it vanished between listing and copying, the copy's row is marked anyway).

The row is found through the `source` user metadata the processor writes on every
object (CopyObject keeps it on the copy), else, for outputs, through the first line's
`_metadata.source`; it is changed only while its `output` (`rejects`, `thumbnail`) still
names this object, so a file processed again since then keeps its newer row.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import results
import storage
import telemetry
from botocore.exceptions import ClientError
from clients import reset_clients, results_table, s3_client  # noqa: F401 (tests reset them)

ARCHIVER_KEY = "__archiver__"  # the last run, read by `pipectl status` (see pipectl/naming.py)
# The processor's other outputs in the processed bucket (fixed prefixes, as
# handlers/processor.py writes them), with the row field that links to each.
OTHER_OUTPUTS = {"rejects/": "rejects", "thumbnails/": "thumbnail"}
DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys
# Objects in these classes must be restored before S3 copies them (GLACIER_IR need not,
# but it is colder than any archive class, so moving it would only cost money).
GLACIER_CLASSES = ("GLACIER", "DEEP_ARCHIVE", "GLACIER_IR")
DEFAULT_CONCURRENCY = 8
# Stop taking objects when less than this (or a fifth of the invocation) is left: in-flight
# copies, the deletes and the run record must finish before Lambda's timeout.
TIME_MARGIN_MS = 30_000
MAX_LISTED = 20_000  # objects listed in the result; Lambda's response limit is 6 MB
HEAD_BYTES = 64 * 1024  # enough of a JSON Lines file to read its first record
_DATED = re.compile(r"^(\d{4})/(\d{2})/(\d{2})/(.+)$")


@dataclass(frozen=True)
class Settings:
    processed_bucket: str
    archive_bucket: str
    results_table: str
    processed: str = "processed/"
    archive: str = "archive/"
    retention_days: float = 30
    storage_class: str = "STANDARD_IA"
    concurrency: int = DEFAULT_CONCURRENCY

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(processed_bucket=env.get("PROCESSED_BUCKET", ""),
                   archive_bucket=env.get("ARCHIVE_BUCKET", ""),
                   results_table=env.get("RESULTS_TABLE", ""),
                   processed=env.get("PROCESSED_PREFIX") or "processed/",
                   archive=env.get("ARCHIVE_PREFIX") or "archive/",
                   retention_days=float(env.get("RETENTION_DAYS") or 30),
                   storage_class=env.get("STORAGE_CLASS") or "STANDARD_IA",
                   concurrency=int(env.get("ARCHIVER_CONCURRENCY") or DEFAULT_CONCURRENCY))


# --- wiring ----------------------------------------------------------------------

def lambda_handler(event, context):
    settings = Settings.from_env()
    request = Request.from_event(event or {}, settings)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    deadline = None
    if remaining is not None:
        left = remaining()
        deadline = time.monotonic() + (left - min(TIME_MARGIN_MS, left // 5)) / 1000
    summary = archive(settings, request, deadline=deadline)
    if not request.dry_run:
        record_run(settings, request, summary)
    return summary


@dataclass(frozen=True)
class Request:
    now: datetime
    older_than: timedelta
    dry_run: bool = False
    run_id: str = ""
    continues: bool = False  # the event named its run: an earlier invocation started it

    @property
    def cutoff(self) -> datetime:
        return self.now - self.older_than

    @classmethod
    def from_event(cls, event: dict, settings: Settings) -> Request:
        """Scheduled events carry nothing of ours; anything malformed raises ValueError."""
        now = datetime.now(timezone.utc)
        if event.get("now") is not None:
            now = datetime.fromisoformat(str(event["now"]).replace("Z", "+00:00"))
            if now.tzinfo is None:
                now = now.replace(tzinfo=timezone.utc)
        older_than = timedelta(days=settings.retention_days)
        if event.get("older_than_hours") is not None:
            older_than = timedelta(hours=_non_negative(event, "older_than_hours"))
        elif event.get("older_than_days") is not None:
            older_than = timedelta(days=_non_negative(event, "older_than_days"))
        dry_run = event.get("dry_run", False)
        if not isinstance(dry_run, bool):
            raise ValueError(f"dry_run must be true or false, got {dry_run!r}")
        # A scheduled event names no run: each scheduled invocation is a run of its own.
        run_id = event.get("run_id")
        if run_id is not None and (not isinstance(run_id, str) or not run_id):
            raise ValueError(f"run_id must be a non-empty string, got {run_id!r}")
        return cls(now=now, older_than=older_than, dry_run=dry_run,
                   run_id=run_id or uuid.uuid4().hex, continues=run_id is not None)


def _non_negative(event: dict, name: str) -> float:
    value = event[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name} must be a number of at least 0, got {value!r}")
    return float(value)


# --- the work --------------------------------------------------------------------

@dataclass(frozen=True)
class Area:
    """One kind of object the processor writes, and where it goes in the archive bucket."""
    source: str  # prefix in the processed bucket
    archive: str  # prefix in the archive bucket
    row_field: str  # the results row's field that names the object


def areas(s: Settings) -> list[Area]:
    """Outputs keep archive/YYYY/... (their archive keys from before rejects and thumbnails
    were archived too); the others go under archive/rejects/ and archive/thumbnails/, which
    an output's key (it always starts with a year) can never be."""
    found = [Area(s.processed, s.archive, "output")]
    found += [Area(prefix, f"{s.archive}{prefix}", field)
              for prefix, field in OTHER_OUTPUTS.items() if prefix != s.processed]
    return found


def area_of(s: Settings, key: str) -> Area | None:
    # The longest matching prefix, so a key is never archived twice when one configured
    # prefix lies inside another.
    return max((a for a in areas(s) if key.startswith(a.source)), key=lambda a: len(a.source),
               default=None)


def archive_key(s: Settings, key: str, last_modified: datetime) -> str:
    """processed/YYYY/MM/DD/<name> -> archive/YYYY/MM/DD/<name>, rejects/YYYY/MM/DD/<name>
    -> archive/rejects/YYYY/MM/DD/<name>, and the same for thumbnails/.

    The day stays in the key, so objects of different days with the same name never
    collide. A key without the date path is filed under its LastModified month and an
    `undated/` segment, which no dated key can produce.
    """
    area = area_of(s, key)
    if area is None:
        raise ValueError(f"{key!r} is under none of the prefixes the archiver takes")
    relative = key[len(area.source):]
    dated = _DATED.match(relative)
    if dated:
        year, month, day, rest = dated.groups()
        return f"{area.archive}{year}/{month}/{day}/{rest}"
    month = last_modified.astimezone(timezone.utc).strftime("%Y/%m")
    return f"{area.archive}{month}/undated/{relative}"


def candidates(s: Settings, request: Request):
    """Every object old enough to archive: area by area, in listing (key) order."""
    paginator = s3_client().get_paginator("list_objects_v2")
    for area in areas(s):
        for page in paginator.paginate(Bucket=s.processed_bucket, Prefix=area.source):
            for obj in page.get("Contents", []):
                if (obj["Key"].endswith("/") or obj["LastModified"] > request.cutoff
                        or area_of(s, obj["Key"]) != area):
                    continue
                yield obj


def archive(s: Settings, request: Request, deadline: float | None = None) -> dict:
    started = time.monotonic()
    summary = {"dry_run": request.dry_run, "started_at": results.now_iso(),
               "run_id": request.run_id,
               "now": request.now.isoformat(),
               "cutoff": request.cutoff.isoformat(), "storage_class": s.storage_class,
               "archive_bucket": s.archive_bucket, "moved": 0, "bytes": 0,
               "skipped_glacier": 0, "errors": 0, "remaining": 0, "truncated": False,
               "groups": {}, "objects": [], "objects_listed": 0}
    found = list(candidates(s, request))
    _log("INFO", "archiving" if not request.dry_run else "dry run",
         total=len(found), cutoff=summary["cutoff"], storage_class=s.storage_class,
         run_id=request.run_id)
    entries = [_entry(s, obj) for obj in found]
    for entry in entries:
        if entry["action"] == "skip_glacier":
            summary["skipped_glacier"] += 1
            _log("WARNING", "skipped: already in a Glacier class", key=entry["key"],
                 status="SKIPPED", storage_class=entry["storage_class"])
        else:
            # One group per month and area: processed/2024/05/, rejects/2024/05/, ...
            group = summary["groups"].setdefault(entry["source_prefix"], {
                "month": entry["month"], "source_prefix": entry["source_prefix"],
                "archive_prefix": entry["archive_prefix"], "objects": 0, "bytes": 0})
            group["objects"] += 1
            group["bytes"] += entry["size"]
    if not request.dry_run:
        movable = [e for e in entries if e["action"] == "move"]
        for start in range(0, len(movable), DELETE_BATCH):
            _move_batch(s, movable[start:start + DELETE_BATCH], deadline)
        for entry in movable:
            if entry["status"] == "moved":
                summary["moved"] += 1
                summary["bytes"] += entry["size"]
            elif entry["status"] == "deferred":
                summary["remaining"] += 1
            else:
                summary["errors"] += 1
        summary["truncated"] = summary["remaining"] > 0
    summary["groups"] = sorted(summary["groups"].values(),
                               key=lambda g: (g["month"], g["source_prefix"]))
    summary["objects"] = entries[:MAX_LISTED]
    summary["objects_listed"] = len(entries)
    summary["duration_ms"] = int((time.monotonic() - started) * 1000)
    metrics = None if request.dry_run else {
        "ArchivedObjects": (summary["moved"], "Count"),
        "ArchivedBytes": (summary["bytes"], "Bytes"),
        "ArchiveErrors": (summary["errors"], "Count"),
        "DurationMs": (summary["duration_ms"], "Milliseconds")}
    _log("INFO", "archive run finished" if not request.dry_run else "dry run finished",
         metrics=metrics, run_id=request.run_id,
         **{k: summary[k] for k in ("moved", "bytes", "skipped_glacier", "errors",
                                    "remaining")})
    return summary


def _entry(s: Settings, obj: dict) -> dict:
    key, last_modified = obj["Key"], obj["LastModified"]
    area = area_of(s, key)
    target = archive_key(s, key, last_modified)
    month = target[len(area.archive):len(area.archive) + 7]
    storage_class = obj.get("StorageClass") or "STANDARD"
    return {"key": key, "archive_key": target, "size": obj["Size"], "etag": obj["ETag"],
            "last_modified": last_modified.isoformat(), "storage_class": storage_class,
            "month": month, "source_prefix": f"{area.source}{month}/",
            "archive_prefix": f"{area.archive}{month}/",
            "action": "skip_glacier" if storage_class in GLACIER_CLASSES else "move"}


def _move_batch(s: Settings, batch: list[dict], deadline: float | None) -> None:
    """Copy, verify and mark each object, then delete the verified originals together."""
    if s.concurrency <= 1:
        for entry in batch:
            _archive_one(s, entry, deadline)
    else:
        with ThreadPoolExecutor(max_workers=s.concurrency) as pool:
            futures = [pool.submit(_archive_one, s, entry, deadline) for entry in batch]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    ready = [e for e in batch if e["status"] == "delete"]
    if not ready:
        return
    r = s3_client().delete_objects(Bucket=s.processed_bucket, Delete={
        "Objects": [{"Key": e["key"]} for e in ready], "Quiet": True})
    # DeleteObjects answers 200 even when keys fail: each failure is in Errors.
    failed = {e["Key"]: f"{e.get('Code')}: {e.get('Message')}" for e in r.get("Errors", [])}
    for entry in ready:
        if entry["key"] in failed:
            entry["status"], entry["error"] = "error", f"delete failed: {failed[entry['key']]}"
            _log("ERROR", "archived but the original could not be deleted; the next run "
                 "retries", key=entry["key"], status="ERROR", error=entry["error"])
        else:
            entry["status"] = "moved"
            _log("INFO", "archived", key=entry["key"], status="ARCHIVED",
                 archive_key=entry["archive_key"], bytes=entry["size"],
                 storage_class=s.storage_class)


def _archive_one(s: Settings, entry: dict, deadline: float | None) -> None:
    """Leaves entry["status"] at delete (copy verified, row marked), deferred or error."""
    if deadline is not None and time.monotonic() > deadline:
        entry["status"] = "deferred"
        return
    try:
        copy = _ensure_copy(s, entry)
        if copy is None:
            entry["status"] = "error"
            entry["error"] = "vanished from the processed bucket and no copy exists"
            return
        entry["row"] = _mark_row(s, entry, copy)
        entry["status"] = "delete"
    except Exception as e:  # noqa: BLE001 - one object's failure never stops the others
        entry["status"], entry["error"] = "error", f"{type(e).__name__}: {e}"
        _log("ERROR", "not archived; the original is kept", key=entry["key"], status="ERROR",
             error=entry["error"])


def _ensure_copy(s: Settings, entry: dict) -> dict | None:
    """The verified copy's HeadObject, copying (again) when it is missing or does not match."""
    s3 = s3_client()
    existing = _head_copy(s3, s, entry)
    if existing is not None and _matches(s3, s, entry, existing):
        return existing
    try:
        _copy(s3, s, entry)
    except ClientError as e:
        if not _missing(e):
            raise
        # The original went away after listing; a copy an earlier run made stands for it.
        if existing is not None:
            entry["status_note"] = "original already gone"
            return existing
        return None
    _after_copy()
    copy = _head_copy(s3, s, entry)
    if copy is None or not _matches(s3, s, entry, copy):
        raise storage.VerifyError(f"copy s3://{s.archive_bucket}/{entry['archive_key']} does "
                                  f"not match s3://{s.processed_bucket}/{entry['key']}")
    return copy


def _copy(s3, s: Settings, entry: dict) -> None:
    source = {"Bucket": s.processed_bucket, "Key": entry["key"]}
    # IfMatch: copy the version that was listed (and sized), not a newer one.
    extra = {"StorageClass": s.storage_class, "ChecksumAlgorithm": "SHA256",
             "CopySourceIfMatch": entry["etag"], "MetadataDirective": "COPY"}
    if entry["size"] <= storage.COPY_OBJECT_LIMIT:
        s3.copy_object(Bucket=s.archive_bucket, Key=entry["archive_key"], CopySource=source,
                       **extra)
    else:
        extra.pop("MetadataDirective")  # the managed copy copies metadata itself
        s3.copy(source, s.archive_bucket, entry["archive_key"], ExtraArgs=extra)


def _missing(e: ClientError) -> bool:
    return e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


def _head_copy(s3, s: Settings, entry: dict) -> dict | None:
    try:
        return s3.head_object(Bucket=s.archive_bucket, Key=entry["archive_key"],
                              ChecksumMode="ENABLED")
    except ClientError as e:
        if _missing(e):
            return None
        raise


def _matches(s3, s: Settings, entry: dict, copy: dict) -> bool:
    """Same size, and the same content by ETag (single-part MD5) or else by SHA-256."""
    if copy["ContentLength"] != entry["size"]:
        return False
    if copy.get("StorageClass", "STANDARD") != s.storage_class:
        return False
    # A single-part, SSE-S3 object's ETag is its MD5 and CopyObject keeps it. Multipart
    # sources (outputs above 8 MiB) and SSE-KMS have other ETags: hash the source then.
    if "-" not in entry["etag"] and copy["ETag"] == entry["etag"]:
        return True
    source = _sha256(s3, s.processed_bucket, entry["key"])
    if source is None:
        return False
    stored = copy.get("ChecksumSHA256")
    if stored and "-" not in stored:
        return stored == source
    return _sha256(s3, s.archive_bucket, entry["archive_key"]) == source


def _sha256(s3, bucket: str, key: str) -> str | None:
    found = storage.open_object(s3, bucket, key)
    if found is None:
        return None
    digest = hashlib.sha256()
    with found.body as body:
        for chunk in iter(lambda: body.read(1 << 20), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def _mark_row(s: Settings, entry: dict, copy: dict) -> str:
    """Point the source file's row at the copy; returns what happened to it."""
    area = area_of(s, entry["key"])
    source = (copy.get("Metadata") or {}).get("source")
    if not source and area.row_field == "output":
        source = _source_from_first_line(s, entry)
    if not source or not source.startswith("s3://") or "/" not in source[5:]:
        return "no row: the object names no source file"
    row_key = source[5:].split("/", 1)[1]
    table = results_table(s.results_table)
    row = results.get(table, row_key)
    processed_uri = f"s3://{s.processed_bucket}/{entry['key']}"
    archive_uri = f"s3://{s.archive_bucket}/{entry['archive_key']}"
    if row is None:
        return f"no row for {row_key}"
    if area.row_field != "output":
        return _relink(table, row_key, row, area.row_field, processed_uri, archive_uri)
    if row.get("status") == results.ARCHIVED and row.get("output") == archive_uri:
        return f"{row_key}: already ARCHIVED"
    if row.get("output") != processed_uri:
        return f"{row_key}: left alone, its output is now {row.get('output')}"
    results.mark_archived(table, row_key, archive_uri, archived_from=processed_uri,
                          storage_class=s.storage_class)
    return f"{row_key}: ARCHIVED"


def _relink(table, row_key: str, row: dict, field: str, processed_uri: str,
            archive_uri: str) -> str:
    """A rejects file or thumbnail moved: its row's link follows, and nothing else changes.

    Not updated_at: it orders the by-status index, and a FAILED row updated now would show
    in `pipectl status` as a fresh failure (a file over the reject ratio keeps its rejects).
    """
    if row.get(field) == archive_uri:
        return f"{row_key}: {field} already archived"
    if row.get(field) != processed_uri:
        return f"{row_key}: left alone, its {field} is now {row.get(field)}"
    try:
        table.update_item(Key={results.RESULTS_PARTITION_KEY: row_key},
                          UpdateExpression="SET #f = :to", ConditionExpression="#f = :from",
                          ExpressionAttributeNames={"#f": field},
                          ExpressionAttributeValues={":to": archive_uri, ":from": processed_uri})
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
            raise
        return f"{row_key}: left alone, its {field} changed meanwhile"
    return f"{row_key}: {field} archived"


def _source_from_first_line(s: Settings, entry: dict) -> str | None:
    """`_metadata.source` of the first record, for outputs written without the metadata."""
    s3 = s3_client()
    for bucket, key in ((s.archive_bucket, entry["archive_key"]),
                        (s.processed_bucket, entry["key"])):
        try:
            body = s3.get_object(Bucket=bucket, Key=key,
                                 Range=f"bytes=0-{HEAD_BYTES - 1}")["Body"].read()
        except ClientError as e:
            if _missing(e):
                continue
            raise
        try:
            first = json.loads(body.split(b"\n", 1)[0])
            return first["_metadata"]["source"]
        except (ValueError, KeyError, TypeError):
            return None
    return None


_copies = 0
_copies_lock = threading.Lock()


def _after_copy() -> None:
    """Test hook for crash safety: ARCHIVER_KILL_AFTER_COPIES=N SIGKILLs the process after
    the Nth copy, before its row is marked and its original deleted."""
    global _copies
    limit = os.environ.get("ARCHIVER_KILL_AFTER_COPIES")
    if not limit:
        return
    with _copies_lock:
        _copies += 1
        if _copies >= int(limit):
            os.kill(os.getpid(), signal.SIGKILL)


def record_run(s: Settings, request: Request, summary: dict) -> None:
    """The run's totals in the results table, for `pipectl status` (not a result: no status).

    A run's first invocation replaces the item; the invocations that continue it add
    their counts, while the item is still theirs (a run started since owns it then).
    """
    table = results_table(s.results_table)
    latest = {"finished_at": results.now_iso(), "remaining": summary["remaining"],
              "skipped_glacier": summary["skipped_glacier"]}
    added = {k: summary[k] for k in ("moved", "bytes", "errors", "duration_ms")}
    key = {results.RESULTS_PARTITION_KEY: ARCHIVER_KEY}
    if not request.continues:
        table.put_item(Item={**key, "run_id": request.run_id,
                             "last_run_at": summary["started_at"], **latest, **added,
                             "invocations": 1})
        return
    update = results._expression(latest, dict(added, invocations=1), ())
    update["ExpressionAttributeNames"]["#run"] = "run_id"
    update["ExpressionAttributeValues"][":run"] = request.run_id
    try:
        table.update_item(Key=key, ConditionExpression="#run = :run", **update)
    except table.meta.client.exceptions.ConditionalCheckFailedException:
        _log("WARNING", "not added to the run's totals for `pipectl status`: another run "
             "has started since (this invocation's totals are in this line)",
             run_id=request.run_id, **added)


def _log(level: str, message: str, **fields) -> None:
    """One JSON line on stdout; the run's summary line also carries its metrics (EMF)."""
    metrics = fields.pop("metrics", None)
    telemetry.log(level, message, metrics=metrics, **fields)
