"""One attempt on one object, the same for every SQS handler: claim, work, outcome, release.

Delivery is at least once, so an attempt may be a duplicate, may race another attempt
on the same object, or may fail half-way. The handler supplies only its work (a
callable given the Attempt); this module owns the rest:
  - the lease: the claim (common/results.claim) holds the row until this invocation's
    deadline at the latest, so a crashed attempt blocks its retries no longer than the
    function's timeout; a transient failure gives it back at once;
  - the outcome: the work returns a Result (PROCESSED, FAILED, DUPLICATE, BUSY, POISON),
    which becomes one log line and the message's fate: done, or back to SQS (BUSY: when
    the other attempt's lease ends);
  - the failures the work does not handle itself: transient ones (failures.py) fail the
    message only, so SQS retries it and then dead-letters it; permanent ones (a bug, a
    request botocore refuses) make the row FAILED at once, the object left in place.

The test fault hook is given to `run` by the entry module, which builds it once at a
cold start (common/faults.py): this module reads no environment.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from common import failures, results, storage
from common.clients import results_table
from common.contract import Status
from common.invocation import Busy, invocation_deadline
from common.s3_event import S3Object

# Added to a lease so a slightly fast clock elsewhere does not take it over early.
LEASE_MARGIN_SECONDS = 2

Fault = Callable[[str, str], None]    # (step, key): a test hook, see common/faults.py


def no_fault(step: str, key: str) -> None:
    """The fault hook outside tests: every step goes on."""


class Outcome(str, Enum):
    """How an attempt ended; the value is the log line's status."""

    PROCESSED = Status.PROCESSED.value   # the work is done (the row says PROCESSED)
    FAILED = Status.FAILED.value         # the object can never be handled (the row says why)
    DUPLICATE = "DUPLICATE"   # an earlier attempt handled it: nothing to do
    BUSY = "BUSY"             # another attempt holds the lease: retry the message later
    POISON = "POISON"         # earlier attempts died on it: not attempted, retried later
    RETRY = "RETRY"           # a transient failure: SQS delivers the message again

    def __str__(self) -> str:
        return self.value


@dataclass
class Result:
    outcome: Outcome
    message: str
    error: str | None = None
    lease_until: float | None = None        # BUSY: when the other attempt's lease ends
    fields: dict[str, Any] = field(default_factory=dict)   # more for the log line


def _type_and_message(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass(frozen=True)
class Handler:
    """What differs between the functions that attempt objects."""

    results_table: str
    log: Callable[..., None]
    done: str                          # "processed": "processed, but finishing failed"
    row_fields: Mapping[str, Any]      # on a FAILED row written outside the work proper
    transient_error: Callable[[Exception], str] = _type_and_message   # for the row


@dataclass
class Attempt:
    """One attempt's lease and the row it holds; the work's view of the protocol."""

    obj: S3Object
    handler: Handler
    holder: str
    until: int                       # the lease's end, epoch seconds
    message_id: str | None = None
    fault: Fault = no_fault
    started: float = field(default_factory=time.monotonic)
    held: bool = False               # whether this attempt holds the lease now

    @property
    def table(self) -> Any:
        return results_table(self.handler.results_table)

    @property
    def row_id(self) -> str:
        return results.row_key(self.obj.bucket, self.obj.key)

    def ms(self) -> int:
        """Milliseconds since the attempt started."""
        return int((time.monotonic() - self.started) * 1000)

    def checkpoint(self, step: str) -> None:
        self.fault(step, self.obj.key)

    def claim(self, **fields: Any) -> bool:
        """results.claim for this attempt's lease; False when another attempt holds it."""
        self.held = results.claim(self.table, self.row_id, holder=self.holder,
                                  until=self.until, **fields)
        return self.held

    def processed(self, **fields: Any) -> None:
        """Row -> PROCESSED, which ends the lease."""
        results.mark_processed(self.table, self.row_id, row=self._row_held(), **fields)
        self.held = False

    def failed(self, error: str, **fields: Any) -> None:
        """Row -> FAILED with the reason, which ends the lease."""
        results.mark_failed(self.table, self.row_id, error, row=self._row_held(), **fields)
        self.held = False

    def _row_held(self) -> Any:
        # The claim left the row PROCESSING, so ending the lease needs no read first (the
        # write's condition still checks that status, and a changed row is read then).
        return {"status": results.PROCESSING} if self.held else results.UNREAD

    def refuse(self, reason: str) -> Result:
        """Refused before anything was read: nothing is written or moved, the row says why."""
        self._failed_outside(reason, count_attempt=True)
        return Result(Outcome.FAILED, "refused: a recursive loop", error=reason)

    def vanished(self, error: str, **fields: Any) -> Result:
        """The object is gone and no earlier attempt handled it. Not retried: nothing will
        bring it back, and the row says what happened."""
        self._failed_outside(error, count_attempt=True, **fields)
        return Result(Outcome.FAILED, "failed", error=error)

    def busy(self, message: str, row: dict | None) -> Result:
        """Lost the claim; row (read after it) holds the other attempt's lease."""
        return Result(Outcome.BUSY, message, lease_until=(row or {}).get(results.LEASE_UNTIL))

    def _failed_outside(self, error: str, count_attempt: bool, **fields: Any) -> None:
        now = results.now_iso()
        results.mark_failed(self.table, self.row_id, error, count_attempt=count_attempt,
                            bucket=self.obj.bucket, finished_at=now, updated_at=now,
                            **self.handler.row_fields, **fields)
        self.held = False

    def _permanent(self, error: str) -> Result:
        """A permanent error before the object was read or after its row said PROCESSED:
        the row says so at once; the object stays where it is (nothing proves a move is
        safe)."""
        row = results.get(self.table, self.row_id)
        if row and row.get("status") == results.PROCESSED:
            results.record_transient_error(self.table, self.row_id, error)
            return Result(Outcome.PROCESSED, f"{self.handler.done}, but finishing failed",
                          error=error)
        self._failed_outside(error, count_attempt=not self.held)
        return Result(Outcome.FAILED, "failed: not retried", error=error)

    def _transient(self, exc: Exception) -> str:
        """Give the lease back (the retry need not wait for this attempt's timeout) and
        keep the error on the row; the error as logged."""
        error = self.handler.transient_error(exc)
        try:
            if self.held:
                results.release(self.table, self.row_id, self.holder)
            results.record_transient_error(self.table, self.row_id, error)
        except Exception as row_error:  # noqa: BLE001 - the table may be what is failing
            error += f" (and recording it failed: {row_error})"
        return error


def already_handled(s3: Any, row: dict | None, bucket: str, *moved_to: str) -> bool:
    """Whether an object that is gone was handled by an earlier attempt: its row ended, or
    it sits where a finished attempt moves it."""
    if row and row.get("status") in (results.PROCESSED, results.FAILED):
        return True
    return any(storage.head(s3, bucket, key) for key in moved_to)


def gone_reason(s3: Any, obj: S3Object, vanished: str) -> str:
    """Why the object an event names cannot be read: `vanished`, unless the event names
    a version and the key is still there in another one (that version was deleted, or
    never existed): then say which version is current, which has an event of its own."""
    current = storage.head(s3, obj.bucket, obj.key) if obj.version_id else None
    if current is None:
        return vanished
    return (f"version {obj.version_id} of the object does not exist (deleted, or never "
            f"this key's); its current version is {current.get('VersionId') or 'null'}")


def run(obj: S3Object, handler: Handler, work: Callable[[Attempt], Result], *,
        message_id: str | None = None, request_id: str | None = None,
        deadline: float | None = None, fault: Fault = no_fault) -> bool | Busy:
    """Attempt obj: True when its message is done with, False for SQS to retry it, Busy
    (also false) while another attempt holds the object's lease."""
    attempt = Attempt(obj, handler, holder=request_id or uuid.uuid4().hex,
                      until=int((deadline or invocation_deadline()) + LEASE_MARGIN_SECONDS),
                      message_id=message_id, fault=fault)
    fields = {"key": obj.key, "bucket": obj.bucket, "message_id": message_id,
              "request_id": request_id}
    log = handler.log
    try:
        result = work(attempt)
    except Exception as e:  # noqa: BLE001 - classified: retried, or FAILED at once
        if not failures.is_transient(e):
            result = attempt._permanent(failures.describe(e))
            log("ERROR", result.message, status=result.outcome, duration_ms=attempt.ms(),
                error=result.error, **fields)
            return True
        error = attempt._transient(e)
        log("ERROR", "transient failure; will be retried", status=Outcome.RETRY,
            duration_ms=attempt.ms(), error=error, **fields)
        return False
    level = "WARNING" if result.outcome in (Outcome.FAILED, Outcome.POISON) else "INFO"
    log(level, result.message, status=result.outcome, duration_ms=attempt.ms(),
        error=result.error, lease_until=result.lease_until, **result.fields, **fields)
    if result.outcome == Outcome.BUSY:
        # No lease on the row any more: the other attempt just finished; come back soon.
        return Busy(result.lease_until or time.time())
    return result.outcome != Outcome.POISON
