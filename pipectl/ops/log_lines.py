"""Function log lines as people read them: one short line per event, or the structured
record without its Embedded Metric Format blob.

Handlers log one JSON record per event (handlers/common/telemetry.py); a record that
carries metrics also holds CloudWatch's `_aws` metadata, which CloudWatch reads and people
do not. Lambda's own START / END / REPORT lines say nothing the event line does not.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from enum import Enum

# Lambda runtime lines: the event's own record already says how it went and how long it took.
_RUNTIME_LINES = ("START RequestId:", "END RequestId:", "REPORT RequestId:", "INIT_START")
EMF_KEY = "_aws"
FORMAT_HELP = ("short: one line per event (time, function, key, outcome, duration, reason); "
               "json: the structured record; raw: as logged, CloudWatch's EMF metrics blob "
               "included")


class LogFormat(str, Enum):
    short = "short"  # time, function, key, outcome, duration, reason
    json = "json"  # the structured record, without the EMF `_aws` blob
    raw = "raw"  # the line exactly as the function wrote it, EMF included


def render(function: str, line: str, fmt: LogFormat, timestamp_ms: int | None = None
           ) -> str | None:
    """The line to show for one log line of `function`, or None when `fmt` shows nothing
    for it (runtime lines in the short form). timestamp_ms: when CloudWatch got the line,
    used where the line carries no time of its own."""
    if fmt is LogFormat.raw:
        return line
    record = _record(line)
    if fmt is LogFormat.json:
        if record is None:
            return json.dumps({"time": _iso(timestamp_ms), "function": function,
                               "message": line})
        record.pop(EMF_KEY, None)
        return json.dumps({"function": function, **record} if "function" not in record
                          else record, default=str)
    if record is None:
        if line.startswith(_RUNTIME_LINES) or not line.strip():
            return None
        return f"{_clock(None, timestamp_ms)} {function} {line}"
    return short(function, record, timestamp_ms)


def without_emf(line: str) -> str:
    """The line with a structured record's `_aws` blob taken out (other lines as they are):
    what `pipectl logs -o json` carries as each event's message unless --format raw."""
    record = _record(line)
    if record is None or EMF_KEY not in record:
        return line
    record.pop(EMF_KEY)
    return json.dumps(record, default=str)


def short(function: str, record: dict, timestamp_ms: int | None = None) -> str:
    """`12:04:05 processor incoming/a.csv PROCESSED 41 ms  processed 3 records`."""
    parts = [_clock(record.get("timestamp"), timestamp_ms), function,
             str(record.get("key") or "-"),
             str(record.get("status") or record.get("level") or "-")]
    if isinstance(record.get("duration_ms"), (int, float)):
        parts.append(f"{record['duration_ms']:.0f} ms")
    reason = record.get("error") or record.get("message")
    text = " ".join(parts) + (f"  {reason}" if reason else "")
    # One line per event, whatever a key or an error message holds.
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _record(line: str) -> dict | None:
    if not line.startswith("{"):
        return None
    try:
        found = json.loads(line)
    except ValueError:
        return None
    return found if isinstance(found, dict) else None


def _clock(iso: object, timestamp_ms: int | None) -> str:
    """HH:MM:SS UTC, from the record's own time if it has one."""
    if isinstance(iso, str):
        try:
            return datetime.fromisoformat(iso).astimezone(timezone.utc).strftime("%H:%M:%S")
        except ValueError:
            pass
    when = (datetime.fromtimestamp(timestamp_ms / 1000, timezone.utc) if timestamp_ms
            else datetime.now(timezone.utc))
    return when.strftime("%H:%M:%S")


def _iso(timestamp_ms: int | None) -> str:
    when = (datetime.fromtimestamp(timestamp_ms / 1000, timezone.utc) if timestamp_ms
            else datetime.now(timezone.utc))
    return when.isoformat(timespec="milliseconds")
