"""The results table: one row per source object, always changed with UpdateItem.

A row is keyed by bucket and key together (`row_key`: the object's s3:// URI), as the
same key can name objects in two buckets; every row also carries both as attributes.

UpdateItem (never PutItem) keeps what earlier attempts wrote, `attempts` above all.
The schema (key, index, statuses, row_key) is common/contract.py's, which pipectl reads.

Every change of a row's status goes through `row_access.transition`, which moves the
row and the `__counters__` item in one transaction, so `pipectl status` reads exact counts
with a single GetItem however many rows exist.
"""

from __future__ import annotations

import time
from typing import Any

from common.contract import (  # noqa: F401 (the schema, named here for its users)
    COUNTERS_KEY,
    RESULT_STATUSES,
    RESULTS_PARTITION_KEY,
    STATUS_INDEX,
    STATUS_INDEX_KEYS,
    TALLIES,
    Status,
    row_key,
)
from common.contract import PREVIOUS_VERSION_FIELD as PREVIOUS_VERSION
from common.contract import PROCESSOR_VERSION as VERSION_VARIABLE  # noqa: F401
from common.contract import VERSION_FIELD as VERSION
from common.row_access import (  # noqa: F401 (read and changed through results by its users)
    UNREAD,
    Changed,
    Contention,
    Guard,
    get,
    now_iso,
    transition,
    update,
    update_expression,
)
from common.s3_event import Reprocess as Rerun

PROCESSING, PROCESSED, FAILED, ARCHIVED = Status
MAX_ERROR_CHARS = 1000
# The lease an attempt holds while it works on an object: epoch seconds after which
# the attempt is certainly dead (the function's own timeout), and who holds it.
LEASE_UNTIL, LEASE_HOLDER = "in_progress_until", "in_progress_by"
# Attempts on this version that died holding the lease: the function crashed or hit its
# timeout while working on this very object (a transient error releases the lease first).
CRASHES = "crashed_attempts"
# The message whose delivery stopped attempting the object (see give_up): its later
# deliveries stop at once too; another message (a replay) starts afresh.
GIVEN_UP_BY = "given_up_by_message"
# The processor's version (PROCESSOR_VERSION in its environment, derived by deploy), the
# version that wrote the row before a re-run, and the reprocess run that re-ran it last.
UNVERSIONED = "unversioned"   # a processor started without PROCESSOR_VERSION (a bare test)
REPROCESS_RUN = "reprocess_run"
PREVIOUS_STATUS = "previous_status"   # the status a re-run found (its tallies were counted)


def counters(table) -> dict[str, int]:
    found = get(table, COUNTERS_KEY) or {}
    return {status: int(found.get(status, 0)) for status in RESULT_STATUSES}


def mark_started(table, key: str, bucket: str, kind: str | None, version: str,
                 started_at: str) -> None:
    values = {"status": PROCESSING, "bucket": bucket, "started_at": started_at,
              "updated_at": started_at, "processor_version": version}
    if kind:
        values["kind"] = kind
    # A retry of a file that failed before must not keep the old reason.
    transition(table, key, values, add={"attempts": 1}, remove=("error", "finished_at"))


def crashed_attempts(row: dict | None, etag: str, message_id: str | None = None,
                     now: float | None = None) -> int:
    """How many attempts on this version of the object died holding the lease, the one
    before now included when its lease expired without being given up. 0 while a live
    attempt holds the lease (that one decides, and this attempt's claim loses), and for a
    message other than the one whose delivery gave up (a replay starts afresh)."""
    if not row or row.get("etag") != etag:
        return 0
    if row.get(GIVEN_UP_BY) is not None and row[GIVEN_UP_BY] != (message_id or ""):
        return 0
    now = time.time() if now is None else now
    lease = row.get(LEASE_UNTIL)
    if lease is not None and lease >= now:
        return 0
    died = row.get("status") == PROCESSING and lease is not None
    return int(row.get(CRASHES) or 0) + int(died)


def give_up(table, key: str, error: str, message_id: str | None, crashes: int) -> None:
    """This delivery of message_id does not attempt the object: keep why and the deaths
    counted (crashed_attempts), count the delivery as an attempt, drop the dead lease. The
    status stays PROCESSING: the message goes on to the dead-letter queue, and a replay
    (a new message) attempts it afresh."""
    update(table, key, {"last_error": error[:MAX_ERROR_CHARS], GIVEN_UP_BY: message_id or "",
                         CRASHES: crashes},
            add={"attempts": 1}, remove=(LEASE_UNTIL, LEASE_HOLDER))


def claim(table, key: str, *, bucket: str, kind: str | None, version: str, started_at: str,
          etag: str, holder: str, until: int, now: float | None = None,
          same_version: dict | None = None, finished: tuple[str, ...] = (PROCESSED,),
          crashes: int | None = None, rerun: Rerun | None = None, row: Any = UNREAD,
          once: bool = False) -> bool:
    """Start an attempt on this version of the object: row -> PROCESSING with a lease.

    Conditional on no other attempt holding an unexpired lease and on this version
    (etag) not being PROCESSED already, so of two concurrent attempts exactly one
    wins. (A FAILED version may be claimed again: the same bytes fail the same way,
    unless the operator raised a limit and uploaded them again.)
    False for the loser, which should let its message come back later. The
    lease expires at `until` (epoch seconds): by then its holder is certainly dead
    (the function's timeout), so a crashed attempt never blocks its retry for long.

    same_version: more row attributes that, with the etag, identify the version (the
    fetcher's request_version: a re-upload of identical bytes is a new request to
    fetch); they are written with the claim. finished: the statuses in which a
    matching version is done and not claimed again (the fetcher adds FAILED: its
    outcome depends on a remote API, so a second attempt would call it again).
    crashes: crashed_attempts() as read before the claim, recorded with it.
    rerun: a `pipectl reprocess` message's marker: a done version is claimed again (see
    rerun_guard), and the row keeps the version it had as previous_version.
    row, once: the row as the caller read it, see _transition (None: a first claim, one
    conditional write and no read).
    """
    now = time.time() if now is None else now
    same = {"etag": etag, **(same_version or {})}
    values = {"status": PROCESSING, "bucket": bucket, "started_at": started_at,
              "updated_at": started_at, "processor_version": version, **same,
              LEASE_UNTIL: int(until), LEASE_HOLDER: holder}
    if kind:
        values["kind"] = kind
    remove: tuple[str, ...] = ("error", "finished_at")
    if crashes is not None:
        values[CRASHES] = crashes
        remove += (GIVEN_UP_BY,)

    def allows(row: dict | None) -> bool:
        if row is None:
            return True
        lease = row.get(LEASE_UNTIL)
        if lease is not None and lease >= now:
            return False
        return not (all(row.get(name) == value for name, value in same.items())
                    and row.get("status") in finished)

    condition = "(attribute_not_exists(#g_lease) OR #g_lease < :g_now)"
    names: dict[str, str] = {"#g_lease": LEASE_UNTIL}
    guard_values: dict[str, Any] = {":g_now": int(now)}
    if rerun is not None:
        values[REPROCESS_RUN] = rerun.run_id
        before = get(table, key) if row is UNREAD else row
        if before and before.get("status") in (PROCESSED, FAILED):
            values[PREVIOUS_STATUS] = before["status"]
            if before.get(VERSION):
                values[PREVIOUS_VERSION] = before[VERSION]
        guard = rerun_guard(same, rerun, now)
        return transition(table, key, values, add={"attempts": 1}, remove=remove, guard=guard,
                           row=before, once=once)
    if finished:
        # A missing attribute fails every comparison in DynamoDB, hence attribute_not_exists.
        differs = []
        for i, (name, value) in enumerate(same.items()):
            names[f"#g_v{i}"], guard_values[f":g_v{i}"] = name, value
            differs += [f"attribute_not_exists(#g_v{i})", f"#g_v{i} <> :g_v{i}"]
        names["#g_status"] = "status"
        for i, status in enumerate(finished):
            guard_values[f":g_done{i}"] = status
        differs.append("(" + " AND ".join(f"#g_status <> :g_done{i}"
                                          for i in range(len(finished))) + ")")
        condition += f" AND ({' OR '.join(differs)})"
    guard = Guard(condition=condition, names=names, values=guard_values, allows=allows)
    # A retry of a file that failed before must not keep the old reason.
    return transition(table, key, values, add={"attempts": 1}, remove=remove, guard=guard,
                       row=row, once=once)


def rerun_guard(same: dict, rerun: Rerun, now: float) -> Guard:
    """The claim of a re-run: no live lease, and not done already. Done is PROCESSED by the
    target version (this version of the object: `same`), or PROCESSED or FAILED by this
    very run (a FAILED file that fails again is not retried by a duplicate message), or
    ARCHIVED (the output left the processed bucket; re-running would write a second)."""
    def missing_or(name: str, test: str) -> str:
        # A missing attribute fails every comparison in DynamoDB, hence attribute_not_exists.
        return f"(attribute_not_exists({name}) OR {test})"

    names = {"#g_lease": LEASE_UNTIL, "#g_status": "status", "#g_ver": VERSION,
             "#g_run": REPROCESS_RUN}
    values = {":g_now": int(now), ":g_target": rerun.version, ":g_run": rerun.run_id,
              ":g_processed": PROCESSED, ":g_failed": FAILED, ":g_archived": ARCHIVED}
    differs = ["attribute_not_exists(#g_ver) OR #g_ver <> :g_target",
               "attribute_not_exists(#g_status) OR #g_status <> :g_processed"]
    for i, (name, value) in enumerate(same.items()):
        names[f"#g_v{i}"], values[f":g_v{i}"] = name, value
        differs.append(f"attribute_not_exists(#g_v{i}) OR #g_v{i} <> :g_v{i}")
    condition = " AND ".join([
        missing_or("#g_lease", "#g_lease < :g_now"),
        "(" + " OR ".join(differs) + ")",
        missing_or("#g_run", "#g_run <> :g_run OR (#g_status <> :g_processed AND "
                             "#g_status <> :g_failed)"),
        missing_or("#g_status", "#g_status <> :g_archived")])

    def allows(row: dict | None) -> bool:
        return row is None or rerun_allows(row, same, rerun, now)

    return Guard(condition=condition, names=names, values=values, allows=allows)


def rerun_allows(row: dict, same: dict, rerun: Rerun, now: float | None = None) -> bool:
    """Whether a re-run may claim this row: rerun_guard's condition, for a row read."""
    now = time.time() if now is None else now
    lease = row.get(LEASE_UNTIL)
    status = row.get("status")
    if lease is not None and lease >= now:
        return False
    if status == ARCHIVED:
        return False
    if status in (PROCESSED, FAILED) and row.get(REPROCESS_RUN) == rerun.run_id:
        return False
    return not (status == PROCESSED and row.get(VERSION) == rerun.version
                and all(row.get(name) == value for name, value in same.items()))


def rerun_done(row: dict | None, rerun: Rerun, now: float | None = None) -> bool:
    """Whether a re-run finds its work done already (no claim to try): the row is PROCESSED
    by the target version, or finished by this run, or ARCHIVED; never while a live lease
    is held (that attempt decides, and this one's claim waits for it)."""
    now = time.time() if now is None else now
    if row is None or (row.get(LEASE_UNTIL) is not None and row[LEASE_UNTIL] >= now):
        return False
    return not rerun_allows(row, {}, rerun, now)


def rerun_source(row: dict | None) -> str | None:
    """Where a re-run finds the original when it is no longer in incoming/: where the row
    says it went (completed/ or failed/; a re-run that crashed left the row PROCESSING with
    that location unchanged)."""
    return (row or {}).get("location") or None


def rerun_output(row: dict | None, bucket: str) -> str | None:
    """The output key a re-run overwrites: the one the row names (the same key, so nothing
    else points at a stale one; a re-run that crashed left it on the PROCESSING row), or
    None to name it afresh."""
    home = f"s3://{bucket}/"
    output = (row or {}).get("output") or ""
    if (row or {}).get("status") != ARCHIVED and output.startswith(home):
        return output[len(home):]
    return None


def counted_tallies(row: dict | None) -> dict[str, int]:
    """What the counters item already holds of the processor's TALLIES for this row: its
    rejected records and thumbnail if it was PROCESSED when the re-run claimed it
    (PROCESSED, or PROCESSING with previous_status PROCESSED), else nothing. A re-run adds
    only the difference, so the totals stay those of the files' current outputs."""
    row = row or {}
    status = row.get("status")
    if status == PROCESSED or (status == PROCESSING and row.get(PREVIOUS_STATUS) == PROCESSED):
        return {"records_rejected": int(row.get("records_rejected") or 0),
                "thumbnails": int(bool(row.get("thumbnail")))}
    return {}


def not_processed(table, key: str) -> str | None:
    """Why the row does not say PROCESSED (its error when FAILED), None when it does."""
    row = get(table, key)
    if row is None:
        return "not processed: the object is not one this pipeline serves (see the log)"
    if row.get("status") in (PROCESSED, ARCHIVED):
        return None
    if row.get("status") == FAILED:
        return row.get("error") or str(FAILED)
    return f"the row is {row.get('status')}: {row.get('last_error') or 'under way'}"


def release(table, key: str, holder: str) -> None:
    """Give the lease up early (a transient failure), if this attempt still holds it."""
    try:
        table.update_item(Key={RESULTS_PARTITION_KEY: key},
                          UpdateExpression="REMOVE #lease, #holder",
                          ConditionExpression="#holder = :holder",
                          ExpressionAttributeNames={"#lease": LEASE_UNTIL,
                                                    "#holder": LEASE_HOLDER},
                          ExpressionAttributeValues={":holder": holder})
    except table.meta.client.exceptions.ConditionalCheckFailedException:
        pass


def mark_processed(table, key: str, tally: dict[str, int] | None = None, row: Any = UNREAD,
                   **fields) -> None:
    """tally: what to add to the TALLIES (rejected records, a thumbnail, a fetched response).
    A field given as None is removed from the row (a re-run's output has no rejects).
    row: as _transition's (an attempt holding the lease knows the row is PROCESSING)."""
    gone = tuple(name for name, value in fields.items() if value is None)
    transition(table, key, {k: v for k, v in fields.items() if v is not None}
                | {"status": PROCESSED},
                remove=("error", LEASE_UNTIL, LEASE_HOLDER, *gone), tally=tally, row=row)


def mark_failed(table, key: str, error: str, count_attempt: bool = False, row: Any = UNREAD,
                **fields) -> None:
    transition(table, key, dict(fields, status=FAILED, error=error[:MAX_ERROR_CHARS]),
                add={"attempts": 1} if count_attempt else None,
                remove=(LEASE_UNTIL, LEASE_HOLDER), row=row)


def mark_moved(table, key: str, location: str) -> None:
    update(table, key, {"location": location})


def record_transient_error(table, key: str, error: str) -> None:
    update(table, key, {"last_error": error[:MAX_ERROR_CHARS]})


def mark_archived(table, key: str, location: str, **fields) -> None:
    """The file's output now lives at location (the verified archive copy)."""
    archived_at = now_iso()
    transition(table, key, dict(fields, status=ARCHIVED, output=location,
                                 archived_at=archived_at, updated_at=archived_at))
