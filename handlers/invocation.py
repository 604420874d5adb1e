"""Lambda's SQS invocation: when it will be killed, its batch contract, the objects a
message announces and whether this pipeline owns them. An event sent straight to the
function (S3, SNS, EventBridge) is handled as a batch of one."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from s3_event import S3Object, UnknownEvent, created_objects, is_direct_event

MAX_FUNCTION_SECONDS = 900  # Lambda's largest timeout


class RetryLater(Exception):
    """A directly invoked event failed transiently: raising is how an asynchronous
    invocation asks Lambda to retry it (twice, then its on-failure destination)."""


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
    if is_direct_event(event):
        if not handle({"messageId": None, "body": event}, deadline):
            raise RetryLater("a transient failure; Lambda retries the invocation")
        return {"batchItemFailures": []}
    failures = [{"itemIdentifier": message.get("messageId")}
                for message in (event or {}).get("Records") or []
                if not handle(message, deadline)]
    return {"batchItemFailures": failures}


def each_created_object(message: dict, context, prefix: str, log: Callable[..., None],
                        handle: Callable[[S3Object, dict], bool], bucket: str = "") -> bool:
    """handle(obj, fields) for each object the message says was created in bucket under
    prefix; fields are the message and request ids, for logs. True when the message is
    done with. An object anywhere else is refused with one log line and never touched:
    the pipeline acts only on what it deployed (its role may reach further)."""
    fields = {"message_id": message.get("messageId"),
              "request_id": getattr(context, "aws_request_id", None)}
    try:
        objects = created_objects(message.get("body") or "")
    except UnknownEvent as e:
        # Done with at once: no retry makes an unknown shape readable.
        log("ERROR", f"refused: {e}", status="REFUSED", **fields)
        return True
    if objects and not bucket:
        # Without its bucket the function cannot tell its objects from others; keep the
        # message (it reaches the dead-letter queue, to replay once RAW_BUCKET is set).
        log("ERROR", "RAW_BUCKET is not set: cannot tell which objects this pipeline owns",
            status="RETRY", **fields)
        return False
    ok = True
    for obj in objects:
        where = {"key": obj.key, "bucket": obj.bucket, "event": obj.shape, **fields}
        if obj.bucket != bucket:
            log("WARNING", f"refused: bucket {obj.bucket} is not this pipeline's ({bucket})",
                status="REFUSED", **where)
            continue
        if not obj.key.startswith(prefix) or obj.key.endswith("/"):
            log("INFO", f"skipped: not a file under {prefix}", status="SKIPPED", **where)
            continue
        ok = handle(obj, fields) and ok
    return ok
