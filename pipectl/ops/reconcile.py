"""Check the results table against the buckets: what `status` takes on trust.

Three promises are checked (README, "Failures"): every PROCESSED row's output exists
and is the object the processor wrote (its ETag, recorded on the row as output_etag);
every original in completed/ has a row; no file waits in incoming/ past the stuck time
without a row. The calls are bounded by the data, not one per row: the table is read
through its status index and each prefix is listed, 1,000 keys a page, all of them at
once on a few threads; only rows written before outputs carried their ETag, outputs
outside the processed bucket and stuck files cost a call each (also in parallel).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from pipectl.aws import dynamodb, s3
from pipectl.aws.session import Aws
from pipectl.errors import NotFound
from pipectl.naming import RESULT_STATUSES, STATUS_INDEX, Names
from pipectl.ops import results as results_ops
from pipectl.ops.results import ResultRow
from pipectl.ops.status import DEFAULT_STUCK_AFTER

THREADS = 8  # concurrent listings, queries and HEADs: well inside botocore's pool of 10

OUTPUT_MISSING = "output missing"
OUTPUT_DIFFERS = "output differs"
NO_ROW = "original without a row"
WAITING = "waiting without a row"


@dataclass(frozen=True)
class Difference:
    problem: str  # one of the four above
    key: str  # the row's key, or the object listed
    detail: str


@dataclass
class ReconcileReport:
    rows: int = 0  # rows read (every status)
    outputs: int = 0  # PROCESSED rows whose output was checked
    completed: int = 0  # originals listed in completed/
    incoming: int = 0  # files listed in incoming/
    differences: list[Difference] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def consistent(self) -> bool:
        return not self.differences


def reconcile(aws: Aws, names: Names, *, stuck_after: timedelta = DEFAULT_STUCK_AFTER,
              now: datetime | None = None) -> ReconcileReport:
    started = time.monotonic()
    now = now or datetime.now(timezone.utc)
    ddb, client = aws.client("dynamodb"), aws.client("s3")
    if not results_ops.table_exists(ddb, names):
        raise NotFound(f"results table '{names.results_table}' does not exist "
                       "(run `pipectl deploy`)")
    p = names.config.prefixes
    raw, processed = names.bucket("raw"), names.bucket("processed")
    with ThreadPoolExecutor(THREADS, thread_name_prefix="reconcile") as pool:
        by_status = {st: pool.submit(_rows, ddb, names, st) for st in RESULT_STATUSES}
        outputs = pool.submit(_listing, client, processed, p.processed)
        completed = pool.submit(_listing, client, raw, p.completed)
        incoming = pool.submit(_listing, client, raw, p.incoming)
        rows = {st: f.result() for st, f in by_status.items()}
        report = ReconcileReport(rows=sum(len(r) for r in rows.values()),
                                 completed=len(completed.result()),
                                 incoming=len(incoming.result()))
        report.differences += _check_outputs(pool, client, rows["PROCESSED"], processed,
                                             p.processed, outputs.result(), report)
        located = {r.location for status_rows in rows.values() for r in status_rows}
        report.differences += [
            Difference(NO_ROW, key, f"{s3.uri(raw, key)} has no row that moved it there")
            for key in sorted(completed.result()) if key not in located]
        cutoff = now - stuck_after
        waiting = sorted(k for k, o in incoming.result().items()
                         if not k.endswith("/") and o.last_modified and o.last_modified < cutoff)
        found = pool.map(lambda k: results_ops.find_result(ddb, names, k), waiting)
        report.differences += [
            Difference(WAITING, key, f"in {p.incoming} since "
                                     # waiting holds only keys with a last_modified
                                     f"{incoming.result()[key].last_modified.isoformat()}, "  # type: ignore[union-attr]
                                     "and the table has no row for it")
            for key, row in zip(waiting, found, strict=True) if row is None]
    report.seconds = round(time.monotonic() - started, 3)
    return report


def _rows(ddb, names: Names, status: str) -> list[ResultRow]:
    items, _ = dynamodb.query_index(ddb, names.results_table, STATUS_INDEX, ("status", status))
    return [results_ops.row(i) for i in items]


def _listing(client, bucket: str, prefix: str) -> dict[str, s3.ObjectSummary]:
    return {o.key: o for o in s3.iter_objects(client, bucket, prefix)
            if isinstance(o, s3.ObjectSummary)}


def _check_outputs(pool, client, rows: list[ResultRow], processed: str, prefix: str,
                   listed: dict[str, s3.ObjectSummary],
                   report: ReconcileReport) -> list[Difference]:
    """Outputs under the listed prefix are checked against the listing; the others (and
    rows without output_etag, written before rows carried it) by a HEAD each."""
    found: list[Difference] = []
    headed: list[tuple[ResultRow, str, str]] = []
    for r in rows:
        if not r.output or not r.output.startswith("s3://"):
            continue
        bucket, _, key = r.output[5:].partition("/")
        if bucket != processed:
            # The fetcher's output is a file in the raw bucket's incoming/, processed on
            # (and moved) like any upload: its row ends at the fetch, not at that file.
            continue
        report.outputs += 1
        recorded = r.details.get("output_etag")
        if not key.startswith(prefix) or not recorded:
            headed.append((r, bucket, key))
        elif key not in listed:
            found.append(Difference(OUTPUT_MISSING, r.key, f"{r.output} does not exist"))
        elif listed[key].etag != recorded:
            found.append(Difference(OUTPUT_DIFFERS, r.key, f"{r.output} has ETag "
                                                           f"{listed[key].etag}, the row "
                                                           f"recorded {recorded}"))
    heads = pool.map(lambda t: s3.head_object(client, t[1], t[2]), headed)
    for (r, _, _), head in zip(headed, heads, strict=True):
        found.extend(_against_head(r, head))
    return found


def _against_head(r: ResultRow, head: dict | None) -> list[Difference]:
    if head is None:
        return [Difference(OUTPUT_MISSING, r.key, f"{r.output} does not exist")]
    recorded = r.details.get("output_etag")
    if recorded:
        if head.get("ETag") != recorded:
            return [Difference(OUTPUT_DIFFERS, r.key, f"{r.output} has ETag {head.get('ETag')}, "
                                                      f"the row recorded {recorded}")]
        return []
    # Written before rows carried output_etag: the output names the source version it
    # was made from (metadata source-etag), which must be the row's.
    source = (head.get("Metadata") or {}).get("source-etag")
    version = (r.etag or "").strip('"')
    if version and source is not None and source != version:
        return [Difference(OUTPUT_DIFFERS, r.key, f"{r.output} was made from version "
                                                  f"{source}, the row is for {version}")]
    return []
