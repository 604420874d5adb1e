"""What the tiers share: moto's account, the S3 notifications a queue carries, a queue with
its dead-letter queue, and results rows keyed as the handlers key them."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from pipectl.naming import RESULTS_PARTITION_KEY, row_key
from pipectl.ops import events

if TYPE_CHECKING:
    from pipectl.naming import Names

ACCOUNT = "123456789012"  # the account moto (and LocalStack) answer with
REGION = "us-east-1"
EVENTS = Path(__file__).resolve().parent / "events"
# One time for every generated notification, so the same key gives the same body.
EVENT_TIME = datetime(2026, 11, 23, 14, 0, tzinfo=timezone.utc)


def sqs_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


def s3_put_body(bucket: str, key: str, *, size: int = 64, etag: str | None = None) -> str:
    """The message body S3 sends to SQS for a put of bucket/key: pipectl.ops.events.s3_put
    (the documented notification shape, the key URL-encoded as S3 encodes it)."""
    return json.dumps(events.s3_put(bucket, key, size=size, etag=etag, region=REGION,
                                    now=EVENT_TIME))


def s3_test_event_body() -> str:
    """The s3:TestEvent S3 sends when a notification configuration is set."""
    return json.loads((EVENTS / "sqs_s3_test_event.json").read_text())["Records"][0]["body"]


class Queues:
    """A queue and its dead-letter queue as deploy makes them (maxReceiveCount 3), for
    S3 notifications of `bucket`. Needs mock_aws (or an endpoint in the environment)."""

    def __init__(self, queue: str, dlq: str, *, bucket: str = "raw"):
        import boto3

        self.bucket = bucket
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.dlq = self.sqs.create_queue(QueueName=dlq)["QueueUrl"]
        self.queue = self.sqs.create_queue(QueueName=queue, Attributes={
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": sqs_arn(dlq),
                                         "maxReceiveCount": 3})})["QueueUrl"]

    @classmethod
    def of(cls, names: Names, queue: str = "processing") -> Queues:
        """The pipeline's processing (or with queue="fetch" the fetcher's) queue pair."""
        from pipectl.ops.replay import queue_pair

        dlq, source = queue_pair(names, queue)
        return cls(source, dlq, bucket=names.bucket("raw"))

    def dead_letters(self, *keys: str | None, attributes: dict | None = None) -> None:
        """Put S3 notifications for `keys` into the DLQ (None: an s3:TestEvent)."""
        self.send(*(s3_test_event_body() if key is None else s3_put_body(self.bucket, key)
                    for key in keys), attributes=attributes)

    def send(self, *bodies: str, attributes: dict | None = None) -> None:
        """Put these message bodies into the DLQ as they are, 10 per call."""
        entries = [{"Id": str(i), "MessageBody": body,
                    **({"MessageAttributes": attributes} if attributes else {})}
                   for i, body in enumerate(bodies)]
        for start in range(0, len(entries), 10):
            self.sqs.send_message_batch(QueueUrl=self.dlq, Entries=entries[start:start + 10])

    def count(self, url: str) -> int:
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return (int(attrs["ApproximateNumberOfMessages"])
                + int(attrs["ApproximateNumberOfMessagesNotVisible"]))

    def drain(self, url: str) -> list[dict]:
        found = []
        while batch := self.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=300,
                MessageAttributeNames=["All"]).get("Messages", []):
            found += batch
        return found

    def keys(self, url: str) -> list[str]:
        from pipectl.ops.dead_letters import describe

        return sorted((describe(m["Body"])[0] or "(no key)") for m in self.drain(url))


def result_item(bucket: str, key: str, /, **attributes: str | int) -> dict[str, dict[str, str]]:
    """A results row in DynamoDB's low-level form, keyed row_key(bucket, key) as the handlers
    key it (a bookkeeping item such as __counters__ by its own name); ints as N, the rest S."""
    row_id = key if key.startswith("__") else row_key(bucket, key)
    return {RESULTS_PARTITION_KEY: {"S": row_id},
            **{name: {"N": str(value)} if isinstance(value, int) else {"S": value}
               for name, value in attributes.items()}}


def put_result(names: Names, key: str, /, **attributes: str | int) -> None:
    """Write a results row for `key` in the pipeline's raw bucket (see result_item)."""
    import boto3

    boto3.client("dynamodb", region_name=REGION).put_item(
        TableName=names.results_table, Item=result_item(names.bucket("raw"), key, **attributes))


def lambda_reports(monkeypatch, function: str, **fields: str) -> None:
    """Make moto answer GetFunction and GetFunctionConfiguration for `function` with these
    FunctionConfiguration fields (State, StateReason, StateReasonCode, LastUpdateStatus,
    LastUpdateStatusReason, LastUpdateStatusReasonCode: the Lambda API reference's), which
    moto never sets past Active and Successful. Needs mock_aws in this process."""
    from moto.awslambda.models import LambdaFunction

    real = LambdaFunction.get_configuration

    def get_configuration(self, on_create: bool = False) -> dict:
        found = real(self, on_create)
        return {**found, **fields} if self.function_name == function else found

    monkeypatch.setattr(LambdaFunction, "get_configuration", get_configuration)


def count_calls(reset: Callable[[], None]) -> Iterator[Counter]:
    """Every request the handlers' clients make, as service.Operation -> count, for a
    fixture to yield; reset makes the clients again (with the hook, then without)."""
    import boto3

    counted: Counter = Counter()

    def count(model, **_):
        counted[f"{model.service_model.service_name}.{model.name}"] += 1

    session = boto3._get_default_session()
    session.events.register("before-call", count)
    reset()
    yield counted
    session.events.unregister("before-call", count)
    reset()
