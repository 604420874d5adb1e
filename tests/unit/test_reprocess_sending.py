"""reprocess's sending: 10 messages per SendMessageBatch call, the --rate held, refused
entries sent again, and the message shape the processor parses."""

from __future__ import annotations

import hashlib
import json
from types import SimpleNamespace

import pytest
from common import s3_event
from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl.ops import reprocess
from pipectl.ops.reprocess import Candidate, ReprocessReport


class Clock:
    def __init__(self):
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeSqs:
    """Answers SendMessageBatch as SQS documents it (Successful / Failed entries:
    docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_SendMessageBatch.html),
    failing each entry whose body names a key in `refuse` the first `refusals` times."""

    def __init__(self, clock: Clock, refuse: set[str] = frozenset(), refusals: int = 1):
        self.clock, self.calls, self.bodies = clock, [], []
        self.refuse, self.refusals = dict.fromkeys(refuse, refusals), refusals

    def get_queue_url(self, QueueName: str) -> dict:
        return {"QueueUrl": f"https://sqs.us-east-1.amazonaws.com/123456789012/{QueueName}"}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict]) -> dict:
        assert 1 <= len(Entries) <= 10
        self.calls.append((self.clock.now, len(Entries)))
        ok, failed = [], []
        for entry in Entries:
            key = s3_event.created_objects(entry["MessageBody"])[0].key
            if self.refuse.get(key):
                self.refuse[key] -= 1
                failed.append({"Id": entry["Id"], "SenderFault": False,
                               "Code": "InternalError", "Message": "try again"})
                continue
            self.bodies.append(entry["MessageBody"])
            ok.append({"Id": entry["Id"], "MessageId": f"m-{len(self.bodies)}",
                       "MD5OfMessageBody": hashlib.md5(  # noqa: S324 - SQS's own digest
                           entry["MessageBody"].encode()).hexdigest()})
        return {"Successful": ok, "Failed": failed}


def sending(monkeypatch, count: int, rate: float | None, **fake) -> tuple[ReprocessReport,
                                                                          FakeSqs]:
    clock = Clock()
    monkeypatch.setattr(reprocess.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(reprocess.time, "sleep", clock.sleep)
    sqs = FakeSqs(clock, **fake)
    aws = SimpleNamespace(client=lambda service: sqs, region="us-east-1")
    names = SimpleNamespace(queue="demo-dev-processing")
    report = ReprocessReport(run_id="r1", target_version="abc", queue=names.queue,
                             dry_run=False, selected=[
                                 Candidate(key=f"incoming/f {i}+.csv", bucket="raw",
                                           status="PROCESSED", size=10, etag='"e"',
                                           version="old", updated_at=None)
                                 for i in range(count)])
    return reprocess.send(aws, names, report, rate=rate), sqs


def test_without_a_rate_every_call_carries_ten(monkeypatch):
    report, sqs = sending(monkeypatch, 95, None)
    assert [n for _, n in sqs.calls] == [10] * 9 + [5]
    assert (report.sent, report.calls, report.failed) == (95, 10, {})


@given(count=st.integers(1, 120), rate=st.floats(0.5, 200))
@settings(max_examples=60, deadline=None)
def test_the_rate_is_never_exceeded(count, rate):
    with pytest.MonkeyPatch.context() as monkeypatch:
        report, sqs = sending(monkeypatch, count, rate)
    assert report.sent == count
    # by any send, what was sent before it took at least that many messages' time
    sent = 0
    for at, n in sqs.calls:
        assert at >= sent / rate - 1e-9
        sent += n
    # and the batches are as large as the rate allows, 10 at most
    assert max(n for _, n in sqs.calls) == min(10, max(1, int(rate)), count)


def test_refused_entries_are_sent_again_then_reported(monkeypatch):
    report, sqs = sending(monkeypatch, 12, None, refuse={"incoming/f 3+.csv"})
    assert (report.sent, report.failed, report.calls) == (12, {}, 3)
    report, sqs = sending(monkeypatch, 12, None, refuse={"incoming/f 3+.csv"}, refusals=9)
    assert report.sent == 11 and list(report.failed) == ["incoming/f 3+.csv"]
    assert report.failed["incoming/f 3+.csv"] == "InternalError: try again"


def test_the_message_is_an_s3_notification_the_processor_reads_with_the_marker(monkeypatch):
    report, sqs = sending(monkeypatch, 1, None)
    body = json.loads(sqs.bodies[0])
    record = body["Records"][0]
    assert (record["eventSource"], record["eventName"]) == ("aws:s3", "ObjectCreated:Put")
    assert record["s3"]["object"]["key"] == "incoming/f+0%2B.csv"     # as S3 encodes it
    [obj] = s3_event.created_objects(sqs.bodies[0])
    assert (obj.bucket, obj.key, obj.etag) == ("raw", "incoming/f 0+.csv", "e")
    assert obj.reprocess == s3_event.Reprocess(run_id="r1", version="abc")


def test_a_live_notification_carries_no_marker_and_a_bad_marker_is_refused():
    live = json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                    "s3": {"bucket": {"name": "raw"},
                                           "object": {"key": "incoming/a.csv"}}}]})
    assert s3_event.created_objects(live)[0].reprocess is None
    bad = json.loads(live)
    bad["Records"][0][s3_event.REPROCESS_MARKER] = {"runId": "r1"}
    with pytest.raises(s3_event.UnknownEvent, match="without runId and version"):
        s3_event.created_objects(json.dumps(bad))
