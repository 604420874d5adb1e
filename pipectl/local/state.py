"""The embedded emulator's state kept on disk (`pipectl dev --state DIR`), so stopping and
starting dev keeps buckets, objects, rows, queues and their messages.

moto 5.2 has no persistence of its own; its maintainers' advice is to pickle the backends
(getmoto/moto#1069), and its S3 keys are written to be pickled (FakeKey.__getstate__
reads the object out of its temporary file). The services pipectl deploys to are
pickled once the server has stopped (no request can change them mid-way) and put back
before it starts. Three things in them do not pickle and are made afresh, as they hold
no state: locks and conditions (SQS's message lock, id generators) and Lambda's
WeakValueDictionary of ARNs, rebuilt from the functions it points to.

The file is pickle, so it is code: read only what this machine's own dev wrote. A file
from another moto release is refused rather than half loaded.
"""

from __future__ import annotations

import io
import os
import pickle
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pipectl.errors import PipectlError, UsageError

STATE_FILE = "emulator-state.pickle"
FORMAT = 1
# What deploy and the pipeline use; anything else a user made in the emulator is not kept.
SERVICES = ("s3", "sqs", "dynamodb", "lambda", "iam", "logs", "events", "cloudwatch", "sns",
            "sts")
_LOCKS = (type(threading.Lock()), type(threading.RLock()))


@dataclass(frozen=True)
class Restored:
    path: Path
    saved_at: str  # ISO time of the save
    services: int


def _fresh_lock(kind: str) -> Any:
    return threading.RLock() if kind == "rlock" else threading.Lock()


def _weak_values(items: dict) -> weakref.WeakValueDictionary:
    return weakref.WeakValueDictionary(items)


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, threading.Condition):
            return threading.Condition, ()
        if isinstance(obj, _LOCKS):
            return _fresh_lock, ("rlock" if isinstance(obj, _LOCKS[1]) else "lock",)
        if isinstance(obj, weakref.WeakValueDictionary):
            return _weak_values, (dict(obj.items()),)
        if isinstance(obj, defaultdict) and obj.default_factory is not None and getattr(
                obj.default_factory, "__name__", "") == "<lambda>":
            return _defaults, (_factory_type(obj.default_factory), dict(obj))
        return NotImplemented


def _defaults(factory: type, items: dict) -> defaultdict:
    return defaultdict(factory, items)


def _factory_type(factory: Callable[[], Any]) -> type:
    """The type a `lambda: {}` default factory stands for; a lambda is not picklable."""
    sample = factory()
    if type(sample)() != sample:
        raise TypeError(f"cannot keep a defaultdict whose default is {sample!r}")
    return type(sample)


def _moto_version() -> str:
    import moto

    return moto.__version__


def save(directory: Path) -> Path:
    """Write the state of every region of every service in SERVICES; atomic (a crash
    mid-save leaves the previous file)."""
    from moto.backends import get_backend

    backends = {service: {(account, region): backend.__dict__
                          for account, region, backend in get_backend(service).iter_backends()}  # type: ignore[call-overload]  # noqa: E501
                for service in SERVICES}
    buffer = io.BytesIO()
    path = directory / STATE_FILE
    try:
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump({
            "format": FORMAT, "moto": _moto_version(),
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "backends": backends})
        directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(buffer.getvalue())
        os.replace(partial, path)
    except (OSError, TypeError, AttributeError, pickle.PicklingError) as exc:
        raise PipectlError(f"could not save the emulator state to {path} (the previous "
                           f"save, if any, is kept): {exc}") from None
    return path


def restore(directory: Path) -> Restored | None:
    """Put a saved state back into moto's backends; None when DIR holds none yet."""
    from moto.backends import get_backend

    path = directory / STATE_FILE
    if not path.is_file():
        return None
    try:
        saved = pickle.loads(path.read_bytes())
    except Exception as exc:  # a truncated or foreign file: say which, never half load it
        raise UsageError(f"{path}: not emulator state pipectl can read ({exc}); move it "
                         "away to start clean") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise UsageError(f"{path}: not emulator state pipectl can read; move it away to "
                         "start clean")
    if saved["moto"] != _moto_version():
        raise UsageError(f"{path} was saved by moto {saved['moto']}, this is moto "
                         f"{_moto_version()}: its state cannot be carried over; move it away "
                         "to start clean")
    for service, regions in saved["backends"].items():
        backends = get_backend(service)
        for (account, region), state in regions.items():
            # Filled into the backend moto creates, so whatever holds it sees the state.
            backends[account][region].__dict__.update(state)
    return Restored(path, saved["saved_at"], len(saved["backends"]))
