"""Dead-letter replay under moto (mock_aws): what moves, what stays, and how many calls it takes
(--skip-done, --native and --queue fetch: test_replay_skip_done, _native, _fetch_queue)."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import quote_plus

import boto3
import pytest

from pipectl.errors import PipectlError
from pipectl.naming import row_key
from pipectl.ops.dead_letters import describe
from tests.functional.replay_runs import results_table, run
from tests.helpers import EVENTS, Queues, s3_put_body


def count_calls(client) -> Counter:
    calls: Counter = Counter()
    client.meta.events.register("before-call",
                                lambda model, **_: calls.update([model.name]))
    return calls


def test_dry_run_lists_decoded_keys_and_leaves_every_message(aws, names, queues):
    # given three dead letters, one with an encoded key and one s3:TestEvent
    queues.dead_letters("incoming/my file+(1).csv", "incoming/b.json", None)
    assert quote_plus("incoming/my file+(1).csv", safe="/") == "incoming/my+file%2B%281%29.csv"

    # when previewing
    report = run(aws, names, dry_run=True)

    # then every message is listed with its decoded key, and all are still in the DLQ, visible
    assert sorted(m.key or "(no key)" for m in report.messages) == [
        "(no key)", "incoming/b.json", "incoming/my file+(1).csv"]
    assert {m.action for m in report.messages} == {"would move"}
    assert report.moved == 0 and report.dry_run
    letter = next(m for m in report.messages if m.key == "incoming/b.json")
    assert letter.size == 64 and letter.receive_count == 1
    assert letter.sent_at and letter.first_received_at and letter.message_id
    visible = queues.sqs.get_queue_attributes(QueueUrl=queues.dlq, AttributeNames=[
        "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"]
    assert visible == "3"
    assert queues.count(queues.queue) == 0


def test_replay_moves_all_with_identical_bodies_and_attributes(aws, names, queues):
    # given 25 dead letters carrying a message attribute
    keys = [f"incoming/file-{i}.csv" for i in range(25)]
    attributes = {"trace": {"DataType": "String", "StringValue": "abc"},
                  "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}
    queues.dead_letters(*keys, attributes=attributes)
    sent_bodies = sorted(s3_put_body(queues.bucket, k) for k in keys)

    # when replaying
    report = run(aws, names)

    # then all moved; the processing queue holds the same bodies and attributes; DLQ empty
    assert (report.moved, report.skipped, report.failed) == (25, 0, 0)
    assert queues.count(queues.dlq) == 0
    arrived = queues.drain(queues.queue)
    assert sorted(m["Body"] for m in arrived) == sent_bodies
    for message in arrived:
        got = {n: {k: v for k, v in a.items() if k in ("DataType", "StringValue", "BinaryValue")}
               for n, a in message["MessageAttributes"].items()}
        # ... and the count of replays, which SQS carries into the DLQ should it fail again
        assert got == {**attributes, "pipectl-replays": {"DataType": "Number",
                                                         "StringValue": "1"}}


def test_filter_moves_only_matching_keys_and_the_rest_stay(aws, names, queues):
    # given csv and json dead letters and a test event
    queues.dead_letters("incoming/a.csv", "incoming/b.json", "incoming/c d.csv", None)

    # when replaying only csv files
    report = run(aws, names, key_filter="incoming/*.csv")

    # then the csv files moved; the json and the key-less test event stay in the DLQ, visible
    assert (report.moved, report.skipped, report.failed) == (2, 2, 0)
    assert queues.keys(queues.queue) == ["incoming/a.csv", "incoming/c d.csv"]
    assert queues.keys(queues.dlq) == ["(no key)", "incoming/b.json"]


def test_filter_matching_nothing_receives_each_message_once(aws, names, queues):
    # given 30 dead letters that do not match
    queues.dead_letters(*[f"incoming/{i}.json" for i in range(30)])
    calls = count_calls(aws.client("sqs"))

    # when replaying *.csv
    report = run(aws, names, key_filter="*.csv")

    # then each message is seen once, the run stops, and all are released back to the DLQ
    assert report.skipped == 30 and len(report.messages) == 30
    assert calls["ReceiveMessage"] <= 4
    assert calls["ChangeMessageVisibilityBatch"] == 3
    assert queues.count(queues.dlq) == 30
    assert queues.count(queues.queue) == 0


def test_max_moves_at_most_n(aws, names, queues):
    queues.dead_letters(*[f"incoming/{i}.csv" for i in range(15)])

    report = run(aws, names, max_messages=12)

    assert report.moved == 12
    assert queues.count(queues.queue) == 12
    assert queues.count(queues.dlq) == 3


def test_a_partial_send_failure_deletes_only_what_was_sent(aws, names, queues, monkeypatch):
    # given 5 dead letters, and SendMessageBatch reporting one entry failed (HTTP 200)
    queues.dead_letters(*[f"incoming/{i}.csv" for i in range(5)])
    sqs = aws.client("sqs")
    real = sqs.send_message_batch

    def one_fails(QueueUrl, Entries):  # noqa: N803 (boto3's names)
        response = real(QueueUrl=QueueUrl, Entries=Entries[1:])
        response.setdefault("Failed", []).append({
            "Id": Entries[0]["Id"], "SenderFault": False, "Code": "InternalError",
            "Message": "try again"})
        return response

    monkeypatch.setattr(sqs, "send_message_batch", one_fails)

    # when replaying
    report = run(aws, names)

    # then 4 moved, 1 failed and is still in the DLQ, visible again
    assert (report.moved, report.failed) == (4, 1)
    failed = next(m for m in report.messages if m.action == "failed")
    assert "InternalError" in failed.reason
    assert queues.count(queues.queue) == 4
    assert queues.keys(queues.dlq) == [failed.key]


def test_a_failed_delete_counts_as_failed(aws, names, queues, monkeypatch):
    queues.dead_letters("incoming/a.csv", "incoming/b.csv")
    sqs = aws.client("sqs")

    def none_deleted(QueueUrl, Entries):  # noqa: N803
        return {"Successful": [], "Failed": [{"Id": e["Id"], "SenderFault": False,
                                              "Code": "InternalError"} for e in Entries]}

    monkeypatch.setattr(sqs, "delete_message_batch", none_deleted)

    report = run(aws, names)

    assert (report.moved, report.failed) == (0, 2)
    assert all("not deleted" in m.reason for m in report.messages)


def test_source_queue_must_redrive_to_this_dlq(aws, names, queues):
    queues.sqs.set_queue_attributes(QueueUrl=queues.queue, Attributes={"RedrivePolicy": ""})
    with pytest.raises(PipectlError, match="has no RedrivePolicy, not at dead-letter queue"):
        run(aws, names)


def test_to_another_queue_by_name_or_url(aws, names, queues):
    other = queues.sqs.create_queue(QueueName="elsewhere")["QueueUrl"]
    queues.dead_letters("incoming/a.csv", "incoming/b.csv")

    report = run(aws, names, to=other, max_messages=1)
    assert report.target == "elsewhere" and report.moved == 1
    report = run(aws, names, to="elsewhere")
    assert report.moved == 1
    assert queues.keys(other) == ["incoming/a.csv", "incoming/b.csv"]


@pytest.mark.parametrize("count", [200])
def test_replay_stays_within_the_api_call_budget(aws, names, queues, count):
    # given `count` dead letters (1,000 under mock_aws takes minutes: moto's SQS slows
    # with depth; tests/server/test_replay_server.py measures 1,000)
    queues.dead_letters(*[f"incoming/{i}.csv" for i in range(count)])
    calls = count_calls(aws.client("sqs"))

    # when replaying
    report = run(aws, names)

    # then: one receive, one send and one delete per 10, one empty receive, 4 setup calls
    assert report.moved == count
    batches = count // 10
    assert calls["ReceiveMessage"] == batches + 1
    assert calls["SendMessageBatch"] == batches
    assert calls["DeleteMessageBatch"] == batches
    setup = sum(calls.values()) - 3 * batches - 1
    assert setup <= 4
    # at 1,000 messages that is (300 + 1 + 4) / 1000 = 0.305 calls per message
    assert (3 * 100 + 1 + setup) / 1000 <= 0.31


def redrive(queues: Queues) -> None:
    """What SQS does after maxReceiveCount: the same message, attributes and all, to the DLQ."""
    for message in queues.drain(queues.queue):
        queues.sqs.send_message(QueueUrl=queues.dlq, MessageBody=message["Body"],
                                MessageAttributes={
                                    n: {k: v for k, v in a.items()
                                        if k in ("DataType", "StringValue", "BinaryValue")}
                                    for n, a in message["MessageAttributes"].items()})
        queues.sqs.delete_message(QueueUrl=queues.queue, ReceiptHandle=message["ReceiptHandle"])


def test_a_poison_message_is_replayed_at_most_max_replays_times(aws, names, queues):
    # given a dead letter that fails every time it is replayed, and one fresh dead letter
    queues.dead_letters("incoming/poison.csv")
    replays = []
    for _ in range(2):
        report = run(aws, names, max_replays=2)
        replays += [(m.key, m.replays, m.action) for m in report.messages]
        redrive(queues)
    queues.dead_letters("incoming/fresh.csv")

    # when replayed a third time with --max-replays 2
    preview = run(aws, names, max_replays=2, dry_run=True)
    report = run(aws, names, max_replays=2)

    # then it was sent twice, counted, and now stays in the DLQ with the reason; the
    # fresh one still moves
    assert replays == [("incoming/poison.csv", 0, "moved"), ("incoming/poison.csv", 1, "moved")]
    assert sorted((m.key, m.replays, m.action, m.reason) for m in preview.messages) == [
        ("incoming/fresh.csv", 0, "would move", None),
        ("incoming/poison.csv", 2, "would skip",
         "replayed 2 time(s) already (--max-replays 2)")]
    assert (report.moved, report.skipped) == (1, 1)
    assert queues.keys(queues.dlq) == ["incoming/poison.csv"]
    assert queues.keys(queues.queue) == ["incoming/fresh.csv"]


def test_dry_run_shows_each_dead_letters_last_error(aws, names, queues):
    results_table(names, {"incoming/café.csv": "PROCESSING", "incoming/bad.csv": "FAILED"})
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    for key, field, error in (("incoming/café.csv", "last_error", "ParamValidationError: x"),
                              ("incoming/bad.csv", "error", "line 3: unterminated")):
        ddb.update_item(TableName=names.results_table,
                        Key={"object_key": {"S": row_key(names.bucket("raw"), key)}},
                        UpdateExpression="SET #f = :e", ExpressionAttributeNames={"#f": field},
                        ExpressionAttributeValues={":e": {"S": error}})
    queues.dead_letters("incoming/café.csv", "incoming/bad.csv", "incoming/no-row.csv", None)

    report = run(aws, names, dry_run=True)

    assert sorted((m.key or "", m.last_error or "") for m in report.messages) == [
        ("", ""), ("incoming/bad.csv", "line 3: unterminated"),
        ("incoming/café.csv", "ParamValidationError: x"), ("incoming/no-row.csv", "")]


@pytest.mark.parametrize("name, key", [
    ("sqs_s3_put_versioned.json", "incoming/quarterly report (2024).csv"),
    ("sqs_sns_s3_put.json", "incoming/via sns.csv"),
    ("sqs_eventbridge_object_created.json",
     "incoming/eventbridge/2026-11-23T14:00:00 queued.csv"),
])
def test_dead_letters_of_every_queued_shape_are_described(name, key):
    # the samples' bodies are what a dead-letter queue holds (tests/events, AWS's shapes)
    body = json.loads((EVENTS / name).read_text())["Records"][0]["body"]
    found_key, _, etag, bucket, version = describe(body)
    assert (found_key, bucket, version) == (key, "raw-bucket",
                                            "3HL4kqtJvjVBH40Nrjfkd.KBeURpB0vU")
    assert etag is not None
