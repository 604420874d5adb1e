"""The embedded emulator: a moto server on 127.0.0.1 that pipectl starts and stops itself."""

from __future__ import annotations

import errno
import functools
import logging
import socket
import sys
import threading
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pipectl.errors import PipectlError, UsageError
from pipectl.local import state
from pipectl.local.moto_patches import patch_moto

HOST = "127.0.0.1"
# moto's server runs each request in a thread of its own, and CPython makes the thread
# holding the GIL hand it over every 5 ms (sys.getswitchinterval) when another waits. With
# a few requests in flight, each of 2-5 ms of CPU is cut into slices that queue behind the
# other requests' slices and the accept loop's. 20 ms lets most requests finish in one
# slice: in a burst of 1,000 files (bench/burst.py) moto's CPU per file fell from 32 to 27
# ms and files/s rose from 22.5 to 26.9. Process-wide, for the emulator's life.
SWITCH_INTERVAL = 0.02


class Emulator:
    """A moto server in a background thread. Use as a context manager: nothing outlives it."""

    def __init__(self, port: int = 0, notice: Callable[[str], None] | None = None,
                 state_dir: Path | None = None):
        """state_dir: keep moto's state there across runs (restored at start, saved at stop)."""
        self.requested_port = port
        self.state_dir = state_dir
        self.restored: state.Restored | None = None
        self.port: int | None = None
        self.patched = False  # moto_patches applied: see pipectl/local/moto_patches/
        self._server: Any = None  # a moto ThreadedMotoServer once started
        self._switch_interval: float | None = None  # the process's, restored at stop
        self._notice = notice or logging.getLogger(__name__).warning

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise PipectlError("the emulator is not running")
        return f"http://{HOST}:{self.port}"

    def start(self) -> Emulator:
        from moto.server import ThreadedMotoServer  # heavy import: only when the emulator runs

        port = self.requested_port or free_port()
        ensure_free(port)
        # werkzeug logs every request at INFO; the operator wants the pipeline's logs.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.patched = prepare_moto(notice=self._notice)
        if self.state_dir is not None:
            self.restored = state.restore(self.state_dir)  # before any request can come
        self._server = ThreadedMotoServer(ip_address=HOST, port=port, verbose=False)
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(max(SWITCH_INTERVAL, self._switch_interval))
        self._server.start()
        self.port = port
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
            if self._switch_interval is not None:
                sys.setswitchinterval(self._switch_interval)
                self._switch_interval = None
            if self.state_dir is not None:
                # Saved once the server has stopped: no request changes it mid-way.
                state.save(self.state_dir)

    def reset(self) -> None:
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset",
                                                      method="POST"), timeout=10).read()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# DynamoDB makes each item write and each transaction atomic, and the handlers' exactly-once
# counting (a row and the counters item in one transaction) relies on it. moto's server
# threads don't take turns: a transaction deep-copies the tables to restore them on a failed
# condition, undoing writes other threads made meanwhile (or failing with "dictionary
# changed size during iteration"), and a query can see a table change under it.
_DYNAMODB_OPERATIONS = ("put_item", "get_item", "update_item", "delete_item", "query", "scan",
                        "transact_write_items")
_dynamodb_lock = threading.RLock()


def prepare_moto(patch: Callable[[object, str, object], None] = setattr,
                 notice: Callable[[str], None] | None = None) -> bool:
    """What every moto server pipectl runs needs: the burst patches (when they fit this
    moto), then the DynamoDB lock around whatever runs. True when patched."""
    patched = patch_moto(patch, notice)
    atomic_dynamodb(patch)
    lifecycle_size_filters(patch)
    return patched


def locked(function: Callable) -> Callable:
    """`function` run under the one DynamoDB lock."""

    @functools.wraps(function)
    def run(*args, **kwargs):
        with _dynamodb_lock:
            return function(*args, **kwargs)

    run.atomic = True  # type: ignore[attr-defined]
    return run


def atomic_dynamodb(patch: Callable[[object, str, object], None] = setattr) -> None:
    """Make moto's DynamoDB operations take one lock (idempotent). `patch` lets a test
    undo it (pytest's monkeypatch.setattr)."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in _DYNAMODB_OPERATIONS:
        original = getattr(DynamoDBBackend, name)
        if not getattr(original, "atomic", False):
            patch(DynamoDBBackend, name, locked(original))


# S3 lifecycle filters may name object sizes (ObjectSizeGreaterThan / LessThan, alone or
# inside And); moto 5.2 parses and returns only prefixes and tags, so a rule read back has
# lost its size filter and every deploy would plan to put it back. Kept per rule ID here
# and returned as AWS returns them.
_SIZE_FILTERS = ("ObjectSizeGreaterThan", "ObjectSizeLessThan")


def lifecycle_size_filters(patch: Callable[[object, str, object], None] = setattr) -> None:
    """Make moto keep lifecycle size filters (idempotent)."""
    from moto.s3.models import FakeBucket
    from moto.s3.responses import S3Response

    if getattr(FakeBucket.set_lifecycle, "sizes", False):
        return
    original_set, original_get = FakeBucket.set_lifecycle, S3Response.get_bucket_lifecycle

    def set_lifecycle(self, rules):
        original_set(self, rules)
        self.lifecycle_sizes = {rule.get("ID"): _sizes(rule.get("Filter") or {})
                                for rule in rules}

    def get_bucket_lifecycle(self):
        bucket = self.backend.get_bucket(self.bucket_name)
        sizes = getattr(bucket, "lifecycle_sizes", {})
        serialized = self.serialized

        def with_sizes(result):
            for rule in result.result.get("Rules", []):
                for where, found in sizes.get(rule.get("ID"), {}).items():
                    place = rule.setdefault("Filter", {})
                    place = place.setdefault("And", {}) if where == "And" else place
                    place.update(found)
            return serialized(result)

        self.serialized = with_sizes
        try:
            return original_get(self)
        finally:
            del self.serialized

    set_lifecycle.sizes = True  # type: ignore[attr-defined]
    patch(FakeBucket, "set_lifecycle", set_lifecycle)
    patch(S3Response, "get_bucket_lifecycle", get_bucket_lifecycle)


def _sizes(rule_filter: dict) -> dict[str, dict[str, int]]:
    found = {}
    for where, part in (("Filter", rule_filter), ("And", rule_filter.get("And") or {})):
        sizes = {name: int(part[name]) for name in _SIZE_FILTERS if name in part}
        if sizes:
            found[where] = sizes
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def ensure_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the server itself will: connections left in TIME_WAIT by a previous run do
        # not make the port busy, a live listener does.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise UsageError(f"port {port} on {HOST} is already in use (is `pipectl dev` "
                                 "running? set targets.local.port in pipeline.yaml or pass "
                                 "--port)") from None
            raise
