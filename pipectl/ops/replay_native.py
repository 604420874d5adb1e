"""replay-dlq --native: SQS's own redrive (StartMessageMoveTask), watched through
ListMessageMoveTasks until the task ends or the wait is over."""

from __future__ import annotations

import time
from collections.abc import Callable

from pipectl.aws import sqs as sqs_api
from pipectl.ops.dead_letters import Progress, ReplayReport, Route

# ListMessageMoveTasks Status: RUNNING | FAILED | CANCELLING | CANCELLED | COMPLETED.
_TASK_DONE = ("COMPLETED", "CANCELLED", "FAILED")


def move_native(probe, sqs, route: Route, *, on_progress: Progress | None = None,
                sleep: Callable[[float], None] = time.sleep,
                clock: Callable[[], float] = time.time, poll_seconds: float = 2.0,
                wait_seconds: float | None = None) -> ReplayReport | None:
    """SQS's own redrive: StartMessageMoveTask, then poll ListMessageMoveTasks until the
    task ends or wait_seconds pass (then it goes on in SQS, and the report says so).

    Returns None when the endpoint lacks the action (moto does), for the caller to fall
    back on replay.move(). `probe` is the client for the first call (no retries on an
    emulator).
    """
    asked_ms = int(clock() * 1000)
    handle = sqs_api.start_move_task(probe, route.dlq_arn, route.target_arn)
    if handle is None:
        return None
    report = ReplayReport(source=route.dlq, target=route.target, dry_run=False,
                          method="native")
    began = clock()
    deadline = began + (native_wait(route.waiting) if wait_seconds is None else wait_seconds)
    tracker = sqs_api.MoveTaskTracker(route.dlq_arn, route.target_arn, handle, asked_ms)
    while True:
        task = tracker.find(sqs)
        status = task.get("Status", "RUNNING") if task else "RUNNING"
        report.moved = int((task or {}).get("ApproximateNumberOfMessagesMoved", 0))
        if on_progress:
            on_progress(report)
        if status in _TASK_DONE or clock() >= deadline:
            break
        sleep(poll_seconds)
    to_move = int((task or {}).get("ApproximateNumberOfMessagesToMove", report.moved))
    if task is None:
        report.failed = route.waiting
        report.warnings.append("the move task never appeared in ListMessageMoveTasks; "
                               "check the dead-letter queue in a minute")
    elif status not in _TASK_DONE:
        report.warnings.append(
            f"the move task is still {status.lower()} after {clock() - began:.0f} s: "
            f"{report.moved:,} of {to_move:,} moved so far; SQS goes on moving the rest")
    elif status != "COMPLETED":
        report.failed = max(to_move - report.moved, 1)
        report.warnings.append(f"move task {status.lower()}: "
                               f"{task.get('FailureReason') or 'no reason given'}")
    return report


def native_wait(waiting: int) -> float:
    """How long replay-dlq --native watches its task: SQS moves up to 500 messages a
    second by default; give it ten times as long as that takes, and at least 5 minutes."""
    return max(300.0, waiting / 500 * 10)
