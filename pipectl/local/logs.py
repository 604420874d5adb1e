"""Handler output from the local runtime: shown to the operator and written to CloudWatch Logs."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from pipectl.aws import logs as cw

FLUSH_SECONDS = 1.0


class LogShipper:
    """Buffers lines per log stream and ships them in batches from one background thread."""

    def __init__(self, client, echo: Callable[[str, str], None] | None = None):
        self._client = client
        self._echo = echo
        self._pending: dict[tuple[str, str], list[tuple[int, str]]] = {}
        self._known: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="log-shipper", daemon=True)
        self.errors = 0

    def start(self) -> LogShipper:
        self._thread.start()
        return self

    def ship(self, function: str, group: str, stream: str, line: str) -> None:
        if self._echo:
            self._echo(function, line)
        with self._lock:
            self._pending.setdefault((group, stream), []).append((int(time.time() * 1000), line))

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(FLUSH_SECONDS):
            self.flush()

    def flush(self) -> None:
        with self._lock:
            batches, self._pending = self._pending, {}
        for (group, stream), events in batches.items():
            try:
                if (group, stream) not in self._known:
                    cw.ensure_stream(self._client, group, stream)
                    self._known.add((group, stream))
                cw.put_events(self._client, group, stream, events)
            except Exception:  # logs are best effort: never stop processing for them
                self.errors += 1
