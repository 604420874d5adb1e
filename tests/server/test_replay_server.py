"""pipectl replay-dlq as a user runs it: a subprocess against a moto server after `deploy`."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from pipectl.ops import replay as replay_ops
from pipectl.ops.dead_letters import ReplayOptions
from tests.helpers import s3_put_body

pytestmark = pytest.mark.server


def fill(sqs, url: str, keys: list[str]) -> None:
    for start in range(0, len(keys), 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "MessageBody": s3_put_body("raw", k)}
            for i, k in enumerate(keys[start:start + 10])])


def depth(sqs, url: str) -> int:
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def deployed(pipectl, client, names):
    result = pipectl("deploy", "--yes")
    assert result.code == 0, result.err
    sqs = client("sqs")
    return sqs, sqs.get_queue_url(QueueName=names["queue"])["QueueUrl"], \
        sqs.get_queue_url(QueueName=names["dlq"])["QueueUrl"]


def test_replay_dlq_moves_dead_letters_back_to_the_processing_queue(pipectl, deployed, names):
    # given a deployed pipeline with 25 dead letters
    sqs, queue, dlq = deployed
    fill(sqs, dlq, [f"incoming/file {i}.csv" for i in range(25)])
    waiting = depth(sqs, queue)  # deploy's notification setup queued one s3:TestEvent

    # when replaying them
    result = pipectl("--output", "json", "replay-dlq", "--yes")

    # then all 25 are back on the processing queue and the DLQ is empty
    assert result.code == 0, result.err
    data = result.json()
    assert (data["source"], data["target"], data["moved"], data["failed"]) == (
        names["dlq"], names["queue"], 25, 0)
    assert "incoming/file 0.csv" in {m["key"] for m in data["messages"]}
    assert (depth(sqs, dlq), depth(sqs, queue)) == (0, waiting + 25)


def test_native_falls_back_to_batches_on_moto_with_a_warning(pipectl, deployed):
    sqs, queue, dlq = deployed
    fill(sqs, dlq, ["incoming/a.csv", "incoming/b.csv"])
    waiting = depth(sqs, queue)

    result = pipectl("replay-dlq", "--native", "--yes")

    assert result.code == 0, result.err
    assert "warning: this endpoint has no StartMessageMoveTask" in result.err
    assert "moved 2, skipped 0, failed 0" in result.err
    assert (depth(sqs, dlq), depth(sqs, queue)) == (0, waiting + 2)


def test_without_yes_the_command_refuses_and_moves_nothing(pipectl, deployed):
    sqs, queue, dlq = deployed
    fill(sqs, dlq, ["incoming/a.csv"])

    result = pipectl("replay-dlq")

    assert result.code == 2
    assert "pass --yes" in result.err
    assert depth(sqs, dlq) == 1


def test_replaying_1000_dead_letters_takes_at_most_031_calls_each(client):
    # About 2.5 minutes: moto's SQS slows with queue depth (see DESIGN.md).
    # given a queue and its DLQ on the moto server, with 1,000 dead letters
    sqs = client("sqs")
    dlq = sqs.create_queue(QueueName="bench-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName="bench", Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3})})["QueueUrl"]
    fill(sqs, dlq, [f"incoming/{i}.csv" for i in range(1000)])
    calls: Counter = Counter()
    sqs.meta.events.register("before-call", lambda model, **_: calls.update([model.name]))

    # when pipectl's replay moves them (in-process: the subprocess's calls cannot be counted)
    route = replay_ops.locate(sqs, "bench-dlq", "bench")
    report = replay_ops.move(sqs, route, ReplayOptions())

    # then all moved, with at most 0.31 calls per message
    assert (report.moved, report.failed) == (1000, 0)
    assert depth(sqs, queue) == 1000
    assert sum(calls.values()) / 1000 <= 0.31, calls
