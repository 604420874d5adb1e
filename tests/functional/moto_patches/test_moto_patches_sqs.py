"""The emulator's SQS patches (pipectl/local/moto_patches/sqs.py) change cost, not
behaviour, and close a race: each behaviour test runs on plain and patched moto with the
same assertions; the concurrent ones show what patched moto no longer loses."""

from __future__ import annotations

import sys
import threading

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from tests.functional.moto_patches.variants import on_plain_and_patched, use

# --- SQS ---------------------------------------------------------------------------------

def attributes(sqs, url: str) -> dict[str, str]:
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return {k: got[k] for k in ("ApproximateNumberOfMessages",
                                "ApproximateNumberOfMessagesNotVisible",
                                "ApproximateNumberOfMessagesDelayed")}


def receive(sqs, url: str, n: int = 10, visibility: int = 300) -> list[dict]:
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=n, VisibilityTimeout=visibility,
                               MessageSystemAttributeNames=["ApproximateReceiveCount"],
                               WaitTimeSeconds=0).get("Messages", [])


def test_a_received_message_is_hidden_for_its_visibility_timeout_then_counts_again(sqs):
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="one")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=300)

    first = receive(sqs, url)
    hidden = receive(sqs, url)
    counts = attributes(sqs, url)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"],
                                  VisibilityTimeout=0)
    again = receive(sqs, url)

    assert [m["Body"] for m in first] == ["one"] and hidden == []
    assert counts == {"ApproximateNumberOfMessages": "0",
                      "ApproximateNumberOfMessagesNotVisible": "1",
                      "ApproximateNumberOfMessagesDelayed": "1"}
    assert [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in again] == [
        ("one", "2")]


def test_after_max_receive_count_a_message_moves_to_the_dead_letter_queue(sqs):
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="q", Attributes={
        "RedrivePolicy": f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": "2"}}'})[
        "QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="poison")

    counts = [m["Attributes"]["ApproximateReceiveCount"]
              for _ in range(3) for m in receive(sqs, url, visibility=0)]

    assert counts == ["1", "2"]
    assert attributes(sqs, url)["ApproximateNumberOfMessages"] == "0"
    assert [m["Body"] for m in receive(sqs, dlq)] == ["poison"]


def test_a_message_older_than_the_retention_period_is_not_delivered(sqs):
    from moto.sqs.models import sqs_backends

    url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})[
        "QueueUrl"]
    for body in ("old", "new"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    # as if "old" was sent two minutes ago (moto keeps sent_timestamp in milliseconds)
    queue = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].queues["q"]
    queue._messages[0].sent_timestamp -= 120_000

    assert receive(sqs, url) == []  # moto stops the receive at an expired message
    assert attributes(sqs, url)["ApproximateNumberOfMessagesNotVisible"] == "1"


SQS_STEPS = st.lists(st.one_of(
    st.tuples(st.just("send"), st.integers(1, 12), st.sampled_from([0, 300])),
    st.tuples(st.just("receive"), st.integers(1, 10), st.sampled_from([0, 300])),
    st.tuples(st.just("delete"), st.integers(0, 20), st.just(0)),
    st.tuples(st.just("release"), st.integers(0, 20), st.just(0))), min_size=1, max_size=12)


def run_sqs(steps) -> list:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        url = sqs.create_queue(QueueName="q", Attributes={
            "RedrivePolicy": f'{{"deadLetterTargetArn": "{arn}", "maxReceiveCount": "3"}}'})[
            "QueueUrl"]
        handles, seen, sent = [], [], 0
        for kind, n, seconds in steps:
            if kind == "send":
                sqs.send_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "MessageBody": f"m{sent + i}", "DelaySeconds": seconds}
                    for i in range(min(n, 10))])
                sent += min(n, 10)
            elif kind == "receive":
                got = receive(sqs, url, n, seconds)
                handles += [m["ReceiptHandle"] for m in got]
                seen.append([(m["Body"], m["Attributes"]["ApproximateReceiveCount"])
                             for m in got])
            elif handles:
                handle = handles.pop(n % len(handles))
                try:
                    if kind == "delete":
                        sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
                    else:
                        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle,
                                                      VisibilityTimeout=0)
                    seen.append(kind)
                except ClientError as exc:
                    seen.append(exc.response["Error"]["Code"])
            seen.append(attributes(sqs, url))
        seen.append(sorted(m["Body"] for m in receive(sqs, dlq)))
        return seen


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SQS_STEPS)
def test_generated_queue_traffic_looks_the_same_on_plain_and_patched_moto(steps):
    observed = on_plain_and_patched(run_sqs, steps)
    assert observed["patched"] == observed["plain"]


# --- SQS from many threads at once (the emulator's server runs a thread per request) -------

@pytest.fixture
def racy(monkeypatch):
    """Thread switches as often as CPython allows, so a race shows in a few hundred calls."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def send_all(client, url: str, bodies: list[str]) -> None:
    """Each body sent once, ten to a SendMessageBatch."""
    for first in range(0, len(bodies), 10):
        client.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": body}
            for i, body in enumerate(bodies[first:first + 10], start=first)])


def run_together(threads: list[threading.Thread]) -> None:
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_concurrent_deletes_and_sends_lose_nothing_on_patched_moto(monkeypatch, racy):
    use("patched", monkeypatch)
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        url = client.create_queue(QueueName="busy")["QueueUrl"]
        send_all(client, url, [f"old-{i}" for i in range(200)])
        received = []
        while len(received) < 200:
            received += client.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                               VisibilityTimeout=300)["Messages"]

        # when four threads delete every received message while another sends 200 more
        def delete(part: list[dict]) -> None:
            for m in part:
                client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

        def send() -> None:
            for i in range(200):
                client.send_message(QueueUrl=url, MessageBody=f"new-{i}")

        run_together([threading.Thread(target=delete, args=(received[k::4],))
                      for k in range(4)] + [threading.Thread(target=send)])

        # then exactly the 200 new ones are left (a deleted one brought back would be
        # in flight until its visibility timeout), each delivered once
        counts = client.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
        assert counts["Attributes"] == {"ApproximateNumberOfMessages": "200",
                                        "ApproximateNumberOfMessagesNotVisible": "0"}
        left = []
        while batch := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                              VisibilityTimeout=300).get("Messages"):
            left += [m["Body"] for m in batch]
    assert sorted(left) == sorted(f"new-{i}" for i in range(200))


def test_concurrent_receives_take_each_message_once_on_patched_moto(monkeypatch, racy):
    use("patched", monkeypatch)
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        url = client.create_queue(QueueName="shared")["QueueUrl"]
        send_all(client, url, [str(i) for i in range(300)])
        taken: list[str] = []

        def receive() -> None:
            while batch := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                  VisibilityTimeout=300).get("Messages"):
                taken.extend(m["Body"] for m in batch)

        run_together([threading.Thread(target=receive) for _ in range(4)])
    assert sorted(taken, key=int) == [str(i) for i in range(300)]
