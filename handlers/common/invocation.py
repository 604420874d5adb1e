"""Lambda's SQS invocation: when it will be killed, its batch contract, the objects a
message announces and whether this pipeline owns them, and when a message another attempt
is busy with should come back. An event sent straight to the function (S3, SNS,
EventBridge) is handled as a batch of one."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote_plus, unquote_plus

from botocore.exceptions import BotoCoreError, ClientError

from common import contract, telemetry
from common.clients import sqs_client
from common.contract import BATCH_RUN_ARGUMENT, BATCH_VERSION_ARGUMENT
from common.s3_event import (
    REPROCESS_MARKER,
    MalformedMessage,
    S3Object,
    UnknownEvent,
    created_objects,
    is_direct_event,
)

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
        seconds = float(os.environ.get(contract.AWS_LAMBDA_FUNCTION_TIMEOUT)
                        or MAX_FUNCTION_SECONDS)
    except ValueError:
        seconds = MAX_FUNCTION_SECONDS
    return time.time() + seconds


MAX_VISIBILITY_SECONDS = 43200  # SQS's longest visibility timeout (12 hours)


@dataclass(frozen=True)
class Busy:
    """Not done: another attempt holds the object's lease until `until` (epoch seconds).

    False in a boolean context, like any outcome that returns the message to the queue;
    sqs_batch also makes the message visible again when the lease ends, not after the
    queue's whole visibility timeout (six times the function's timeout).
    """

    until: float

    def __bool__(self) -> bool:
        return False


def sqs_batch(event: dict, context, handle: Callable[[dict, float], bool | Busy]) -> dict:
    """Lambda's SQS contract with ReportBatchItemFailures: handle(message, deadline) says
    whether the message is done with; the others return to the queue, and only they.

    Copies of one notification in one batch (S3 and SQS both deliver at least once) are
    settled by the first: one attempt, and its outcome for every copy.
    """
    deadline = invocation_deadline(context)
    if is_direct_event(event):
        if not handle({"messageId": None, "body": event}, deadline):
            raise RetryLater("a transient failure; Lambda retries the invocation")
        return {"batchItemFailures": []}
    settled: dict[tuple, bool | Busy] = {}
    failures = []
    for message in (event or {}).get("Records") or []:
        identity = _identity(message)
        if identity is not None and identity in settled:
            outcome = settled[identity]
            telemetry.log("INFO", "duplicate in this batch: settled with the first copy",
                          message_id=message.get("messageId"), status="DUPLICATE")
        else:
            outcome = handle(message, deadline)
            if identity is not None:
                settled[identity] = outcome
        if not outcome:
            failures.append({"itemIdentifier": message.get("messageId")})
            if isinstance(outcome, Busy):
                retry_at(message, outcome.until)
    return {"batchItemFailures": failures}


def _identity(message: dict) -> tuple | None:
    """What makes two messages the same notification: the objects and their events."""
    try:
        objects = created_objects(message.get("body") or "")
    except MalformedMessage:
        return None
    return tuple((o.bucket, o.key, o.version_id, o.event_name, o.etag, o.sequencer,
                  o.reprocess)
                 for o in objects) or None


def queue_url(queue_arn: str) -> str | None:
    """arn:aws:sqs:<region>:<account>:<name> -> the queue's URL, without a GetQueueUrl call
    (the role is allowed only what it uses on its own queue)."""
    parts = (queue_arn or "").split(":")
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "sqs":
        return None
    _, partition, _, region, account, name = parts
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"


def retry_at(message: dict, until: float) -> None:
    """Make the message visible again at about `until` (ChangeMessageVisibility on its
    receipt handle). Best effort: without it the message still returns after the queue's
    visibility timeout."""
    url = queue_url(message.get("eventSourceARN", ""))
    handle = message.get("receiptHandle")
    if not url or not handle:
        return
    # A second past the lease: by then its holder finished, or is certainly dead.
    seconds = min(max(math.ceil(until - time.time()) + 1, 1), MAX_VISIBILITY_SECONDS)
    try:
        sqs_client().change_message_visibility(QueueUrl=url, ReceiptHandle=handle,
                                               VisibilityTimeout=seconds)
    except (ClientError, BotoCoreError) as e:
        telemetry.log("WARNING", "could not shorten the visibility of a busy message; it "
                      "returns after the queue's visibility timeout",
                      message_id=message.get("messageId"), error=str(e))


def each_created_object(message: dict, context, prefix: str, log: Callable[..., None],
                        handle: Callable[[S3Object, dict], bool | Busy], bucket: str = ""
                        ) -> bool | Busy:
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
    ok: bool | Busy = True
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


def loop_refusal(trigger: str, writes: dict[str, str]) -> str | None:
    """Why writing under these prefixes would re-trigger this function (prefix -> what is
    written there), or None. pipectl validate refuses such a pipeline.yaml already; this
    keeps a hand-edited environment from running up a recursive loop on S3 events."""
    for what, prefix in writes.items():
        if prefix.startswith(trigger) or trigger.startswith(prefix):
            return (f"refused: {what} would be written under {prefix!r}, which overlaps the "
                    f"prefix that triggers this function ({trigger!r}): a recursive loop; "
                    "fix the prefixes in pipeline.yaml and deploy again")
    return None


# --- S3 Batch Operations (LambdaInvoke: `pipectl reprocess --engine s3-batch`) -----------
# The invocation and its answer, as documented for both schema versions:
# docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-invoke-lambda.html and
# docs.aws.amazon.com/lambda/latest/dg/services-s3-batch.html. 1.0 names the bucket by ARN;
# 2.0 by name and carries the job's UserArguments (pipectl puts its marker there).
SUCCEEDED, TEMPORARY, PERMANENT = "Succeeded", "TemporaryFailure", "PermanentFailure"


def is_batch_operations(event) -> bool:
    return isinstance(event, dict) and event.get("invocationSchemaVersion") in ("1.0", "2.0") \
        and isinstance(event.get("tasks"), list)


def batch_operations(event: dict, context, handle: Callable[[dict, float], bool | Busy],
                     failed: Callable[[str, str], str | None], *, version: str,
                     done_prefixes: tuple[str, ...] = (), incoming: str = "") -> dict:
    """Each task of an S3 Batch Operations invocation, handled as the reprocess message
    for its object would be; the answer says per task Succeeded (processed, or done
    already), PermanentFailure (the file is FAILED, or the task names nothing this pipeline
    serves: `failed(bucket, key)` gives the row's error) or TemporaryFailure (retry later:
    Batch Operations retries those).

    A manifest names each file where it lies (completed/ or failed/ once it has a row): a
    key under one of done_prefixes is the file whose row is incoming + the rest.
    """
    deadline = invocation_deadline(context)
    job = _json_object(event.get("job"))
    arguments = _json_object(job.get("userArguments"))
    # Schema 1.0 has no user arguments: the job itself is the run, for the deployed version.
    marker = {"runId": str(arguments.get(BATCH_RUN_ARGUMENT) or job.get("id") or "s3-batch"),
              "version": str(arguments.get(BATCH_VERSION_ARGUMENT) or version)}
    results = []
    for task in event["tasks"]:
        task = _json_object(task)
        bucket = task.get("s3Bucket") or str(task.get("s3BucketArn") or "").split(":::")[-1]
        # Keys arrive URL-encoded, as in the manifest (AWS's own examples unquote_plus them).
        key = unquote_plus(str(task.get("s3Key") or ""))
        for prefix in done_prefixes:
            if prefix and key.startswith(prefix):
                key = incoming + key[len(prefix):]
                break
        code, why = _batch_task(bucket, key, task, marker, deadline, handle, failed)
        results.append({"taskId": task.get("taskId"), "resultCode": code, "resultString": why})
    return {"invocationSchemaVersion": event["invocationSchemaVersion"],
            "treatMissingKeysAs": PERMANENT, "invocationId": event.get("invocationId"),
            "results": results}


def _json_object(value: object) -> dict:
    """value if it is a JSON object; else (absent, null, any other type) an empty one."""
    return value if isinstance(value, dict) else {}


def _batch_task(bucket: str, key: str, task: dict, marker: dict, deadline: float,
                handle: Callable[[dict, float], bool | Busy],
                failed: Callable[[str, str], str | None]) -> tuple[str, str]:
    if not bucket or not key:
        return PERMANENT, "the task names no bucket and key"
    record = {"eventSource": "aws:s3", "eventName": "ObjectCreated:BatchOperations",
              "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key, safe="/")}},
              REPROCESS_MARKER: marker}
    # No versionId: the task's version is of the object where it lies; a re-run reads the
    # original the row names (common/results.rerun_source).
    outcome = handle({"messageId": task.get("taskId"), "body": {"Records": [record]}}, deadline)
    if not outcome:
        return TEMPORARY, "a transient failure or another attempt at work; retry later"
    error = failed(bucket, key)
    if error is not None:
        return PERMANENT, error[:1000]
    return SUCCEEDED, f"processed: s3://{bucket}/{key}"
