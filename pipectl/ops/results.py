"""The results table: one row per source object, read through its status index (never scanned)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from pipectl.aws import dynamodb
from pipectl.errors import NotFound, UsageError
from pipectl.naming import RESULT_STATUSES, RESULTS_PARTITION_KEY, STATUS_INDEX, Names

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


def row(item: dict) -> ResultRow:
    def number(name: str) -> int | None:
        value = item.get(name)
        return None if value is None else int(value)

    return ResultRow(
        key=item[RESULTS_PARTITION_KEY], status=item.get("status", "UNKNOWN"),
        kind=item.get("kind"), records_in=number("records_in"),
        records_out=number("records_out"), dropped_values=number("dropped_values"),
        output=item.get("output"), location=item.get("location"), error=item.get("error"),
        last_error=item.get("last_error"), attempts=number("attempts"), size=number("size"),
        etag=item.get("etag"), started_at=item.get("started_at"),
        finished_at=item.get("finished_at"), duration_ms=number("duration_ms"),
        updated_at=item.get("updated_at"),
    )


def parse_since(text: str, now: datetime | None = None) -> str:
    """'30m', '2h', '7d' or an ISO-8601 time -> an ISO-8601 UTC lower bound."""
    now = now or datetime.now(timezone.utc)
    if match := _DURATION.match(text.strip()):
        delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        return (now - delta).isoformat()
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"--since: '{text}' is neither a duration like 30m, 2h, 7d "
                         "nor an ISO-8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat()


def check_status(status: str | None) -> str | None:
    if status is None:
        return None
    if status.upper() not in RESULT_STATUSES:
        raise UsageError(f"--status: '{status}' is not one of {', '.join(RESULT_STATUSES)}")
    return status.upper()


def list_results(ddb, names: Names, *, status: str | None = None, since: str | None = None,
                 limit: int = 50) -> list[ResultRow]:
    """Newest first. Without a status, the newest of each status merged."""
    _require_table(ddb, names)
    found: list[ResultRow] = []
    for s in [status] if status else RESULT_STATUSES:
        items, _ = dynamodb.query_index(
            ddb, names.results_table, STATUS_INDEX, ("status", s),
            sort_at_least=("updated_at", since) if since else None, limit=limit)
        found += [row(i) for i in items]
    found.sort(key=lambda r: r.updated_at or "", reverse=True)
    return found[:limit]


def get_result(ddb, names: Names, key: str) -> ResultRow:
    _require_table(ddb, names)
    item = dynamodb.get_item(ddb, names.results_table, {RESULTS_PARTITION_KEY: key})
    if item is None:
        raise NotFound(f"no result for '{key}' in table '{names.results_table}' (keys are "
                       "the uploaded object key, e.g. incoming/orders.csv)")
    return row(item)


def count_by_status(ddb, names: Names) -> dict[str, int]:
    return {s: dynamodb.query_index(ddb, names.results_table, STATUS_INDEX, ("status", s),
                                    count_only=True)[1] for s in RESULT_STATUSES}


def _require_table(ddb, names: Names) -> None:
    if dynamodb.describe_table(ddb, names.results_table) is None:
        raise NotFound(f"results table '{names.results_table}' does not exist "
                       "(run `pipectl deploy`)")
