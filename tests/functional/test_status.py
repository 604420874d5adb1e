"""pipectl status under mock_aws: counts from the counters item, health checks, bounded calls."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest

from pipectl.naming import Names
from pipectl.ops.status import pipeline_status

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
START = datetime(2030, 1, 1, tzinfo=timezone.utc)


def write_rows(names: Names, count: int, *, status: str = "PROCESSED", start: int = 0,
               at: datetime = START) -> None:
    """count result rows, one second apart from `at` on, 25 per BatchWriteItem."""
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    raw = names.bucket("raw")     # rows are keyed by bucket and key
    items = [{"object_key": {"S": f"s3://{raw}/incoming/f{start + i:06d}.csv"},
              "key": {"S": f"incoming/f{start + i:06d}.csv"}, "status": {"S": status},
              "updated_at": {"S": (at + timedelta(seconds=i)).isoformat()},
              "error": {"S": f"bad file {start + i}"}} for i in range(count)]
    for first in range(0, count, 25):
        ddb.batch_write_item(RequestItems={names.results_table: [
            {"PutRequest": {"Item": item}} for item in items[first:first + 25]]})


def put_counters(names: Names, **counts: int) -> None:
    boto3.client("dynamodb", region_name="us-east-1").put_item(
        TableName=names.results_table,
        Item={"object_key": {"S": "__counters__"},
              **{k: {"N": str(v)} for k, v in counts.items()}})


def record_calls(aws) -> list[str]:
    calls: list[str] = []
    for service in ("s3", "sqs", "dynamodb", "sts", "lambda", "cloudwatch", "logs"):
        aws.client(service).meta.events.register(
            "before-call", lambda model, **_: calls.append(model.name))
    return calls


def test_counts_come_from_the_counters_item(aws, deployed):
    # given: rows in the table, and a counters item that says otherwise
    write_rows(deployed, 3)
    put_counters(deployed, PROCESSING=1, PROCESSED=7, FAILED=2, ARCHIVED=4)

    # when
    report = pipeline_status(aws, deployed)

    # then: the counts are the counters item's, not a count of the rows
    assert report.results == {"PROCESSING": 1, "PROCESSED": 7, "FAILED": 2, "ARCHIVED": 4}


def test_without_a_counters_item_every_count_is_zero(aws, deployed):
    write_rows(deployed, 3)
    report = pipeline_status(aws, deployed)
    assert report.results == {"PROCESSING": 0, "PROCESSED": 0, "FAILED": 0, "ARCHIVED": 0}
    assert report.archiver is None


def test_recent_failures_are_the_newest_five_and_archiver_run_is_reported(aws, deployed):
    write_rows(deployed, 8, status="FAILED")
    boto3.client("dynamodb", region_name="us-east-1").put_item(
        TableName=deployed.results_table,
        Item={"object_key": {"S": "__archiver__"}, "last_run_at": {"S": START.isoformat()},
              "moved": {"N": "12"}, "bytes": {"N": "2048"}, "errors": {"N": "1"}})

    report = pipeline_status(aws, deployed)

    assert [r.key for r in report.recent_failures] == [
        f"incoming/f{i:06d}.csv" for i in (7, 6, 5, 4, 3)]
    assert report.recent_failures[0].error == "bad file 7"
    assert report.archiver == {"last_run_at": START.isoformat(), "moved": 12, "bytes": 2048,
                               "errors": 1}


# moto maintains the index on every write (~40 ms per BatchWriteItem of 25), so the
# 10,000 rows take ~16 s; the 1,001 files cross the one-page boundary of incoming/.
@pytest.mark.parametrize("rows", [10_000])
def test_status_makes_the_same_calls_however_many_rows_and_files(aws, deployed, rows):
    # given: a small pipeline, measured
    s3 = boto3.client("s3", region_name="us-east-1")
    write_rows(deployed, 100)
    write_rows(deployed, 10, status="FAILED", start=100)
    put_counters(deployed, PROCESSED=100, FAILED=10)
    s3.put_object(Bucket=deployed.bucket("raw"), Key="incoming/one.csv", Body=b"a\n")
    calls = record_calls(aws)
    small = pipeline_status(aws, deployed)
    small_calls = list(calls)

    # when: a hundred times the rows and more than a page of waiting files
    write_rows(deployed, rows, start=1000)
    for i in range(1001):
        s3.put_object(Bucket=deployed.bucket("raw"), Key=f"incoming/w{i:04d}.csv", Body=b"")
    put_counters(deployed, PROCESSED=100 + rows, FAILED=10)
    calls.clear()
    large = pipeline_status(aws, deployed)

    # then: the same calls, and the page of incoming/ says it is a lower bound
    assert calls == small_calls
    # 3 queues x 2, 3 buckets + 1 page, 5 table reads, 3 functions, 1 alarm query, 1 STS
    assert len(calls) <= 20
    assert "Scan" not in calls
    assert large.results["PROCESSED"] == 100 + rows
    assert (small.incoming.count, small.incoming.truncated) == (1, False)
    assert (large.incoming.count, large.incoming.truncated) == (1000, True)


def test_a_healthy_pipeline_has_no_problems(aws, deployed):
    report = pipeline_status(aws, deployed)
    assert report.healthy and report.problems == [] and report.missing == []


def test_every_reason_to_be_unhealthy_is_one_problem(aws, deployed):
    # given: a dead letter, a recent failure and a file that waits too long
    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=deployed.dlq)["QueueUrl"],
                     MessageBody="{}")
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.put_object(Bucket=deployed.bucket("raw"), Key="incoming/stuck.csv", Body=b"a\n")
    # The object's own clock (whole seconds), not this process's: a now taken before
    # the upload can fall just under 20 minutes of age and read "19m".
    now = s3.head_object(Bucket=deployed.bucket("raw"), Key="incoming/stuck.csv")["LastModified"]
    write_rows(deployed, 1, status="FAILED", at=now - timedelta(hours=1))

    # when: looked at 20 minutes later
    report = pipeline_status(aws, deployed, now=now + timedelta(minutes=20),
                             stuck_after=timedelta(minutes=15))

    # then
    assert not report.healthy
    assert len(report.problems) == 3
    assert report.problems[0].startswith(f"dead-letter queue {deployed.dlq} holds 1 message")
    assert report.problems[1].startswith("files failed since ")
    assert "incoming/f000000.csv" in report.problems[1] and "bad file 0" in report.problems[1]
    assert report.problems[2] == ("1 file(s) waiting in incoming/ for longer than 15m "
                                  "(oldest incoming/stuck.csv, 20m)")


def test_failures_before_the_window_and_fresh_files_are_healthy(aws, deployed):
    now = datetime.now(timezone.utc)
    write_rows(deployed, 1, status="FAILED", at=now - timedelta(days=2))
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=deployed.bucket("raw"), Key="incoming/fresh.csv", Body=b"a\n")

    report = pipeline_status(aws, deployed)

    assert report.healthy, report.problems
    assert report.incoming.count == 1 and report.incoming.oldest_key == "incoming/fresh.csv"


def test_nothing_deployed_names_every_missing_resource(aws, names):
    report = pipeline_status(aws, names)
    assert not report.healthy
    assert report.missing == [f"queue {names.queue}", f"queue {names.dlq}",
                              f"queue {names.fetch_dlq}",
                              *(f"bucket {b}" for b in names.bucket_roles().values()),
                              f"table {names.results_table}"]
    assert report.incoming is None and report.queue is None
