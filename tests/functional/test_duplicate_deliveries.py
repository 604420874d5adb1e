"""Duplicate deliveries (issue 19 item 3): copies in one batch are settled by the first;
a copy that finds another attempt's lease comes back when the lease ends, through
ChangeMessageVisibility on its receipt handle, not after the whole visibility timeout."""

from __future__ import annotations

import time

import boto3
import processor
from common import invocation, results
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.functional.conftest import PROCESSED, RAW
from tests.functional.s3_faults import fail_calls

QUEUE = "pipectl-demo-test-processing"


def _received(world, key: str, copies: int) -> list[dict]:
    """`copies` deliveries of key's notification, as Lambda hands them over: each with its
    receipt handle and the queue's ARN (docs.aws.amazon.com/lambda/latest/dg/with-sqs.html,
    "Example standard queue message event")."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=QUEUE)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    body = world.message(key)["body"]
    for _ in range(copies):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    got = []
    while len(got) < copies:
        got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                   VisibilityTimeout=360)["Messages"]
    return [{"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"],
             "body": m["Body"], "attributes": {}, "messageAttributes": {},
             "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs", "eventSourceARN": arn,
             "awsRegion": "us-east-1"} for m in got]


def _visible(url: str) -> int:
    attrs = boto3.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(copies=st.integers(min_value=2, max_value=10))
def test_copies_in_one_batch_are_settled_by_one_attempt(aws_world, copies):
    # given one upload whose notification arrives `copies` times in one batch
    key = f"incoming/copies-{copies}.csv"
    aws_world.upload(key, "a\n1\n")
    messages = [dict(aws_world.message(key), messageId=f"copy-{i}") for i in range(copies)]

    # when the batch is handled
    result = processor.lambda_handler(aws_world.event(*messages), None)

    # then every copy is done, after one attempt
    assert result == {"batchItemFailures": []}
    assert aws_world.row(key)["attempts"] == 1
    assert aws_world.keys(RAW, "completed/") == [f"completed/copies-{copies}.csv"]
    aws_world.s3.delete_object(Bucket=RAW, Key=f"completed/copies-{copies}.csv")


def test_copies_of_a_transient_failure_all_return_to_the_queue_after_one_attempt(aws_world):
    # given three copies of a notification whose output write is throttled
    aws_world.upload("incoming/flaky.csv", "a\n1\n")
    messages = [dict(aws_world.message("incoming/flaky.csv"), messageId=f"m{i}")
                for i in range(3)]
    restore = fail_calls(processor.s3_client(), "PutObject", "flaky")
    try:
        result = processor.lambda_handler(aws_world.event(*messages), None)
    finally:
        restore()

    # then all three are retried, and only one attempt was made
    assert result == {"batchItemFailures": [{"itemIdentifier": f"m{i}"} for i in range(3)]}
    assert aws_world.row("incoming/flaky.csv")["attempts"] == 1


def test_a_copy_that_finds_a_live_lease_comes_back_when_the_lease_ends(aws_world):
    # given another attempt that holds the object's lease for 4 more seconds
    key = "incoming/leased.csv"
    etag = aws_world.upload(key, "a\n1\n")
    until = int(time.time()) + 4
    assert results.claim(aws_world.table, results.row_key(RAW, key), bucket=RAW, kind="csv",
                         version="1.0.0", started_at=results.now_iso(), etag=etag,
                         holder="other", until=until)
    (message,) = _received(aws_world, key, 1)
    url = boto3.client("sqs").get_queue_url(QueueName=QUEUE)["QueueUrl"]

    # when the copy is delivered here
    result = processor.lambda_handler(aws_world.event(message), None)

    # then it is retried, invisible for now, and visible again once the lease is over
    # instead of after the 360 s it was received with
    assert result == {"batchItemFailures": [{"itemIdentifier": message["messageId"]}]}
    assert _visible(url) == 0
    got = boto3.client("sqs").receive_message(QueueUrl=url, WaitTimeSeconds=20)
    assert [m["Body"] for m in got.get("Messages", [])] == [message["body"]]
    assert until <= time.time() <= until + 10
    assert aws_world.keys(PROCESSED) == []


def test_the_queue_url_comes_from_the_event_source_arn():
    assert invocation.queue_url("arn:aws:sqs:eu-west-1:111122223333:orders-processing") == \
        "https://sqs.eu-west-1.amazonaws.com/111122223333/orders-processing"
    assert invocation.queue_url("arn:aws-cn:sqs:cn-north-1:111122223333:q") == \
        "https://sqs.cn-north-1.amazonaws.com.cn/111122223333/q"
    assert invocation.queue_url("") is None
    assert invocation.queue_url("arn:aws:s3:::bucket") is None
