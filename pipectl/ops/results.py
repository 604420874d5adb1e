"""The results table: one row per source object, read through its status index (never scanned)."""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import re
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta, timezone

from pipectl.aws import dynamodb
from pipectl.errors import NotFound, UsageError
from pipectl.naming import (
    ARCHIVER_KEY,
    COUNTERS_KEY,
    RESULT_STATUSES,
    RESULTS_PARTITION_KEY,
    STATUS_INDEX,
    STATUS_INDEX_KEYS,
    TALLIES,
    VERSION_FIELD,
    Names,
    row_key,
)

_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class ResultRow:
    key: str
    status: str
    kind: str | None = None
    records_in: int | None = None
    records_out: int | None = None
    dropped_values: int | None = None
    output: str | None = None
    location: str | None = None
    error: str | None = None
    last_error: str | None = None
    attempts: int | None = None
    size: int | None = None
    etag: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    duration_ms: int | None = None
    updated_at: str | None = None
    # What a particular function adds (the fetcher's http_status and url, the archiver's
    # archived_at and storage_class, ...), shown as it was written.
    details: dict = field(default_factory=dict)


# The row's bucket stays in details; `key` is the object key (the partition key is both).
_COMMON = {f.name for f in fields(ResultRow)} | {RESULTS_PARTITION_KEY}


def row(item: dict) -> ResultRow:
    def number(name: str) -> int | None:
        value = item.get(name)
        return None if value is None else int(value)

    return ResultRow(
        key=item.get("key") or _object_key(item[RESULTS_PARTITION_KEY]),
        status=item.get("status", "UNKNOWN"),
        kind=item.get("kind"), records_in=number("records_in"),
        records_out=number("records_out"), dropped_values=number("dropped_values"),
        output=item.get("output"), location=item.get("location"), error=item.get("error"),
        last_error=item.get("last_error"), attempts=number("attempts"), size=number("size"),
        etag=item.get("etag"), started_at=item.get("started_at"),
        finished_at=item.get("finished_at"), duration_ms=number("duration_ms"),
        updated_at=item.get("updated_at"),
        details={k: v for k, v in sorted(item.items()) if k not in _COMMON},
    )


def _object_key(row_id: str) -> str:
    # s3://bucket/key -> key; a row written before rows were keyed by bucket is its key.
    return row_id[len("s3://"):].partition("/")[2] if row_id.startswith("s3://") else row_id


def parse_time(text: str, option: str = "--since", now: datetime | None = None) -> datetime:
    """'30m', '2h', '7d' (that long before now) or an ISO-8601 time -> an aware UTC datetime."""
    now = now or datetime.now(timezone.utc)
    if _DURATION.match(text.strip()):
        return now - parse_duration(text, option)
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{option}: '{text}' is neither a duration like 30m, 2h, 7d "
                         "nor an ISO-8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def parse_duration(text: str, option: str) -> timedelta:
    if match := _DURATION.match(text.strip()):
        return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    raise UsageError(f"{option}: '{text}' is not a duration like 90s, 15m, 2h or 7d")


def parse_since(text: str, now: datetime | None = None, option: str = "--since") -> str:
    """'30m', '2h', '7d' or an ISO-8601 time -> an ISO-8601 UTC bound for updated_at."""
    return parse_time(text, option, now).isoformat()


def check_status(status: str | None) -> str | None:
    if status is None:
        return None
    if status.upper() not in RESULT_STATUSES:
        raise UsageError(f"--status: '{status}' is not one of {', '.join(RESULT_STATUSES)}")
    return status.upper()


@dataclass(frozen=True)
class ResultsPage:
    results: list[ResultRow]
    next_token: str | None = None


def query_results(ddb, names: Names, *, status: str | None = None, since: str | None = None,
                  until: str | None = None, prefix: str | None = None, limit: int = 50,
                  page_token: str | None = None,
                  version: tuple[str, bool] | None = None) -> ResultsPage:
    """Newest first, through the status index (never a Scan).

    Without a status every status partition is queried and the pages merged by
    updated_at. The page token holds, per status, where that partition resumes (the
    index key of the last row shown from it), so the next page continues the merge.
    version: (a processor version, True: rows it wrote | False: rows any other wrote).
    """
    _require_table(ddb, names)
    statuses = [status] if status else list(RESULT_STATUSES)
    cursors = _decode_token(page_token, statuses)
    fetched: dict[str, tuple[list[dict], dict | None]] = {}
    for s in statuses:
        if s in cursors and cursors[s] is None:
            continue  # this partition was exhausted on an earlier page
        fetched[s] = dynamodb.query_page(
            ddb, names.results_table, STATUS_INDEX, ("status", s),
            sort_between=("updated_at", since, until),
            # A filter, not a key condition: object_key is not part of the index key,
            # so DynamoDB still reads (and bills) the rows the prefix leaves out.
            key_prefix=(RESULTS_PARTITION_KEY, row_key(names.bucket("raw"), prefix))
            if prefix else None,
            limit=limit, start_key=cursors.get(s),
            equals=(VERSION_FIELD, *version) if version else None)
    merged = heapq.merge(*([(s, i) for i in items] for s, (items, _) in fetched.items()),
                         key=lambda pair: pair[1].get("updated_at") or "", reverse=True)
    shown = list(itertools.islice(merged, limit))
    taken = {s: [i for t, i in shown if t == s] for s in fetched}
    # Token entries: a key to resume after; None when the partition is exhausted; no
    # entry when it starts from its beginning.
    after: dict[str, dict | None] = {}
    for s in statuses:
        if s not in fetched:
            after[s] = None
            continue
        items, last = fetched[s]
        if len(taken[s]) == len(items):
            after[s] = last  # may be a key with nothing after it: DynamoDB cannot tell
        elif taken[s]:
            after[s] = _index_key(taken[s][-1])
        elif s in cursors:
            after[s] = cursors[s]
    more = any(after.get(s, {}) is not None for s in statuses)
    rows = [row(i) for _, i in shown]
    return ResultsPage(results=rows, next_token=_encode_token(after) if more else None)


def list_results(ddb, names: Names, *, status: str | None = None, since: str | None = None,
                 limit: int = 50) -> list[ResultRow]:
    """Newest first. Without a status, the newest of each status merged."""
    return query_results(ddb, names, status=status, since=since, limit=limit).results


def row_id(names: Names, key: str, bucket: str | None = None) -> str:
    """The partition key of an object's row: an s3:// URI as given, else a key in bucket
    (the raw bucket by default, where every file the pipeline serves arrives)."""
    if key.startswith("s3://"):
        return key
    return row_key(bucket or names.bucket("raw"), key)


def get_result(ddb, names: Names, key: str) -> ResultRow:
    _require_table(ddb, names)
    item = None
    if key not in (COUNTERS_KEY, ARCHIVER_KEY):  # bookkeeping items, not results
        item = dynamodb.get_item(ddb, names.results_table,
                                 {RESULTS_PARTITION_KEY: row_id(names, key)})
    if item is None:
        raise NotFound(f"no result for '{key}' in table '{names.results_table}' (keys are "
                       "the uploaded object key, e.g. incoming/orders.csv)")
    return row(item)


def find_result(ddb, names: Names, key: str, bucket: str | None = None) -> ResultRow | None:
    """The row for key (in bucket, the raw one by default), or None (no row, or a
    bookkeeping item); the table must exist."""
    if key in (COUNTERS_KEY, ARCHIVER_KEY):
        return None
    item = dynamodb.get_item(ddb, names.results_table,
                             {RESULTS_PARTITION_KEY: row_id(names, key, bucket)})
    return row(item) if item else None


def read_counters(ddb, names: Names) -> tuple[dict[str, int], dict[str, int]]:
    """Rows per status, and the TALLIES, from the counters item the handlers keep: one
    GetItem, however many rows there are (a missing item means nothing counted yet)."""
    item = dynamodb.get_item(ddb, names.results_table,
                             {RESULTS_PARTITION_KEY: COUNTERS_KEY}) or {}
    return ({s: int(item.get(s) or 0) for s in RESULT_STATUSES},
            {t: int(item.get(t) or 0) for t in TALLIES})


def last_archiver_run(ddb, names: Names) -> dict | None:
    item = dynamodb.get_item(ddb, names.results_table, {RESULTS_PARTITION_KEY: ARCHIVER_KEY})
    if item is None:
        return None
    return {"last_run_at": item.get("last_run_at"), "moved": int(item.get("moved") or 0),
            "bytes": int(item.get("bytes") or 0), "errors": int(item.get("errors") or 0)}


def failed_since(ddb, names: Names, since: str) -> ResultRow | None:
    """The newest FAILED row updated at or after since (one Query, Limit 1), or None."""
    items, _ = dynamodb.query_page(ddb, names.results_table, STATUS_INDEX, ("status", "FAILED"),
                                   sort_between=("updated_at", since, None), limit=1)
    return row(items[0]) if items else None


def processing_rows(ddb, names: Names, limit: int) -> tuple[list[ResultRow], bool]:
    """Up to limit PROCESSING rows, newest first (one index partition, paged); True when
    there are more."""
    items, last = dynamodb.query_page(ddb, names.results_table, STATUS_INDEX,
                                      ("status", "PROCESSING"), limit=limit)
    return [row(i) for i in items], last is not None


def table_exists(ddb, names: Names) -> bool:
    return dynamodb.describe_table(ddb, names.results_table) is not None


def _index_key(item: dict) -> dict:
    """The ExclusiveStartKey that resumes an index query right after item."""
    return {k: {"S": item[k]} for k in (RESULTS_PARTITION_KEY, *STATUS_INDEX_KEYS)}


def _encode_token(cursors: dict[str, dict | None]) -> str:
    text = json.dumps(cursors, sort_keys=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_token(token: str | None, statuses: list[str]) -> dict[str, dict | None]:
    if not token:
        return {}
    try:
        cursors = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        if not isinstance(cursors, dict) or not set(cursors) <= set(RESULT_STATUSES):
            raise ValueError
    except ValueError:
        raise UsageError("--page-token: not a token printed by `pipectl results`") from None
    return {s: c for s, c in cursors.items() if s in statuses}


def _require_table(ddb, names: Names) -> None:
    if not table_exists(ddb, names):
        raise NotFound(f"results table '{names.results_table}' does not exist "
                       "(run `pipectl deploy`)")
