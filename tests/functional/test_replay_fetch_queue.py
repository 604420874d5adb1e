"""replay-dlq --queue fetch under moto (mock_aws): the fetcher's dead letters go back to the
fetch queue, read by their request files' keys."""

from __future__ import annotations

import json

import boto3
import pytest

from pipectl.errors import PipectlError, UsageError
from pipectl.ops import replay as replay_ops
from tests.functional.replay_runs import results_table, run
from tests.helpers import Queues


@pytest.fixture
def fetch_queues(aws, names):
    return Queues.of(names, queue="fetch")


def test_fetch_dead_letters_go_back_to_the_fetch_queue_and_nowhere_else(aws, names, queues,
                                                                      fetch_queues):
    # given dead letters in both DLQs
    queues.dead_letters("incoming/a.csv")
    fetch_queues.dead_letters("fetch/orders.json", "fetch/users.yaml")

    # when replaying the fetch queue's
    report = run(aws, names, queue="fetch")

    # then they are back in the fetch queue; the processing queue and its DLQ are untouched
    assert (report.source, report.target) == (names.fetch_dlq, names.fetch_queue)
    assert (report.moved, report.skipped, report.failed) == (2, 0, 0)
    assert fetch_queues.keys(fetch_queues.queue) == ["fetch/orders.json", "fetch/users.yaml"]
    assert fetch_queues.count(fetch_queues.dlq) == 0
    assert (queues.count(queues.dlq), queues.count(queues.queue)) == (1, 0)


def test_fetch_dead_letters_made_by_s3_and_sqs_are_described_by_request_key(aws, names,
                                                                          fetch_queues):
    # given the raw bucket notifying the fetch queue of request files, as deploy sets it up,
    # and a request file whose message SQS dead-lettered after maxReceiveCount receives
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket="raw")
    s3.put_bucket_notification_configuration(Bucket="raw", NotificationConfiguration={
        "QueueConfigurations": [{
            "QueueArn": names.queue_arn(names.fetch_queue), "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "fetch/"},
                                               {"Name": "suffix", "Value": ".json"}]}}}]})
    s3.put_object(Bucket="raw", Key="fetch/my orders+(1).json", Body=b'{"url": "x"}')
    for _ in range(4):  # the 4th receive finds the message gone to the DLQ
        fetch_queues.sqs.receive_message(QueueUrl=fetch_queues.queue, MaxNumberOfMessages=10,
                                         VisibilityTimeout=0)
    assert fetch_queues.count(fetch_queues.queue) == 0

    # when previewing the fetch DLQ
    report = run(aws, names, queue="fetch", dry_run=True)

    # then the request file is listed under its decoded key and size, next to the
    # s3:TestEvent that setting the notification sent (no key)
    listed = sorted((m.key or "(no key)", m.size) for m in report.messages)
    assert listed == [("(no key)", None), ("fetch/my orders+(1).json", 12)]
    assert report.would_move == 2 and fetch_queues.count(fetch_queues.dlq) == 2


def test_filter_and_skip_done_apply_to_fetch_request_keys(aws, names, fetch_queues):
    # given fetcher rows (kind fetch, keyed by the request file): one fetched, one failed
    results_table(names, {"fetch/done.json": "PROCESSED", "fetch/bad.yaml": "FAILED"},
                  kind="fetch")
    fetch_queues.dead_letters("fetch/done.json", "fetch/bad.yaml", "fetch/new.yaml",
                              "fetch/other.json", None)

    # when replaying the fetch DLQ's YAML requests that were not fetched yet
    report = run(aws, names, queue="fetch", key_filter="fetch/*.yaml", skip_done=True)

    # then only those move; the fetched one, the JSON one and the test event stay
    assert (report.moved, report.skipped) == (2, 3)
    assert fetch_queues.keys(fetch_queues.queue) == ["fetch/bad.yaml", "fetch/new.yaml"]
    assert fetch_queues.keys(fetch_queues.dlq) == ["(no key)", "fetch/done.json",
                                                   "fetch/other.json"]
    reasons = {m.key: m.reason for m in report.messages if m.action == "skipped"}
    assert reasons == {"fetch/done.json": "does not match --filter",
                       "fetch/other.json": "does not match --filter",
                       None: "does not match --filter"}


def test_skip_done_leaves_a_fetched_request_in_the_fetch_dlq(aws, names, fetch_queues):
    results_table(names, {"fetch/done.json": "PROCESSED"}, kind="fetch")
    fetch_queues.dead_letters("fetch/done.json", "fetch/new.json")

    report = run(aws, names, queue="fetch", skip_done=True)

    assert (report.moved, report.skipped) == (1, 1)
    assert [(m.key, m.reason) for m in report.messages if m.action == "skipped"] == [
        ("fetch/done.json", "already PROCESSED")]
    assert fetch_queues.keys(fetch_queues.queue) == ["fetch/new.json"]


def test_the_fetch_queue_must_redrive_to_the_fetch_dlq(aws, names, queues, fetch_queues):
    # given a fetch queue that dead-letters into the processing DLQ (a hand-made mistake)
    fetch_queues.sqs.set_queue_attributes(QueueUrl=fetch_queues.queue, Attributes={
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": names.queue_arn(names.dlq),
                                     "maxReceiveCount": 3})})

    with pytest.raises(PipectlError, match=f"queue '{names.fetch_queue}' points at "
                                           f".*{names.dlq}, not at dead-letter queue "
                                           f"'{names.fetch_dlq}'"):
        run(aws, names, queue="fetch")


def test_an_unknown_queue_is_a_usage_error(names):
    with pytest.raises(UsageError, match="unknown queue 'archive' "
                                         r"\(expected one of: processing, fetch\)"):
        replay_ops.queue_pair(names, "archive")
