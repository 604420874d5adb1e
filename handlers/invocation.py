"""When the current Lambda invocation will be killed, for work that must stop in time."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

MAX_FUNCTION_SECONDS = 900  # Lambda's largest timeout


def invocation_deadline(context=None) -> float:
    """Epoch seconds when this invocation is killed: the context's remaining time, else the
    function's configured timeout (AWS_LAMBDA_FUNCTION_TIMEOUT), else Lambda's maximum."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        return time.time() + remaining() / 1000
    try:
        seconds = float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT") or MAX_FUNCTION_SECONDS)
    except ValueError:
        seconds = MAX_FUNCTION_SECONDS
    return time.time() + seconds


def sqs_batch(event: dict, context, handle: Callable[[dict, float], bool]) -> dict:
    """Lambda's SQS contract with ReportBatchItemFailures: handle(message, deadline) says
    whether the message is done with; the others return to the queue, and only they."""
    deadline = invocation_deadline(context)
    failures = [{"itemIdentifier": message.get("messageId")}
                for message in (event or {}).get("Records") or []
                if not handle(message, deadline)]
    return {"batchItemFailures": failures}
