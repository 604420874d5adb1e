"""Function logs from CloudWatch Logs: one search, or a tail that polls for new events."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from pipectl.aws import logs as cw
from pipectl.errors import NotFound, UsageError
from pipectl.naming import FUNCTIONS, Names

# CloudWatch Logs makes events searchable a little after their timestamp (and the local
# runtime ships its lines once a second), so each poll looks back this far and drops
# the events it has already shown by their eventId.
LOOKBACK_MS = 10_000


@dataclass(frozen=True)
class LogEvent:
    timestamp: int  # ms since the epoch
    time: str  # the same, ISO-8601 UTC
    stream: str
    message: str
    event_id: str


def check_function(kind: str) -> str:
    if kind not in FUNCTIONS:
        raise UsageError(f"unknown function '{kind}' (known: {', '.join(FUNCTIONS)})")
    return kind


class LogTail:
    """The events of one function's log group from start_ms on, each returned once."""

    def __init__(self, client, names: Names, kind: str, *, start_ms: int,
                 pattern: str | None = None):
        self.client, self.kind, self.pattern = client, check_function(kind), pattern
        self.group = names.log_group(kind)
        self._start = start_ms
        self._seen: dict[str, int] = {}  # eventId -> timestamp, inside the look-back window

    def poll(self) -> list[LogEvent]:
        found = cw.filter_events(self.client, self.group, start_ms=self._start,
                                 pattern=self.pattern)
        if found is None:
            raise NotFound(f"no logs yet for {self.kind} (log group {self.group} does not exist)")
        fresh = [e for e in found if e["eventId"] not in self._seen]
        fresh.sort(key=lambda e: (e["timestamp"], e.get("ingestionTime", 0)))
        for e in fresh:
            self._seen[e["eventId"]] = e["timestamp"]
        if self._seen:
            self._start = max(self._start, max(self._seen.values()) - LOOKBACK_MS)
            self._seen = {i: ts for i, ts in self._seen.items() if ts >= self._start}
        return [LogEvent(timestamp=e["timestamp"], time=_iso(e["timestamp"]),
                         stream=e.get("logStreamName", ""), message=e["message"].rstrip("\n"),
                         event_id=e["eventId"]) for e in fresh]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).isoformat(timespec="milliseconds")
