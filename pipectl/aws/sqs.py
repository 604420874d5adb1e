"""SQS: queues, their attributes, and the receive/delete calls the local runtime polls with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from pipectl.aws.session import Aws, error_code, gone_is_done
from pipectl.errors import NotFound

_NOT_FOUND = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
# Errors an endpoint answers for an action it lacks. moto's server answers HTTP 500
# with an HTML page (code "500"); in-process moto raises NotImplementedError.
_UNSUPPORTED = ("InvalidAction", "UnsupportedOperation", "NotImplemented", "500", "501")


@dataclass(frozen=True)
class Depth:
    visible: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


def queue_url(sqs, name: str) -> str | None:
    try:
        return sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if error_code(exc) in _NOT_FOUND:
            return None
        raise


def require_queue_url(sqs, name: str) -> str:
    url = queue_url(sqs, name)
    if url is None:
        raise NotFound(f"queue '{name}' does not exist (run `pipectl deploy`)")
    return url


def attributes(sqs, url: str) -> dict[str, str]:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def attributes_if_exists(sqs, url: str) -> dict[str, str] | None:
    """The queue's attributes; None when there is no queue at url."""
    try:
        return attributes(sqs, url)
    except ClientError as exc:
        if error_code(exc) in _NOT_FOUND:
            return None
        raise


def create(sqs, name: str, attrs: dict[str, str], tags: dict[str, str] | None = None) -> str:
    return sqs.create_queue(QueueName=name, Attributes=attrs, tags=tags or {})["QueueUrl"]


def set_attributes(sqs, url: str, attrs: dict[str, str]) -> None:
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attrs)


def depth(sqs, url: str) -> Depth:
    found = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return Depth(visible=int(found.get("ApproximateNumberOfMessages", 0)),
                 in_flight=int(found.get("ApproximateNumberOfMessagesNotVisible", 0)),
                 delayed=int(found.get("ApproximateNumberOfMessagesDelayed", 0)))


def dead_letter_target(attrs: dict[str, str]) -> str | None:
    policy = attrs.get("RedrivePolicy")
    return json.loads(policy)["deadLetterTargetArn"] if policy else None


def receive(sqs, url: str, *, max_messages: int, wait_seconds: int) -> list[dict]:
    return sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=max_messages, WaitTimeSeconds=wait_seconds,
        AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])


def delete_batch(sqs, url: str, receipts: dict[str, str]) -> list[str]:
    """Delete messages by id -> receipt handle, 10 per call; returns the ids that failed.

    DeleteMessageBatch answers HTTP 200 even when some entries fail.
    """
    failed: list[str] = []
    items = list(receipts.items())
    for start in range(0, len(items), 10):
        chunk = items[start:start + 10]
        response = sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": handle} for i, (_, handle) in enumerate(chunk)])
        failed += [chunk[int(f["Id"])][0] for f in response.get("Failed", [])]
    return failed


def peek(sqs, url: str, *, max_messages: int = 10, hold_seconds: int = 30) -> list[dict]:
    """Receive without consuming: the caller must release() what it got.

    Receiving still counts against the message's ApproximateReceiveCount, so only peek
    at a queue whose receive count does not matter (a DLQ has no redrive policy of its
    own); never at a processing queue, where it would push messages toward its DLQ.
    """
    return sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=max_messages, VisibilityTimeout=hold_seconds,
        WaitTimeSeconds=0, AttributeNames=["All"]).get("Messages", [])


def release(sqs, url: str, receipts: list[str]) -> None:
    """Make received messages visible again at once (visibility timeout 0)."""
    for start in range(0, len(receipts), 10):
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": r, "VisibilityTimeout": 0}
            for i, r in enumerate(receipts[start:start + 10])])


# --- dead-letter replay (pipectl replay-dlq) ---------------------------------------------

# SQS batch calls take at most 10 entries and 256 KiB of payload in all.
BATCH_ENTRIES = 10
BATCH_BYTES = 256 * 1024


@dataclass(frozen=True)
class BatchOutcome:
    """A batch call's per-entry answer: the call itself succeeds (HTTP 200) either way."""

    succeeded: list[str]
    failed: dict[str, str]  # caller's key -> "Code: Message"


def queue_arn(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]


def receive_hidden(sqs, url: str, *, max_messages: int, visibility_timeout: int,
                   wait_seconds: int) -> list[dict]:
    """Receive with every attribute, hiding the messages for visibility_timeout seconds."""
    return sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=max_messages, VisibilityTimeout=visibility_timeout,
        WaitTimeSeconds=wait_seconds, AttributeNames=["All"],
        MessageAttributeNames=["All"]).get("Messages", [])


def send_batch(sqs, url: str, entries: dict[str, dict]) -> BatchOutcome:
    """Send messages (key -> SendMessageBatch entry without Id), 10 or 256 KiB per call."""
    succeeded: list[str] = []
    failed: dict[str, str] = {}
    for chunk in _chunks(list(entries.items())):
        response = sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), **entry} for i, (_, entry) in enumerate(chunk)])
        succeeded += [chunk[int(s["Id"])][0] for s in response.get("Successful", [])]
        failed.update({chunk[int(f["Id"])][0]: _reason(f) for f in response.get("Failed", [])})
    return BatchOutcome(succeeded, failed)


def release_batch(sqs, url: str, receipts: dict[str, str]) -> list[str]:
    """Make messages visible again now (visibility 0), 10 per call; returns the keys that failed.

    A message whose release fails reappears anyway when its visibility timeout ends.
    """
    failed: list[str] = []
    items = list(receipts.items())
    for start in range(0, len(items), BATCH_ENTRIES):
        chunk = items[start:start + BATCH_ENTRIES]
        response = sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": handle, "VisibilityTimeout": 0}
            for i, (_, handle) in enumerate(chunk)])
        failed += [chunk[int(f["Id"])][0] for f in response.get("Failed", [])]
    return failed


def start_move_task(sqs, source_arn: str, destination_arn: str) -> str | None:
    """SQS's native redrive (StartMessageMoveTask); returns the task handle, or None when
    the endpoint lacks the action (moto does)."""
    try:
        return sqs.start_message_move_task(SourceArn=source_arn,
                                           DestinationArn=destination_arn)["TaskHandle"]
    except NotImplementedError:  # in-process moto
        return None
    except ClientError as exc:
        if error_code(exc) in _UNSUPPORTED:
            return None
        raise


def probe_client(aws: Aws) -> Any:
    """The client for StartMessageMoveTask. On an emulator endpoint, one without retries:
    moto answers the missing action with HTTP 500, which botocore would retry 4 times."""
    endpoint = aws.endpoint_for("sqs")
    if not endpoint:
        return aws.client("sqs")
    return aws.client_with("sqs", endpoint_url=endpoint,
                           retries={"mode": "standard", "max_attempts": 1})


# How far SQS's clock may be behind ours when telling our move task from earlier ones.
CLOCK_SKEW_MS = 5 * 60 * 1000


class MoveTaskTracker:
    """One move task, found in ListMessageMoveTasks over its whole life.

    SQS returns TaskHandle only while a task is RUNNING (ListMessageMoveTasksResultEntry),
    so a finished task is known by its StartedTimestamp, read while the handle was there;
    if it finished before the first look, it is the newest task to our destination that
    started since we asked (one task at a time may run per source queue, newest first).
    """

    def __init__(self, source_arn: str, destination_arn: str, handle: str, asked_ms: int):
        self.source_arn, self.destination_arn = source_arn, destination_arn
        self.handle, self.asked_ms = handle, asked_ms
        self.started_ms: int | None = None

    def find(self, sqs) -> dict | None:
        tasks = sqs.list_message_move_tasks(SourceArn=self.source_arn,
                                            MaxResults=10).get("Results", [])
        for task in tasks:
            if self.handle and task.get("TaskHandle") == self.handle:
                self.started_ms = task.get("StartedTimestamp", self.started_ms)
                return task
        for task in tasks:
            if task.get("DestinationArn", self.destination_arn) != self.destination_arn:
                continue
            started = task.get("StartedTimestamp")
            if self.started_ms is not None:
                if started == self.started_ms:
                    return task
            elif started is not None and started >= self.asked_ms - CLOCK_SKEW_MS:
                return task
        return None


def _chunks(items: list[tuple[str, dict]]) -> list[list[tuple[str, dict]]]:
    chunks: list[list[tuple[str, dict]]] = []
    size = 0
    for item in items:
        entry_size = _payload_size(item[1])
        if not chunks or len(chunks[-1]) == BATCH_ENTRIES or size + entry_size > BATCH_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(item)
        size += entry_size
    return chunks


def _payload_size(entry: dict) -> int:
    # SQS counts the body plus each attribute's name, type and value.
    size = len(entry["MessageBody"].encode())
    for name, value in entry.get("MessageAttributes", {}).items():
        size += len(name.encode()) + len(value.get("DataType", "").encode())
        size += len(value.get("StringValue", "").encode()) + len(value.get("BinaryValue", b""))
    return size


def _reason(failure: dict) -> str:
    return f"{failure.get('Code', 'Failed')}: {failure.get('Message', '')}".rstrip(": ")


def delete_queue(sqs, url: str) -> None:
    with gone_is_done(*_NOT_FOUND):
        sqs.delete_queue(QueueUrl=url)


def tags(sqs, url: str) -> dict[str, str]:
    return sqs.list_queue_tags(QueueUrl=url).get("Tags", {})


def tag(sqs, url: str, wanted: dict[str, str]) -> None:
    sqs.tag_queue(QueueUrl=url, Tags=wanted)
