"""EventBridge schedule expressions -> the next time they fire (UTC), for the local runtime.

cron(minutes hours day-of-month month day-of-week year) with *, ?, lists, ranges, steps
and names; day-of-week counts SUN=1 .. SAT=7 as EventBridge does. The L, W and #
forms are not supported locally and say so. rate(N minute|minutes|hour|hours|day|days).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

from pipectl.errors import UsageError

_MONTHS = {m: i for i, m in enumerate(
    "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), start=1)}
_DAYS = {d: i for i, d in enumerate("SUN MON TUE WED THU FRI SAT".split(), start=1)}
_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minutes", 0, 59, {}), ("hours", 0, 23, {}), ("day-of-month", 1, 31, {}),
    ("month", 1, 12, _MONTHS), ("day-of-week", 1, 7, _DAYS), ("year", 1970, 2199, {}))
# Search horizon: a cron that matches nothing in this many days never fires.
_HORIZON_DAYS = 366 * 5


def next_fire(expression: str, after: datetime) -> datetime | None:
    """The first firing strictly after `after`, or None if the expression never fires."""
    after = after.astimezone(timezone.utc).replace(second=0, microsecond=0)
    if match := _RATE.match(expression):
        n, unit = int(match.group(1)), match.group(2).rstrip("s")
        step = timedelta(**{f"{unit}s": n})
        return after + step
    if not (expression.startswith("cron(") and expression.endswith(")")):
        raise UsageError(f"schedule {expression!r} is neither cron(...) nor rate(...)")
    parts = expression[5:-1].split()
    if len(parts) != 6:
        raise UsageError(f"schedule {expression!r}: cron needs 6 fields, got {len(parts)}")
    minutes, hours, doms, months, dows, years = (
        _parse(part, *spec, expression) for part, spec in zip(parts, _FIELDS, strict=True))
    if minutes is None or hours is None or months is None or years is None:
        raise UsageError(f"schedule {expression!r}: '?' stands only for day-of-month or "
                         "day-of-week")
    day = after.replace(hour=0, minute=0)
    for _ in range(_HORIZON_DAYS):
        weekday = (day.isoweekday() % 7) + 1  # Monday=1..Sunday=7 -> SUN=1..SAT=7
        if (day.year in years and day.month in months and (doms is None or day.day in doms)
                and (dows is None or weekday in dows)):
            for hour in sorted(hours):
                for minute in sorted(minutes):
                    moment = day.replace(hour=hour, minute=minute)
                    if moment > after:
                        return moment
        day += timedelta(days=1)
    return None


def _parse(text: str, name: str, low: int, high: int, aliases: dict[str, int],
           expression: str) -> set[int] | None:
    """A field's allowed values; None for '?' (no constraint from this field)."""
    if text == "?":
        return None
    values: set[int] = set()
    for item in text.split(","):
        words = re.split(r"[-/]", item.upper())
        if any(w not in aliases and any(c in w for c in "LW#") for w in words):
            raise UsageError(f"schedule {expression!r}: {name} '{text}' uses L, W or #, which "
                             "the local runtime does not evaluate (AWS does)")
        body, _, step_text = item.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            start, end = _value(a, aliases), _value(b, aliases)
        else:
            start = _value(body, aliases)
            end = high if step_text else start
        if not (low <= start <= high and low <= end <= high) or step < 1:
            raise UsageError(f"schedule {expression!r}: {name} '{text}' is out of range "
                             f"{low}-{high}")
        values.update(range(start, end + 1, step))
    return values


def _value(text: str, aliases: dict[str, int]) -> int:
    return aliases[text.upper()] if text.upper() in aliases else int(text)
