"""The processor against every event shape AWS sends for "an object was created".

The samples in tests/events/ follow the documented shapes:
- S3 event notifications (eventVersion 2.1; keys URL-encoded, "+" for space, "%2B" for
  "+"; versionId on a versioned bucket; ObjectCreated:Put/Post/Copy/CompleteMultipartUpload):
  docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure.html
- the SNS envelope around a notification (S3 -> SNS -> SQS):
  docs.aws.amazon.com/sns/latest/dg/http-notification-json.html, and Lambda's SNS event
  (EventSource aws:sns, Sns.Message): docs.aws.amazon.com/lambda/latest/dg/with-sns.html
- EventBridge "Object Created" / "Object Deleted" from aws.s3 (detail.object.key as is,
  version-id, reason): docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html
- Lambda's SQS event around each body: docs.aws.amazon.com/lambda/latest/dg/with-sqs.html
Each sample names a placeholder VersionId and ETag; a test uploads the object to moto and
puts the real ones in, so the event is about the version that exists.
"""

from __future__ import annotations

import json
from pathlib import Path

import processor
import pytest

from tests.functional.conftest import PROCESSED, RAW

EVENTS = Path(__file__).resolve().parents[1] / "events"
BODIES = {".csv": "a,b\n1,2\n3,4\n", ".jsonl": '{"a": 1}\n{"a": 2}\n', ".json": '[{"a": 1}]',
          ".txt": "hello world\n"}


def sample(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def pointing_at(event, version_id: str, etag: str):
    """The event with its object's versionId and ETag set, inside every envelope (an SQS
    body or an SNS Message is JSON in a string)."""
    if isinstance(event, dict):
        out = {}
        for name, value in event.items():
            if name in ("versionId", "version-id"):
                value = version_id
            elif name in ("eTag", "etag"):
                value = etag.strip('"')
            elif name in ("body", "Message") and isinstance(value, str):
                value = json.dumps(pointing_at(json.loads(value), version_id, etag))
            else:
                value = pointing_at(value, version_id, etag)
            out[name] = value
        return out
    if isinstance(event, list):
        return [pointing_at(item, version_id, etag) for item in event]
    return event


def upload(world, key: str, body: str) -> tuple[str, str]:
    r = world.s3.put_object(Bucket=RAW, Key=key, Body=body.encode())
    return r["VersionId"], r["ETag"]


def log_lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


CREATED = [
    ("sqs_s3_put_versioned.json", "incoming/quarterly report (2024).csv", 2),
    ("sqs_s3_multipart_plus.json", "incoming/c++ notes.jsonl", 2),
    ("sqs_s3_copy.json", "incoming/copies/orders #1.json", 1),
    ("sqs_s3_post.json", "incoming/menu & prices.txt", None),
    ("sqs_sns_s3_put.json", "incoming/via sns.csv", 2),
    ("sqs_eventbridge_object_created.json",
     "incoming/eventbridge/2026-11-23T14:00:00 queued.csv", 2),
    ("s3_put_direct.json", "incoming/direct upload.csv", 2),
    ("sns_s3_put_direct.json", "incoming/sns direct.csv", 2),
    ("eventbridge_object_created.json", "incoming/eventbridge/c++ direct (1).csv", 2),
]


@pytest.mark.parametrize("name, key, records", CREATED, ids=[c[0] for c in CREATED])
def test_each_created_shape_processes_the_version_it_names(aws_world, name, key, records):
    # given the object the sample announces, at its decoded key
    version, etag = upload(aws_world, key, BODIES[Path(key).suffix])

    # when the sample (in its envelope, or sent straight to the function) arrives
    result = processor.lambda_handler(pointing_at(sample(name), version, etag), None)

    # then exactly that version is processed and moved to completed/
    assert result == {"batchItemFailures": []}
    row = aws_world.row(key)
    assert (row["status"], row["version_id"], row["key"], row["bucket"]) == (
        "PROCESSED", version, key, RAW)
    if records is not None:
        assert row["records_out"] == records
    assert aws_world.keys(RAW) == ["completed/" + key[len("incoming/"):]]
    assert aws_world.versions(RAW, "incoming/") == []     # that version left; no marker


@pytest.mark.parametrize("name", ["sqs_s3_removed.json", "eventbridge_object_deleted.json",
                                  "sqs_s3_test_event.json"])
def test_events_that_create_nothing_are_done_with_and_touch_nothing(aws_world, name):
    # given an object under incoming/ that the event does not announce as created
    aws_world.upload("incoming/gone.csv", "a\n1\n")
    # when a removal, an EventBridge Object Deleted or the s3:TestEvent arrives
    event = pointing_at(sample(name), "v", "e")
    result = processor.lambda_handler(event, None)
    # then nothing is processed, no row is written, and the message is not retried
    assert result == {"batchItemFailures": []}
    assert aws_world.keys(RAW) == ["incoming/gone.csv"] and aws_world.keys(PROCESSED) == []
    assert aws_world.row("incoming/gone.csv") is None


def sqs_body(world, body: str) -> dict:
    return world.event(dict(world.message("incoming/x.csv"), body=body))


REFUSED = [
    ("not json", "message body is not JSON"),
    ("[1, 2]", "a JSON array, not an event object"),
    ('{"hello": "world"}', "not an S3, SNS or EventBridge event (a JSON object with keys: hello)"),
    (json.dumps({"detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
                 "detail": {}}), "an EventBridge event from 'aws.ec2', not aws.s3"),
    (json.dumps({"Type": "Notification", "Message": "plain text"}),
     "SNS notification whose Message is not JSON"),
    (json.dumps({"Records": [{"eventSource": "aws:dynamodb", "eventName": "INSERT"}]}),
     "a record from aws:dynamodb, not aws:s3"),
    (json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                              "s3": {"bucket": {"name": RAW}}}]}),
     "ObjectCreated:Put record without s3.bucket.name/s3.object.key"),
    (json.dumps({"Type": "Notification", "TopicArn": "arn:aws:sns:us-east-1:1:t",
                 "Message": json.dumps({"Records": "nope"})}),
     "SNS notification > not an S3, SNS or EventBridge event"),
]


@pytest.mark.parametrize("body, shape", REFUSED, ids=[r[1][:30] for r in REFUSED])
def test_an_unknown_shape_is_refused_at_once_with_one_line_naming_it(aws_world, capsys,
                                                                    body, shape):
    aws_world.upload("incoming/x.csv", "a\n1\n")

    result = processor.lambda_handler(sqs_body(aws_world, body), None)

    # done with on the first receive, not after maxReceiveCount; one line says what it was
    assert result == {"batchItemFailures": []}
    lines = log_lines(capsys)
    assert len(lines) == 1 and lines[0]["status"] == "REFUSED"
    assert lines[0]["level"] == "ERROR" and shape in lines[0]["message"]
    assert "Traceback" not in lines[0]["message"] and "Error:" not in lines[0]["message"]
    assert aws_world.keys(RAW) == ["incoming/x.csv"] and aws_world.row("incoming/x.csv") is None


def test_an_unknown_shape_sent_straight_to_the_function_is_refused_too(aws_world, capsys):
    result = processor.lambda_handler({"detail-type": "Scheduled Event", "source": "aws.events",
                                       "detail": {}}, None)
    assert result == {"batchItemFailures": []}
    assert [line["status"] for line in log_lines(capsys)] == ["REFUSED"]


# --- objects the pipeline does not own -----------------------------------------------

OTHER = "someone-elses-bucket"


@pytest.mark.parametrize("name", ["sqs_s3_put_versioned.json", "sqs_sns_s3_put.json",
                                  "eventbridge_object_created.json"])
def test_an_object_in_another_bucket_is_refused_and_never_touched(aws_world, capsys, name):
    # given the same key in a bucket this pipeline did not deploy (and may be able to read)
    aws_world.s3.create_bucket(Bucket=OTHER)
    event = json.loads(json.dumps(sample(name)).replace(RAW, OTHER))
    key = next(k for n, k, _ in CREATED if n == name)
    aws_world.s3.put_object(Bucket=OTHER, Key=key, Body=BODIES[Path(key).suffix].encode())

    # when its event reaches the processor
    result = processor.lambda_handler(event, None)

    # then one line refuses it; nothing is read, written, moved or recorded
    assert result == {"batchItemFailures": []}
    lines = log_lines(capsys)
    assert [(line["status"], line["bucket"]) for line in lines] == [("REFUSED", OTHER)]
    assert lines[0]["message"] == f"refused: bucket {OTHER} is not this pipeline's ({RAW})"
    assert aws_world.keys(OTHER) == [key] and aws_world.keys(PROCESSED) == []
    assert aws_world.row(key, bucket=OTHER) is None and aws_world.row(key) is None


def test_a_prefix_the_pipeline_does_not_serve_is_skipped_with_one_line(aws_world, capsys):
    aws_world.upload("elsewhere/x.csv", "a\n1\n")
    result = processor.lambda_handler(aws_world.event(aws_world.message("elsewhere/x.csv")),
                                      None)
    assert result == {"batchItemFailures": []}
    assert [line["status"] for line in log_lines(capsys)] == ["SKIPPED"]
    assert aws_world.keys(RAW) == ["elsewhere/x.csv"] and aws_world.row("elsewhere/x.csv") is None


def test_without_raw_bucket_nothing_is_processed_and_the_message_is_kept(aws_world,
                                                                        monkeypatch):
    monkeypatch.setenv("RAW_BUCKET", "")
    aws_world.upload("incoming/x.csv", "a\n1\n")
    message = aws_world.message("incoming/x.csv")
    result = processor.lambda_handler(aws_world.event(message), None)
    # kept for the dead-letter queue (replayable once configured), never acted on
    assert result == {"batchItemFailures": [{"itemIdentifier": message["messageId"]}]}
    assert aws_world.keys(RAW) == ["incoming/x.csv"] and aws_world.row("incoming/x.csv") is None


# --- versions ----------------------------------------------------------------------

def test_a_direct_event_that_fails_transiently_raises_so_lambda_retries_it(aws_world):
    from common import invocation

    aws_world.s3.delete_bucket(Bucket=PROCESSED)       # the output cannot be written
    version, etag = upload(aws_world, "incoming/direct upload.csv", "a\n1\n")
    with pytest.raises(invocation.RetryLater):
        processor.lambda_handler(pointing_at(sample("s3_put_direct.json"), version, etag), None)
    assert aws_world.keys(RAW) == ["incoming/direct upload.csv"]


def output_versions(world) -> list[str]:
    """The processed output's versions, oldest first."""
    found = sorted(world.versions(PROCESSED, "processed/"), key=lambda v: v["LastModified"])
    return [world.s3.get_object(Bucket=PROCESSED, Key=v["Key"], VersionId=v["VersionId"])
            ["Body"].read().decode().count("\n") for v in found]


@pytest.mark.parametrize("order", ["in order", "newest first"])
def test_a_key_overwritten_before_processing_gets_both_versions_processed(aws_world, order):
    # given v1 (one record) overwritten by v2 (two records) before either was processed
    key = "incoming/orders.csv"
    v1, _ = upload(aws_world, key, "a\n1\n")
    v2, _ = upload(aws_world, key, "a\n1\n2\n")
    events = {v: aws_world.message(key, version_id=v) for v in (v1, v2)}

    # when each version's notification arrives (S3 does not promise their order)
    for v in ([v1, v2] if order == "in order" else [v2, v1]):
        assert processor.lambda_handler(aws_world.event(events[v]), None) == {
            "batchItemFailures": []}

    # then each version was read and processed as itself: two outputs, one per version,
    # and both originals are in completed/ (its versions), none left in incoming/
    last = v1 if order == "newest first" else v2
    row = aws_world.row(key)
    assert (row["status"], row["version_id"], row["attempts"]) == ("PROCESSED", last, 2)
    assert sorted(output_versions(aws_world)) == [1, 2]
    completed = [v for v in aws_world.versions(RAW, "completed/")]
    assert len(completed) == 2 and aws_world.versions(RAW, "incoming/") == []

    # and a late duplicate of the first version's event changes nothing
    first = v1 if order == "in order" else v2
    assert processor.lambda_handler(aws_world.event(events[first]), None) == {
        "batchItemFailures": []}
    assert aws_world.row(key)["version_id"] == last and len(output_versions(aws_world)) == 2


def test_a_redelivered_event_for_a_processed_version_is_a_no_op(aws_world):
    key = "incoming/once.csv"
    version, _ = upload(aws_world, key, "a\n1\n")
    message = aws_world.message(key, version_id=version)
    for _ in range(2):
        assert processor.lambda_handler(aws_world.event(message), None) == {
            "batchItemFailures": []}
    row = aws_world.row(key)
    assert (row["status"], row["attempts"]) == ("PROCESSED", 1)
    assert len(output_versions(aws_world)) == 1
