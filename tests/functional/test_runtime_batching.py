"""The local runtime's batches, as Lambda's SQS poller makes them, against moto's SQS."""

from __future__ import annotations

import threading
import time

import boto3
import pytest
from moto import mock_aws

from pipectl.local.deployment import DeployedFunction, Mapping
from pipectl.local.runtime import gather


@pytest.fixture
def queue(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        client = boto3.client("sqs")
        url = client.create_queue(QueueName="batching")["QueueUrl"]
        yield client, url


def mapping(url: str, batch_size: int, window: int) -> Mapping:
    function = DeployedFunction(name="processor", handler="processor.lambda_handler",
                                timeout=30, memory=512, environment={})
    return Mapping(function=function, queue_url=url, queue_arn="arn:aws:sqs:us-east-1:1:b",
                   batch_size=batch_size, visibility_timeout=60, batching_window=window)


def send(client, url: str, n: int) -> None:
    for start in range(0, n, 10):
        client.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": f"m{i}"} for i in range(start, min(start + 10, n))])


def test_without_a_window_a_batch_is_what_one_receive_returns(queue):
    client, url = queue
    send(client, url, 25)
    batch = gather(client, mapping(url, batch_size=25, window=0), threading.Event())
    assert 1 <= len(batch) <= 10  # ReceiveMessage returns at most 10


def test_a_window_gathers_messages_up_to_the_batch_size(queue):
    client, url = queue
    send(client, url, 30)
    batch = gather(client, mapping(url, batch_size=25, window=5), threading.Event())
    assert len(batch) == 25 and len({m["MessageId"] for m in batch}) == 25


def test_a_window_ends_the_batch_when_fewer_messages_come(queue):
    client, url = queue
    send(client, url, 3)
    start = time.monotonic()
    batch = gather(client, mapping(url, batch_size=100, window=1), threading.Event())
    took = time.monotonic() - start
    assert sorted(m["Body"] for m in batch) == ["m0", "m1", "m2"]
    assert 1 <= took < 1 + 2 + 1  # the window, and at most one long poll past it
