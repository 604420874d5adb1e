"""pipectl status under mock_aws: counts from the counters item, health checks, bounded calls."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl.naming import Names
from pipectl.ops.results import ResultRow
from pipectl.ops.status import group_retries, pipeline_status
from tests.helpers import lambda_reports, put_result, result_item

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2030, 1, 1, tzinfo=timezone.utc)


def write_rows(names: Names, count: int, *, status: str = "PROCESSED", start: int = 0,
               at: datetime = START) -> None:
    """count result rows, one second apart from `at` on, 25 per BatchWriteItem."""
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    raw = names.bucket("raw")
    items = [result_item(raw, f"incoming/f{start + i:06d}.csv",
                         key=f"incoming/f{start + i:06d}.csv", status=status,
                         updated_at=(at + timedelta(seconds=i)).isoformat(),
                         error=f"bad file {start + i}") for i in range(count)]
    for first in range(0, count, 25):
        ddb.batch_write_item(RequestItems={names.results_table: [
            {"PutRequest": {"Item": item}} for item in items[first:first + 25]]})


def put_counters(names: Names, **counts: int) -> None:
    put_result(names, "__counters__", **counts)


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
    put_result(deployed, "__archiver__", last_run_at=START.isoformat(), moved=12, bytes=2048,
               errors=1)

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
    # 3 queues x 2, 3 buckets + 1 page + the notification rules, 6 table reads (one a page
    # of PROCESSING rows), 3 functions, 1 alarm query, 1 STS
    assert len(calls) <= 22
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


def put_retrying(names: Names, key: str, error: str | None, attempts: int) -> None:
    put_result(names, key, key=key, status="PROCESSING", updated_at=START.isoformat(),
               attempts=attempts, **({"last_error": error} if error is not None else {}))


def ascii_error(key: str) -> str:
    # The shape of botocore's refusal, quoting the file's own key in the value.
    return ("ParamValidationError: Parameter validation failed: Non ascii characters found "
            f'in S3 metadata for key "source", value: "s3://raw/{key}"')


def test_retrying_and_dead_lettered_files_are_grouped_by_their_last_error(aws, deployed):
    # given: files retrying with one cause, some of them out of attempts (maxReceiveCount 3),
    # one with another cause, and one in its first attempt with nothing wrong yet
    for i in range(4):
        put_retrying(deployed, f"incoming/café-{i}.csv", ascii_error(f"incoming/café-{i}.csv"), 1)
    for i in range(3):
        put_retrying(deployed, f"incoming/naïve-{i}.csv",
                     ascii_error(f"incoming/naïve-{i}.csv"), 3)
    put_retrying(deployed, "incoming/slow.csv", "ReadTimeoutError: read timed out", 2)
    put_retrying(deployed, "incoming/busy.csv", None, 1)

    report = pipeline_status(aws, deployed)

    reason = ("ParamValidationError: Parameter validation failed: Non ascii characters found "
              "in S3 metadata for key '…', value: '…'")
    assert [(g.state, g.files, g.last_error) for g in report.retrying] == [
        ("retrying", 4, reason), ("dead-lettered", 3, reason),
        ("retrying", 1, "ReadTimeoutError: read timed out")]
    assert report.retrying[0].example.startswith("incoming/café-")
    assert report.retrying_truncated is False
    assert [p for p in report.problems if "dead-lettered" in p] == [
        f"3 dead-lettered: {reason} (e.g. {report.retrying[1].example})"]


_KEYS = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1,
                max_size=60).map(lambda k: "incoming/" + k)


@settings(max_examples=60, deadline=None)
@given(keys=st.lists(_KEYS, min_size=1, max_size=8, unique=True),
       attempts=st.integers(min_value=0, max_value=6))
def test_one_cause_is_one_group_whatever_the_keys(keys, attempts):
    rows = [ResultRow(key=k, status="PROCESSING", attempts=attempts, last_error=ascii_error(k))
            for k in keys]
    groups = group_retries(rows, max_receive_count=3)
    assert [(g.state, g.files) for g in groups] == [
        ("dead-lettered" if attempts >= 3 else "retrying", len(keys))]
    assert groups[0].example in keys


@pytest.mark.parametrize("key", ["incoming/UPPER.CSV", "incoming/x.bin", "incoming/a.csv.bak"])
def test_a_file_no_notification_rule_matches_is_a_problem(aws, deployed, key):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.put_object(Bucket=deployed.bucket("raw"), Key=key, Body=b"a\n")
    s3.put_object(Bucket=deployed.bucket("raw"), Key="incoming/fine.csv", Body=b"a\n")

    report = pipeline_status(aws, deployed)

    assert (report.incoming.unmatched, report.incoming.unmatched_example) == (1, key)
    assert [p for p in report.problems if "notification rule" in p] == [
        f"1 file(s) in incoming/ match no notification rule and will never be processed, "
        f"e.g. {key} (S3 suffix filters are case-sensitive; add the suffix to "
        "processor.suffixes and deploy, or upload it again with a matching name)"]


@settings(max_examples=40, deadline=None)
@given(name=st.text(st.characters(codec="utf-8", exclude_characters="\x00/"), min_size=1,
                    max_size=30),
       suffix=st.sampled_from([".json", ".jsonl", ".csv", ".txt", ".csv.gz"]))
def test_a_key_matches_exactly_when_s3_would_deliver_it(name, suffix):
    from pipectl.ops.status import matched

    rules = [("incoming/", s) for s in (".json", ".jsonl", ".csv", ".txt", ".csv.gz")]
    assert matched(f"incoming/{name}{suffix}", rules)
    assert matched(f"incoming/{name}{suffix.upper()}", rules) == (suffix.upper() == suffix)
    assert not matched(f"elsewhere/{name}{suffix}", rules)


# Lambda's own words for a role it cannot assume, a key it cannot use, an idle function.
ROLE_REASON = "The role defined for the function cannot be assumed by Lambda."
KEY_REASON = ("Lambda was unable to decrypt the environment variables because the KMS key "
              "used is disabled. Please check the function's KMS key settings.")
IDLE_REASON = "The function is idle."


def test_a_function_lambda_cannot_run_is_a_problem_and_one_on_its_way_is_shown(
        aws, deployed, monkeypatch):
    # given a processor whose create Failed, an archiver whose last update Failed (the
    # previous code still runs) and a fetcher gone Inactive while idle
    processor, archiver, fetcher = (deployed.function(k)
                                    for k in ("processor", "archiver", "fetcher"))
    lambda_reports(monkeypatch, processor, State="Failed", StateReason=ROLE_REASON,
                   StateReasonCode="InsufficientRolePermissions")
    lambda_reports(monkeypatch, archiver, LastUpdateStatus="Failed",
                   LastUpdateStatusReason=KEY_REASON, LastUpdateStatusReasonCode="DisabledKMSKey")
    lambda_reports(monkeypatch, fetcher, State="Inactive", StateReason=IDLE_REASON,
                   StateReasonCode="Idle")

    # when
    report = pipeline_status(aws, deployed)

    # then each says its state and Lambda's reason
    states = {f.name: (f.state, f.last_update_status, f.state_reason, f.failed)
              for f in report.functions}
    assert states == {
        processor: ("Failed", "Successful",
                    f"State Failed: {ROLE_REASON} (InsufficientRolePermissions)", True),
        archiver: ("Active", "Failed", f"last update Failed: {KEY_REASON} (DisabledKMSKey)",
                   True),
        fetcher: ("Inactive", "Successful", f"State Inactive: {IDLE_REASON} (Idle)", False)}
    # and the two that cannot run are problems; the idle one wakes on its next invoke
    assert not report.healthy
    assert report.problems == [
        f"function {processor} cannot run: State Failed: {ROLE_REASON} "
        "(InsufficientRolePermissions); fix the cause, then run `pipectl deploy`",
        f"function {archiver} cannot run: last update Failed: {KEY_REASON} (DisabledKMSKey); "
        "fix the cause, then run `pipectl deploy`"]


def test_an_active_function_says_nothing_about_its_state(aws, deployed):
    report = pipeline_status(aws, deployed)
    assert {(f.state, f.last_update_status, f.state_reason, f.failed)
            for f in report.functions} == {("Active", "Successful", "", False)}
