"""SQS: queues, their attributes, and the receive/delete calls the local runtime polls with."""

from __future__ import annotations

import json
from dataclasses import dataclass

from botocore.exceptions import ClientError

from pipectl.aws.session import error_code
from pipectl.errors import NotFound

_NOT_FOUND = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


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


def create(sqs, name: str, attrs: dict[str, str]) -> str:
    return sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]


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
