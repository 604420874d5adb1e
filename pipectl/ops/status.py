"""The pipeline at a glance: buckets, incoming/, queue depths, results by status, failures.

A bounded number of AWS calls however much data exists: one page of incoming/, one
GetItem of the counters item the handlers keep, one Query for the recent failures, at
most RETRYING_ROWS PROCESSING rows (paged) for what is retrying and why.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from pipectl.aws import buckets, s3, sqs
from pipectl.aws.session import Aws
from pipectl.naming import Names
from pipectl.ops import results as results_ops
from pipectl.ops.drift import FunctionState, LocalCode, alarm_states, function_states
from pipectl.ops.results import ResultRow

RECENT_FAILURES = 5
INCOMING_PAGE = 1000  # one ListObjectsV2 page; beyond it the count shows as "1000+"
DEFAULT_FAILED_SINCE = "24h"
DEFAULT_STUCK_AFTER = timedelta(minutes=15)
RETRYING_ROWS = 1000  # PROCESSING rows read to group retries by their last error
# Quoted values in an error (keys, metadata values, URLs) differ per file; the reason
# they illustrate does not.
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


@dataclass(frozen=True)
class Retrying:
    """Files whose last attempt failed transiently, grouped by that error.

    state: "retrying" (the queue delivers it again), or "dead-lettered" when its attempts
    reached the queue's maxReceiveCount (its message waits in the dead-letter queue).
    """

    state: str
    files: int
    last_error: str
    example: str  # one of the keys


@dataclass(frozen=True)
class Incoming:
    count: int
    truncated: bool  # more than one page: count is a lower bound
    oldest: str | None  # LastModified (ISO) of the oldest file in the page
    oldest_key: str | None
    oldest_age_seconds: int | None
    stuck: int = 0  # files in the page older than the stuck-after threshold
    unmatched: int = 0  # files in the page no notification rule to the processor matches
    unmatched_example: str | None = None


@dataclass(frozen=True)
class PipelineStatus:
    target: str
    buckets: dict[str, str]
    queue: dict[str, int] | None  # None: not deployed
    dlq: dict[str, int] | None
    fetch_dlq: dict[str, int] | None = None
    incoming: Incoming | None = None  # None: the raw bucket does not exist
    functions: list[FunctionState] = field(default_factory=list)
    alarms: dict[str, str] = field(default_factory=dict)
    results: dict[str, int] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)  # naming.TALLIES, over processed files
    recent_failures: list[ResultRow] = field(default_factory=list)
    retrying: list[Retrying] = field(default_factory=list)
    retrying_truncated: bool = False  # more than RETRYING_ROWS rows: counts are lower bounds
    archiver: dict | None = None  # the last archiver run, None: never ran
    missing: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    healthy: bool = True
    checked_at: str = ""
    output: str = ""  # the format processed/ is written in (output: in pipeline.yaml)


def pipeline_status(aws: Aws, names: Names, *, failed_since: str | None = None,
                    stuck_after: timedelta = DEFAULT_STUCK_AFTER,
                    now: datetime | None = None,
                    local_code: LocalCode | None = None) -> PipelineStatus:
    now = now or datetime.now(timezone.utc)
    failed_since = failed_since or results_ops.parse_since(DEFAULT_FAILED_SINCE, now)
    missing: list[str] = []

    client = aws.client("sqs")
    depths: dict[str, dict[str, int] | None] = {}
    for label, queue in (("queue", names.queue), ("dlq", names.dlq),
                         ("fetch_dlq", names.fetch_dlq)):
        url = sqs.queue_url(client, queue)
        if url is None:
            missing.append(f"queue {queue}")
            depths[label] = None
            continue
        d = sqs.depth(client, url)
        depths[label] = {"visible": d.visible, "in_flight": d.in_flight, "delayed": d.delayed}

    s3_client = aws.client("s3")
    incoming = None
    for role, bucket in names.bucket_roles().items():
        if s3.bucket_exists(s3_client, bucket) is False:
            missing.append(f"bucket {bucket}")
        elif role == "raw":
            rules = processing_rules(s3_client, names)
            incoming = _incoming(s3_client, bucket, names.config.prefixes.incoming, now,
                                 stuck_after, rules)

    ddb = aws.client("dynamodb")
    counts: dict[str, int] = {}
    totals: dict[str, int] = {}
    failures: list[ResultRow] = []
    retrying: list[Retrying] = []
    truncated = False
    archiver = failed_recently = None
    if not results_ops.table_exists(ddb, names):
        missing.append(f"table {names.results_table}")
    else:
        counts, totals = results_ops.read_counters(ddb, names)
        failures = results_ops.list_results(ddb, names, status="FAILED", limit=RECENT_FAILURES)
        archiver = results_ops.last_archiver_run(ddb, names)
        failed_recently = results_ops.failed_since(ddb, names, failed_since)
        rows, truncated = results_ops.processing_rows(ddb, names, RETRYING_ROWS)
        retrying = group_retries(rows, names.config.processor.max_receive_count)

    functions = function_states(aws, names, local_code)
    alarms = alarm_states(aws, names)
    problems = [f"{m} does not exist (run `pipectl deploy`)" for m in missing]
    for label, dlq in (("dlq", names.dlq), ("fetch_dlq", names.fetch_dlq)):
        if (depth := depths[label]) and sum(depth.values()):
            problems.append(f"dead-letter queue {dlq} holds {sum(depth.values())} "
                            "message(s) (see `pipectl replay-dlq`)")
    problems += [f"function {f.name} is {f.code} (run `pipectl deploy`)" for f in functions
                 if f.code == "not deployed"]
    # Pending and InProgress end by themselves and an Inactive function wakes on its next
    # invoke; Failed stays until a deploy.
    problems += [f"function {f.name} cannot run: {f.state_reason}; fix the cause, then run "
                 "`pipectl deploy`" for f in functions if f.failed]
    problems += [f"alarm {names.prefix}-{name} is in ALARM" for name, state in alarms.items()
                 if state == "ALARM"]
    if failed_recently is not None:
        problems.append(f"files failed since {failed_since}, the latest {failed_recently.key} "
                        f"at {failed_recently.updated_at}: {failed_recently.error}")
    more = "+" if truncated else ""
    problems += [f"{g.files}{more} dead-lettered: {g.last_error} (e.g. {g.example})"
                 for g in retrying if g.state == "dead-lettered"]
    if incoming and incoming.unmatched:
        problems.append(f"{incoming.unmatched}{'+' if incoming.truncated else ''} file(s) in "
                        f"{names.config.prefixes.incoming} match no notification rule and will "
                        f"never be processed, e.g. {incoming.unmatched_example} "
                        f"({UNMATCHED_WHY})")
    if incoming and incoming.stuck:
        more = "+" if incoming.truncated else ""
        problems.append(f"{incoming.stuck}{more} file(s) waiting in "
                        f"{names.config.prefixes.incoming} for longer than "
                        f"{span(stuck_after.total_seconds())} (oldest {incoming.oldest_key}, "
                        f"{span(incoming.oldest_age_seconds or 0)})")
    return PipelineStatus(target=aws.describe(), buckets=names.bucket_roles(),
                          queue=depths["queue"], dlq=depths["dlq"],
                          fetch_dlq=depths["fetch_dlq"], incoming=incoming,
                          functions=functions, alarms=alarms,
                          results=counts, totals=totals, recent_failures=failures,
                          retrying=retrying, retrying_truncated=truncated,
                          archiver=archiver,
                          missing=missing, problems=problems, healthy=not problems,
                          checked_at=now.isoformat(), output=names.config.output.describe())


def group_retries(rows: list[ResultRow], max_receive_count: int) -> list[Retrying]:
    """PROCESSING rows that carry a last_error, by state and reason, the largest group first."""
    groups: Counter = Counter()
    examples: dict[tuple[str, str], str] = {}
    for r in rows:
        if not r.last_error:
            continue  # in progress for the first time: nothing has gone wrong yet
        state = "dead-lettered" if (r.attempts or 0) >= max_receive_count else "retrying"
        group = (state, reason(r.last_error, r.key))
        groups[group] += 1
        examples.setdefault(group, r.key)
    return [Retrying(state=state, files=n, last_error=why, example=examples[(state, why)])
            for (state, why), n in sorted(groups.items(), key=lambda g: (-g[1], g[0]))]


def reason(error: str, key: str) -> str:
    """An error without what is particular to one file, so the same cause groups together."""
    return _QUOTED.sub("'…'", error.replace(key, "…")).strip()


# S3 matches a notification rule's prefix and suffix case-sensitively: UPPER.CSV never
# matches the .csv rule, and nothing tells the uploader.
UNMATCHED_WHY = "S3 suffix filters are case-sensitive; add the suffix to processor.suffixes " \
                "and deploy, or upload it again with a matching name"


def processing_rules(client, names: Names) -> list[tuple[str, str]]:
    """(prefix, suffix) of each notification rule of the raw bucket that feeds the
    processing queue, as deployed (one GetBucketNotificationConfiguration)."""
    arn = names.queue_arn(names.queue)
    found = []
    for rule in buckets.notifications(client, names.bucket("raw")).get(
            "QueueConfigurations", []):
        if rule.get("QueueArn") != arn:
            continue
        filters = {f.get("Name", "").lower(): f.get("Value", "")
                   for f in rule.get("Filter", {}).get("Key", {}).get("FilterRules", [])}
        found.append((filters.get("prefix", ""), filters.get("suffix", "")))
    return found


def matched(key: str, rules: list[tuple[str, str]]) -> bool:
    return any(key.startswith(prefix) and key.endswith(suffix) for prefix, suffix in rules)


def _incoming(client, bucket: str, prefix: str, now: datetime,
              stuck_after: timedelta, rules: list[tuple[str, str]]) -> Incoming:
    # One page only: S3 lists in key order, not by age, so "oldest" is the oldest of
    # the first 1,000 keys; a full listing would cost one call per 1,000 files.
    listed, truncated = s3.first_page(client, bucket, prefix, INCOMING_PAGE)
    files = [o for o in listed if not o["Key"].endswith("/")]
    oldest = min(files, key=lambda o: o["LastModified"], default=None)
    cutoff = now - stuck_after
    unmatched = [o["Key"] for o in files if not matched(o["Key"], rules)]
    return Incoming(
        unmatched=len(unmatched), unmatched_example=unmatched[0] if unmatched else None,
        count=len(files), truncated=truncated,
        oldest=oldest["LastModified"].astimezone(timezone.utc).isoformat() if oldest else None,
        oldest_key=oldest["Key"] if oldest else None,
        oldest_age_seconds=int((now - oldest["LastModified"]).total_seconds()) if oldest
        else None,
        stuck=sum(1 for o in files if o["LastModified"] < cutoff))


def span(seconds: float) -> str:
    seconds = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
