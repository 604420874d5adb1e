"""Lambda's SQS invocation: when it will be killed, its batch contract, the objects a
message announces."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from s3_event import MalformedMessage, S3Object, created_objects

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


def each_created_object(message: dict, context, prefix: str, log: Callable[..., None],
                        handle: Callable[[S3Object, dict], bool]) -> bool:
    """handle(obj, fields) for each object the message says was created under prefix;
    fields are the message and request ids, for logs. True when the message is done with."""
    fields = {"message_id": message.get("messageId"),
              "request_id": getattr(context, "aws_request_id", None)}
    try:
        objects = created_objects(message.get("body") or "")
    except MalformedMessage as e:
        # Not retryable either, but keep it: failing it sends it to the dead-letter queue.
        log("ERROR", "unrecognized message", error=str(e), **fields)
        return False
    ok = True
    for obj in objects:
        if not obj.key.startswith(prefix) or obj.key.endswith("/"):
            log("INFO", f"skipped: not a file under {prefix}", key=obj.key, status="SKIPPED",
                **fields)
            continue
        ok = handle(obj, fields) and ok
    return ok
