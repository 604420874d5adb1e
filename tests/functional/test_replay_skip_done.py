"""replay-dlq --skip-done under moto (mock_aws): the results table decides which dead letters
are done, by bucket, key and object version."""

from __future__ import annotations

import json

import boto3
import pytest

from pipectl.errors import PipectlError
from pipectl.naming import row_key
from tests.functional.replay_runs import results_table, run
from tests.helpers import s3_put_body


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
