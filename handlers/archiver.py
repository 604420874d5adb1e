"""Archiver function: processed objects older than the retention period move to the archive bucket.

Event: an EventBridge scheduled event (the configured retention), or from `pipectl archive`
{"older_than_days": N | "older_than_hours": N, "dry_run": bool, "now": ISO-8601,
"run_id": str}. An invocation without a run_id starts a run (and returns its new id); one
that runs out of time returns "truncated", and `pipectl archive` invokes it again with
the first invocation's now and run_id, so the `__archiver__` item adds up the whole run.

What ages out: everything the processor writes to the processed bucket (processed/,
rejects/, thumbnails/), each under its own part of the archive prefix: archiving/layout.py.
Each object is copied, verified, its results row marked, and only then the original
deleted, every step safe to repeat, so a run stopped anywhere loses nothing and the next
run finishes the job: archiving/move.py (rows: archiving/rows.py). This module plans a
run and carries it out in batches within the invocation's time.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from archiving.layout import Settings, archive_key, area_of, areas
from archiving.move import RowTarget, delete_originals, ensure_copy, existing_copies
from archiving.rows import RowMarker, row_hints
from common import contract, results, telemetry
from common.clients import reset_clients, results_table, s3_client  # noqa: F401 (tests reset them)

ARCHIVER_KEY = contract.ARCHIVER_KEY  # the last run, read by `pipectl status`
DELETE_BATCH = 1000  # DeleteObjects takes at most 1,000 keys
# Objects in these classes must be restored before S3 copies them (GLACIER_IR need not,
# but it is colder than any archive class, so moving it would only cost money).
GLACIER_CLASSES = ("GLACIER", "DEEP_ARCHIVE", "GLACIER_IR")
# Stop taking objects when less than this (or a fifth of the invocation) is left: in-flight
# copies, the deletes and the run record must finish before Lambda's timeout.
TIME_MARGIN_MS = 30_000
MAX_LISTED = 20_000  # objects listed in the result; Lambda's response limit is 6 MB


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
    summary: dict[str, Any] = {"dry_run": request.dry_run, "started_at": results.now_iso(),
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
    assert area is not None, "candidates are listed from the areas"
    target = archive_key(s, key, last_modified)
    month = target[len(area.archive):len(area.archive) + 7]
    storage_class = obj.get("StorageClass") or "STANDARD"
    return {"key": key, "archive_key": target, "size": obj["Size"], "etag": obj["ETag"],
            "last_modified": last_modified.isoformat(), "storage_class": storage_class,
            "month": month, "source_prefix": f"{area.source}{month}/",
            "archive_prefix": f"{area.archive}{month}/",
            "action": "skip_glacier" if storage_class in GLACIER_CLASSES else "move"}


def _move_batch(s: Settings, batch: list[dict], deadline: float | None) -> None:
    """Copy, verify and mark each object, then delete the verified originals together.

    Per object that is one CopyObject, verified by the ETag it answers; copies already
    there are found by one listing per 1,000 keys, rows by a Query of the status index
    per 1 MB of rows and marked many per transaction (archiving/rows.py), originals
    deleted 1,000 a call. A HeadObject only where the ETag cannot tell (multipart) or the
    index did not name the row (then the copy's `source` metadata does).
    """
    try:
        listed: dict[str, dict] | None = existing_copies(s, batch)
    except Exception as e:  # noqa: BLE001 - the listing only saves calls
        # No archive bucket, no s3:ListBucket: each object then looks for its copy itself,
        # so each failure is that object's, with its reason, and the others still move.
        _log("WARN", "could not list the archive's copies; checking each object",
             error=f"{type(e).__name__}: {e}")
        listed = None
    hints = row_hints(s, batch)
    marker = RowMarker(s)
    if s.concurrency <= 1:
        for entry in batch:
            _archive_one(s, entry, deadline, listed, hints, marker)
    else:
        with ThreadPoolExecutor(max_workers=s.concurrency) as pool:
            futures = [pool.submit(_archive_one, s, entry, deadline, listed, hints, marker)
                       for entry in batch]
            try:
                for future in futures:
                    future.result()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    marker.flush()
    delete_originals(s, [e for e in batch if e["status"] == "delete"])


def _archive_one(s: Settings, entry: dict, deadline: float | None, listed: dict[str, dict] | None,
                 hints: dict[str, RowTarget], marker: RowMarker) -> None:
    """Leaves entry["status"] at delete (copy verified, row marked), deferred or error
    (or copied: its row waits in the marker, whose flush settles it)."""
    if deadline is not None and time.monotonic() > deadline:
        entry["status"] = "deferred"
        return
    try:
        # _after_copy is looked up here, at call time, so tests can replace it.
        copy = ensure_copy(s, entry, after_copy=_after_copy, listed=listed)
        if copy is None:
            entry["status"] = "error"
            entry["error"] = "vanished from the processed bucket and no copy exists"
            return
        entry["status"] = "copied"
        # Marks the row (now, or soon with others'): status "delete" then, or "error".
        marker.submit(entry, copy, hints.get(entry["key"]))
    except Exception as e:  # noqa: BLE001 - one object's failure never stops the others
        entry["status"], entry["error"] = "error", f"{type(e).__name__}: {e}"
        _log("ERROR", "not archived; the original is kept", key=entry["key"], status="ERROR",
             error=entry["error"])


# Test hook for crash safety (tests/server/test_archive.py): ARCHIVER_KILL_AFTER_COPIES=N
# SIGKILLs the process after the Nth copy, before its row is marked and its original
# deleted. Read once, at a cold start (an execution environment's variables are fixed
# for its life), like the processor's fault hook.
_KILL_AFTER_COPIES = os.environ.get(contract.ARCHIVER_KILL_AFTER_COPIES) or ""
_copies = 0
_copies_lock = threading.Lock()


def _after_copy() -> None:
    global _copies
    if not _KILL_AFTER_COPIES:
        return
    with _copies_lock:
        _copies += 1
        if _copies >= int(_KILL_AFTER_COPIES):
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
    update = results.update_expression(latest, dict(added, invocations=1), ())
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
