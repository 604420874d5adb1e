"""pipectl reprocess: send files already in the buckets through the pipeline again.

What is selected: results rows (PROCESSED and FAILED; by key glob, status, time and
processor version) and, with `stranded`, objects under the incoming prefix that have no
row at all (an event that was lost, an upload from before the pipeline existed).

How they go: as the S3 ObjectCreated notifications the processor already receives, with
one key more (REPROCESS_MARKER: the run's id and the deployed version it targets),
through the processing queue, so the local runtime, the dead-letter queue and replay
apply unchanged. SendMessageBatch carries 10 per call, paced to at most `rate` messages
a second so a backfill does not starve live uploads.

What a re-run does is the processor's (handlers/common/results.rerun_guard, README
"Reprocessing"): the claim refuses a row already PROCESSED by the target version, so a
selection sent twice, or a run killed and started again, does the work once.
"""

from __future__ import annotations

import fnmatch
import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from pipectl.aws import awslambda, dynamodb, s3
from pipectl.aws import sqs as sqs_api
from pipectl.aws.session import Aws
from pipectl.errors import NotFound, PipectlError, UsageError
from pipectl.naming import (
    PROCESSOR_VERSION_VARIABLE,
    REPROCESS_MARKER,
    RESULTS_PARTITION_KEY,
    STATUS_INDEX,
    VERSION_FIELD,
    Names,
    row_key,
)
from pipectl.ops import events
from pipectl.ops.results import table_exists

REPROCESSABLE = ("PROCESSED", "FAILED")  # ARCHIVED outputs left; PROCESSING ones are under way
STRANDED = "STRANDED"                     # the status shown for an object without a row
ALREADY_CURRENT = "already processed by the deployed version"
PAGE = 1000                               # rows per Query page while selecting
SEND_ATTEMPTS = 3                         # SendMessageBatch entries that failed are sent again
_WILDCARD = re.compile(r"[*?\[]")


@dataclass(frozen=True)
class Selection:
    key_filter: str | None = None
    statuses: tuple[str, ...] = ()
    since: str | None = None              # ISO-8601 UTC bounds on updated_at / LastModified
    until: str | None = None
    not_current: bool = False
    older_than_version: str | None = None
    stranded: bool = False
    max_files: int | None = None

    @property
    def rows(self) -> bool:
        """Whether results rows are selected: --filter and --since/--until narrow what is
        selected; with --stranded they narrow the stranded objects, and rows come only
        with a status or a version to select them by."""
        return bool(self.statuses or self.not_current or self.older_than_version) \
            or not self.stranded

    def check(self) -> None:
        if not (self.statuses or self.not_current or self.older_than_version or self.key_filter
                or self.since or self.until or self.stranded):
            raise UsageError("say what to reprocess: --filter, --status, --since/--until, "
                             "--not-current, --older-than-version or --stranded")
        for status in self.statuses:
            if status not in REPROCESSABLE:
                raise UsageError(f"--status: {status} rows are not reprocessed (only "
                                 f"{' and '.join(REPROCESSABLE)}: an ARCHIVED output left the "
                                 "processed bucket, a PROCESSING file is under way)")
        if self.not_current and self.older_than_version:
            raise UsageError("--not-current and --older-than-version exclude each other")


@dataclass(frozen=True)
class Candidate:
    key: str
    bucket: str
    status: str                # PROCESSED | FAILED | STRANDED
    size: int | None
    etag: str | None
    version: str | None        # the processor version on the row
    updated_at: str | None
    location: str | None = None  # where the original lies (the row's), if not at key


@dataclass
class ReprocessReport:
    run_id: str
    target_version: str
    queue: str
    dry_run: bool
    selected: list[Candidate] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)   # reason -> files
    sent: int = 0
    failed: dict[str, str] = field(default_factory=dict)    # key -> why it was not sent
    calls: int = 0                                          # SendMessageBatch calls
    seconds: float = 0.0                                    # spent sending
    rate: float | None = None                               # the --rate asked for

    @property
    def bytes(self) -> int:
        return sum(c.size or 0 for c in self.selected)

    @property
    def by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for c in self.selected:
            counts[c.status] = counts.get(c.status, 0) + 1
        return counts


Progress = Callable[[ReprocessReport], None]


def deployed_version(aws: Aws, names: Names) -> str:
    """The version the deployed processor writes (deploy put it in its environment)."""
    found = awslambda.get_function(aws.client("lambda"), names.function("processor"))
    if found is None:
        raise NotFound(f"function '{names.function('processor')}' is not deployed "
                       "(run `pipectl deploy`)")
    version = found.get("Environment", {}).get("Variables", {}).get(PROCESSOR_VERSION_VARIABLE)
    if not version:
        raise PipectlError(f"the deployed processor has no {PROCESSOR_VERSION_VARIABLE} in its "
                           "environment (deployed by an older pipectl): run `pipectl deploy`")
    return version


def select(aws: Aws, names: Names, selection: Selection, current: str
           ) -> tuple[list[Candidate], dict[str, int]]:
    """(what would be sent, in order, at most max_files; reason -> files left out)."""
    selection.check()
    ddb = aws.client("dynamodb")
    if not table_exists(ddb, names):
        raise NotFound(f"results table '{names.results_table}' does not exist "
                       "(run `pipectl deploy`)")
    skipped: dict[str, int] = {}
    found: list[Candidate] = []
    wanted = selection.max_files
    if selection.rows:
        found += _take(_rows(ddb, names, selection, current, skipped), wanted)
    if selection.stranded and (wanted is None or len(found) < wanted):
        found += _take(_stranded(aws, ddb, names, selection),
                       None if wanted is None else wanted - len(found))
    return found, skipped


def _take(items: Iterator[Candidate], at_most: int | None) -> list[Candidate]:
    taken: list[Candidate] = []
    for item in items:
        if at_most is not None and len(taken) >= at_most:
            break
        taken.append(item)
    return taken


def _literal_prefix(glob: str | None) -> str:
    return _WILDCARD.split(glob, 1)[0] if glob else ""


def _rows(ddb, names: Names, selection: Selection, current: str,
          skipped: dict[str, int]) -> Iterator[Candidate]:
    raw = names.bucket("raw")
    version = None
    cutoff = None
    if selection.not_current:
        version = (VERSION_FIELD, current, False)
    elif selection.older_than_version:
        version = (VERSION_FIELD, selection.older_than_version, False)
        cutoff = first_written(ddb, names, selection.older_than_version)
    prefix = _literal_prefix(selection.key_filter)
    for status in selection.statuses or REPROCESSABLE:
        start = None
        while True:
            # Oldest first: a run cut short by --max does the longest-waiting files first.
            items, start = dynamodb.query_page(
                ddb, names.results_table, STATUS_INDEX, ("status", status),
                sort_between=("updated_at", selection.since, selection.until),
                key_prefix=(RESULTS_PARTITION_KEY, row_key(raw, prefix)), newest_first=False,
                limit=PAGE, start_key=start, equals=version)
            for item in items:
                key = item.get("key") or item[RESULTS_PARTITION_KEY].partition(raw + "/")[2]
                if selection.key_filter and not fnmatch.fnmatchcase(key, selection.key_filter):
                    continue
                if cutoff is not None and (item.get("updated_at") or "") >= cutoff:
                    continue
                if status == "PROCESSED" and item.get(VERSION_FIELD) == current:
                    skipped[ALREADY_CURRENT] = skipped.get(ALREADY_CURRENT, 0) + 1
                    continue
                yield Candidate(key=key, bucket=raw, status=status,
                                size=_int(item.get("size")), etag=item.get("etag"),
                                version=item.get(VERSION_FIELD),
                                updated_at=item.get("updated_at"),
                                location=item.get("location"))
            if start is None:
                break


def first_written(ddb, names: Names, version: str) -> str:
    """When the oldest row `version` still holds was written: rows of other versions
    written before it are older than it."""
    firsts = []
    for status in ("PROCESSED", "FAILED", "ARCHIVED"):
        items, _ = dynamodb.query_page(ddb, names.results_table, STATUS_INDEX, ("status", status),
                                       newest_first=False, limit=1,
                                       equals=(VERSION_FIELD, version, True))
        firsts += [i["updated_at"] for i in items if i.get("updated_at")]
    if not firsts:
        raise UsageError(f"--older-than-version: no results row was written by version "
                         f"{version!r} (see `pipectl results --output json`)")
    return min(firsts)


def _stranded(aws: Aws, ddb, names: Names, selection: Selection) -> Iterator[Candidate]:
    """Objects under the incoming prefix without a row, 100 row lookups per call."""
    raw, incoming = names.bucket("raw"), names.config.prefixes.incoming
    prefix = _literal_prefix(selection.key_filter)
    listing = prefix if prefix.startswith(incoming) else incoming
    page: list = []

    def settle(objects: list) -> Iterator[Candidate]:
        rows = dynamodb.batch_get(ddb, names.results_table, RESULTS_PARTITION_KEY,
                                  [row_key(raw, o.key) for o in objects])
        for o in objects:
            if row_key(raw, o.key) not in rows:
                yield Candidate(key=o.key, bucket=raw, status=STRANDED, size=o.size,
                                etag=o.etag, version=None,
                                updated_at=o.last_modified.isoformat() if o.last_modified else None)

    for o in s3.iter_objects(aws.client("s3"), raw, listing):
        if isinstance(o, str) or o.key.endswith("/"):
            continue
        if selection.key_filter and not fnmatch.fnmatchcase(o.key, selection.key_filter):
            continue
        moment = o.last_modified.isoformat() if o.last_modified else ""
        if (selection.since and moment < selection.since) or \
                (selection.until and moment > selection.until):
            continue
        page.append(o)
        if len(page) == dynamodb.BATCH_GET_KEYS:
            yield from settle(page)
            page = []
    if page:
        yield from settle(page)


def notification(candidate: Candidate, run_id: str, version: str, region: str) -> dict:
    """The message body: S3's ObjectCreated notification for the object (the shape S3
    sends, key URL-encoded as S3 encodes it), plus the marker."""
    body = events.s3_put(candidate.bucket, candidate.key, size=candidate.size or 0,
                         etag=(candidate.etag or "").strip('"') or None, region=region)
    record = body["Records"][0]
    record["s3"]["configurationId"] = "pipectl-reprocess"
    if not candidate.etag:
        del record["s3"]["object"]["eTag"]
    record[REPROCESS_MARKER] = {"runId": run_id, "version": version}
    return body


def new_run_id() -> str:
    return uuid.uuid4().hex[:12]


def send(aws: Aws, names: Names, report: ReprocessReport, *, rate: float | None = None,
         on_progress: Progress | None = None) -> ReprocessReport:
    """Send report.selected to the processing queue, 10 per SendMessageBatch call, at most
    `rate` messages a second; entries SQS refuses are sent again, then reported."""
    sqs = aws.client("sqs")
    url = sqs_api.require_queue_url(sqs, names.queue)
    report.rate = rate
    # Below 10 a second, smaller batches keep the pace even instead of bursts of 10.
    size = sqs_api.BATCH_ENTRIES if not rate or rate >= sqs_api.BATCH_ENTRIES \
        else max(1, int(rate))
    started = time.monotonic()
    pending = report.selected
    for first in range(0, len(pending), size):
        chunk = pending[first:first + size]
        if rate:
            # Pace by what was sent so far: over any stretch the rate stays at most `rate`.
            wait = started + report.sent / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        entries = {c.key: {"MessageBody": json.dumps(
            notification(c, report.run_id, report.target_version, aws.region))} for c in chunk}
        for attempt in range(SEND_ATTEMPTS):
            outcome = sqs_api.send_batch(sqs, url, entries)
            report.calls += 1
            report.sent += len(outcome.succeeded)
            entries = {k: entries[k] for k in outcome.failed}
            if not entries:
                break
            time.sleep(0.2 * 2 ** attempt)
        report.failed.update(outcome.failed)
        report.seconds = time.monotonic() - started
        if on_progress is not None:
            on_progress(report)
    report.seconds = time.monotonic() - started
    return report


def reprocess(aws: Aws, names: Names, selection: Selection, *, dry_run: bool,
              run_id: str | None = None, rate: float | None = None,
              on_progress: Progress | None = None,
              confirm: Callable[[ReprocessReport], None] | None = None) -> ReprocessReport:
    """Select, ask (confirm raises to stop), send. A dry run selects only."""
    if rate is not None and rate <= 0:
        raise UsageError("--rate: must be more than 0 messages a second")
    selection.check()
    current = deployed_version(aws, names)
    selected, skipped = select(aws, names, selection, current)
    report = ReprocessReport(run_id=run_id or new_run_id(), target_version=current,
                             queue=names.queue, dry_run=dry_run, selected=selected,
                             skipped=skipped, rate=rate)
    if dry_run or not selected:
        return report
    if confirm is not None:
        confirm(report)
    return send(aws, names, report, rate=rate, on_progress=on_progress)


def _int(value) -> int | None:
    return None if value is None else int(value)
