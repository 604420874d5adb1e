"""Dead-letter replay under moto (mock_aws): what moves, what stays, and how many calls it takes."""

from __future__ import annotations

import json
from collections import Counter
from urllib.parse import quote_plus

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl.aws import dynamodb
from pipectl.aws.sqs import CLOCK_SKEW_MS as CLOCK_SKEW
from pipectl.errors import PipectlError, UsageError
from pipectl.naming import (
    RESULTS_PARTITION_KEY,
    STATUS_INDEX,
    STATUS_INDEX_KEYS,
    Names,
    row_key,
)
from pipectl.ops import replay as replay_ops
from pipectl.ops.dead_letters import ReplayOptions, Route, describe
from pipectl.ops.replay_native import move_native
from tests.helpers import EVENTS, Queues, result_item, s3_put_body


@pytest.fixture
def queues(aws, names):
    return Queues.of(names)


def run(aws, names, queue: str = "processing", **options):
    dlq, source = replay_ops.queue_pair(names, queue)
    route = replay_ops.locate(aws.client("sqs"), dlq, source, options.pop("to", None))
    return replay_ops.replay(aws, names, route, ReplayOptions(**options))


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


def results_table(names: Names, rows: dict[str, str], kind: str = "csv") -> None:
    """The results table as deploy makes it, with a row of status rows[key] for each key."""
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(ddb, names.results_table, partition_key=RESULTS_PARTITION_KEY,
                          indexes={STATUS_INDEX: STATUS_INDEX_KEYS}, tags={})
    for key, status in rows.items():
        ddb.put_item(TableName=names.results_table, Item=result_item(
            names.bucket("raw"), key, key=key, bucket=names.bucket("raw"), status=status,
            kind=kind, updated_at="2026-11-23T14:00:00+00:00"))


def test_skip_done_leaves_processed_objects_in_the_dlq(aws, names, queues):
    # given a results table where one key is PROCESSED and one FAILED
    results_table(names, {"incoming/done file.csv": "PROCESSED", "incoming/bad.csv": "FAILED"})
    queues.dead_letters("incoming/done file.csv", "incoming/bad.csv", "incoming/new.csv")

    # when replaying with --skip-done
    report = run(aws, names, skip_done=True)

    # then the PROCESSED one stays in the DLQ; the others move
    assert (report.moved, report.skipped) == (2, 1)
    assert queues.keys(queues.queue) == ["incoming/bad.csv", "incoming/new.csv"]
    assert queues.keys(queues.dlq) == ["incoming/done file.csv"]


def test_skip_done_replays_a_newer_version_of_a_processed_key(aws, names, queues):
    # given a key PROCESSED for the version with ETag "v1"
    results_table(names, {"incoming/orders.csv": "PROCESSED"})
    boto3.client("dynamodb", region_name="us-east-1").update_item(
        TableName=names.results_table,
        Key={"object_key": {"S": row_key(names.bucket("raw"), "incoming/orders.csv")}},
        UpdateExpression="SET etag = :e", ExpressionAttributeValues={":e": {"S": '"v1"'}})
    sqs = queues.sqs
    for etag in ("v1", "v2"):      # S3 notifications carry the ETag without quotes
        body = json.loads(s3_put_body(queues.bucket, "incoming/orders.csv"))
        body["Records"][0]["s3"]["object"]["eTag"] = etag
        sqs.send_message(QueueUrl=queues.dlq, MessageBody=json.dumps(body))

    # when replaying with --skip-done
    report = run(aws, names, skip_done=True)

    # then the dead letter for v1 stays, and the one for the newer upload v2 is replayed
    assert (report.moved, report.skipped) == (1, 1)
    assert [json.loads(m["Body"])["Records"][0]["s3"]["object"]["eTag"]
            for m in queues.drain(queues.queue)] == ["v2"]
    assert [json.loads(m["Body"])["Records"][0]["s3"]["object"]["eTag"]
            for m in queues.drain(queues.dlq)] == ["v1"]


def test_skip_done_tells_versions_apart_even_with_the_same_etag(aws, names, queues):
    # given a key PROCESSED for version "v1" of a versioned bucket; "v2" re-uploaded the
    # same bytes (same ETag), so only the versionId tells the two dead letters apart
    results_table(names, {"incoming/orders.csv": "PROCESSED"})
    boto3.client("dynamodb", region_name="us-east-1").update_item(
        TableName=names.results_table,
        Key={"object_key": {"S": row_key(names.bucket("raw"), "incoming/orders.csv")}},
        UpdateExpression="SET etag = :e, version_id = :v",
        ExpressionAttributeValues={":e": {"S": '"same"'}, ":v": {"S": "v1"}})
    for version in ("v1", "v2"):
        body = json.loads(s3_put_body(queues.bucket, "incoming/orders.csv"))
        body["Records"][0]["s3"]["object"].update(eTag="same", versionId=version)
        queues.sqs.send_message(QueueUrl=queues.dlq, MessageBody=json.dumps(body))

    # when replaying with --skip-done
    report = run(aws, names, skip_done=True)

    # then v1's dead letter stays and v2's moves
    assert (report.moved, report.skipped) == (1, 1)
    assert [json.loads(m["Body"])["Records"][0]["s3"]["object"]["versionId"]
            for m in queues.drain(queues.queue)] == ["v2"]


def test_a_dead_letter_for_another_bucket_never_counts_as_done(aws, names, queues):
    # given a PROCESSED row for incoming/orders.csv in the pipeline's raw bucket
    results_table(names, {"incoming/orders.csv": "PROCESSED"})
    # and a dead letter for the same key in a bucket the pipeline does not own
    queues.sqs.send_message(QueueUrl=queues.dlq,
                            MessageBody=s3_put_body("someone-else", "incoming/orders.csv"))

    # when replaying with --skip-done
    report = run(aws, names, skip_done=True)

    # then the row of the raw bucket's object does not vouch for the other bucket's one
    assert (report.moved, report.skipped) == (1, 0)


def test_skip_done_without_a_results_table_is_not_found(aws, names, queues):
    queues.dead_letters("incoming/a.csv")
    with pytest.raises(PipectlError, match="results table .* does not exist"):
        run(aws, names, skip_done=True)
    assert queues.count(queues.dlq) == 1


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


def test_native_falls_back_to_batches_where_the_endpoint_lacks_it(aws, names, queues):
    queues.dead_letters("incoming/a.csv")
    report = run(aws, names, native=True)
    assert report.method == "batched" and report.moved == 1
    assert "StartMessageMoveTask" in report.warnings[0]


# ListMessageMoveTasks as the SQS API reference documents its result entries
# (docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/
# API_ListMessageMoveTasksResultEntry.html): TaskHandle "is only populated for tasks that
# are in RUNNING status"; FailureReason only when FAILED; StartedTimestamp is
# milliseconds since the epoch. botocore's Stubber also checks each against SQS's model.
STARTED_MS = 1_767_000_000_000


def move_entry(route, status: str, moved: int, *, to_move: int = 7, started=STARTED_MS,
               handle: str = "task-1", **extra) -> dict:
    entry = {"SourceArn": route.dlq_arn, "DestinationArn": route.target_arn,
             "Status": status, "StartedTimestamp": started,
             "ApproximateNumberOfMessagesMoved": moved,
             "ApproximateNumberOfMessagesToMove": to_move, **extra}
    if status == "RUNNING":
        entry["TaskHandle"] = handle
    return entry


def stubbed_move(sqs, route, *listings):
    from botocore.stub import Stubber

    stub = Stubber(sqs)
    stub.add_response("start_message_move_task", {"TaskHandle": "task-1"},
                      {"SourceArn": route.dlq_arn, "DestinationArn": route.target_arn})
    for results in listings:
        stub.add_response("list_message_move_tasks", {"Results": results},
                          {"SourceArn": route.dlq_arn, "MaxResults": 10})
    return stub


class Clock:
    """Time that passes only when the code under test sleeps."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def route(aws, names, queues):
    return replay_ops.locate(aws.client("sqs"), names.dlq, names.queue)


def test_native_follows_its_task_after_the_handle_disappears(aws, route):
    # given a task seen RUNNING (with its handle), then COMPLETED (no handle, as on AWS),
    # with an older finished task to the same queue listed after it
    sqs = aws.client("sqs")
    older = move_entry(route, "COMPLETED", 40, to_move=40, started=STARTED_MS - 86_400_000)
    stub = stubbed_move(sqs, route, [move_entry(route, "RUNNING", 3), older],
                        [move_entry(route, "COMPLETED", 7), older])
    clock = Clock(STARTED_MS / 1000)

    # when moving natively
    with stub:
        report = move_native(sqs, sqs, route, sleep=clock.sleep, clock=clock)

    # then it stops at COMPLETED with this task's count, not the older one's
    stub.assert_no_pending_responses()
    assert (report.method, report.moved, report.failed, report.warnings) == (
        "native", 7, 0, [])


def test_native_finds_a_task_that_finished_before_the_first_look(aws, route):
    # given a small DLQ whose task is COMPLETED (no handle) by the first ListMessageMoveTasks
    sqs = aws.client("sqs")
    stub = stubbed_move(sqs, route, [move_entry(route, "COMPLETED", 2, to_move=2,
                                                started=STARTED_MS + 150)])
    clock = Clock(STARTED_MS / 1000)

    with stub:
        report = move_native(sqs, sqs, route, sleep=clock.sleep, clock=clock)

    # then it is matched by destination and start time, at once
    assert (report.moved, report.failed) == (2, 0)
    assert clock.now == STARTED_MS / 1000


def test_native_wait_is_bounded_and_says_the_task_goes_on(aws, route):
    # given a task that stays RUNNING
    sqs = aws.client("sqs")
    running = [move_entry(route, "RUNNING", 5, to_move=900)]
    stub = stubbed_move(sqs, route, *[running] * 4)
    clock = Clock(STARTED_MS / 1000)

    # when watching it for 6 s at most, polling every 2 s
    with stub:
        report = move_native(sqs, sqs, route, sleep=clock.sleep, clock=clock, wait_seconds=6)

    # then it returns with the counts so far and says SQS goes on
    stub.assert_no_pending_responses()
    assert report.moved == 5 and report.failed == 0
    assert report.warnings == ["the move task is still running after 6 s: 5 of 900 moved "
                               "so far; SQS goes on moving the rest"]


def test_native_failed_task_reports_what_was_not_moved_and_why(aws, route):
    sqs = aws.client("sqs")
    stub = stubbed_move(sqs, route, [move_entry(
        route, "FAILED", 4, to_move=10, FailureReason="AWS.SimpleQueueService.KmsAccessDenied")])
    clock = Clock(STARTED_MS / 1000)

    with stub:
        report = move_native(sqs, sqs, route, sleep=clock.sleep, clock=clock)

    assert (report.moved, report.failed) == (4, 6)
    assert report.warnings == ["move task failed: AWS.SimpleQueueService.KmsAccessDenied"]


@settings(max_examples=25, deadline=None)
@given(moved=st.lists(st.integers(0, 10_000), min_size=1, max_size=6),
       skew_ms=st.integers(-CLOCK_SKEW, CLOCK_SKEW))
def test_native_ends_on_any_documented_completion(moved, skew_ms):
    # given any run of RUNNING listings and then COMPLETED, on an SQS clock off by skew_ms
    # (the tracker alone: Stubber-free, against entries shaped as above)
    from pipectl.aws.sqs import MoveTaskTracker

    route = Route("dlq", "u", "arn:aws:sqs:us-east-1:1:dlq", "q", "u2",
                  "arn:aws:sqs:us-east-1:1:q", 0)
    counts = sorted(moved)
    # an earlier run's finished task, listed after ours (newest first)
    older = move_entry(route, "COMPLETED", 99_999, started=STARTED_MS - CLOCK_SKEW - 1)
    listings = [[move_entry(route, "RUNNING", n, started=STARTED_MS + skew_ms), older]
                for n in counts[:-1]]
    listings.append([move_entry(route, "COMPLETED", counts[-1], started=STARTED_MS + skew_ms),
                     older])
    pages = iter(listings)

    class Sqs:
        def list_message_move_tasks(self, **_):
            return {"Results": next(pages)}

    tracker = MoveTaskTracker(route.dlq_arn, route.target_arn, "task-1", STARTED_MS)
    found = [tracker.find(Sqs()) for _ in listings]

    # then every listing is recognised as our task, ending COMPLETED with its last count
    assert all(f is not None for f in found)
    assert found[-1]["Status"] == "COMPLETED"
    assert found[-1]["ApproximateNumberOfMessagesMoved"] == counts[-1]


@pytest.mark.parametrize("count", [200])
def test_replay_stays_within_the_api_call_budget(aws, names, queues, count):
    # given `count` dead letters (1,000 under mock_aws takes minutes: moto's SQS slows
    # with depth; tests/server/test_replay.py measures 1,000)
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


# --- the fetch queue (--queue fetch) ---------------------------------------------------------

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
