"""results paging and filters, logs, trace and sample events under mock_aws."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import unquote_plus

import boto3
import pytest
from test_status import (
    START,
    put_counters,
    record_calls,
    write_rows,
)

from pipectl.aws.logs import ensure_stream
from pipectl.errors import NotFound, UsageError
from pipectl.ops import events
from pipectl.ops.logs import LogTail
from pipectl.ops.results import get_result, query_results
from pipectl.ops.trace import trace
from tests.helpers import ACCOUNT, put_result

EVENTS = Path(__file__).resolve().parents[1] / "events"


def ddb():
    return boto3.client("dynamodb", region_name="us-east-1")


def all_pages(names, **filters) -> list[list[str]]:
    pages, token = [], None
    while True:
        page = query_results(ddb(), names, page_token=token, **filters)
        pages.append([r.key for r in page.results])
        token = page.next_token
        if token is None:
            return pages


# --- results ---------------------------------------------------------------------

def test_paging_through_every_status_is_newest_first_without_gaps_or_repeats(deployed):
    # given: rows of three statuses, interleaved in time
    write_rows(deployed, 5, status="PROCESSED", start=0, at=START)
    write_rows(deployed, 4, status="FAILED", start=100, at=START + timedelta(milliseconds=500))
    write_rows(deployed, 3, status="PROCESSING", start=200, at=START + timedelta(seconds=2))
    put_counters(deployed, PROCESSED=5)

    # when: pages of 4
    pages = all_pages(deployed, limit=4)

    # then: every row once, newest first, never the counters item
    keys = [k for p in pages for k in p]
    assert len(keys) == len(set(keys)) == 12
    assert all(len(p) <= 4 for p in pages) and len(pages) >= 3
    rows = {r.key: r.updated_at for r in query_results(ddb(), deployed, limit=100).results}
    assert [rows[k] for k in keys] == sorted(rows.values(), reverse=True)
    assert "__counters__" not in keys


def test_one_status_pages_and_uses_only_queries(aws, deployed):
    write_rows(deployed, 7, status="FAILED")
    write_rows(deployed, 3, status="PROCESSED", start=50)
    calls = record_calls(aws)

    page = query_results(aws.client("dynamodb"), deployed, status="FAILED", limit=3)
    pages = all_pages(deployed, status="FAILED", limit=3)

    assert [r.key for r in page.results] == [f"incoming/f{i:06d}.csv" for i in (6, 5, 4)]
    assert [k for p in pages for k in p] == [f"incoming/f{i:06d}.csv" for i in range(6, -1, -1)]
    assert set(calls) == {"DescribeTable", "Query"}


def test_time_window_and_key_prefix_filters(deployed):
    write_rows(deployed, 10, status="PROCESSED", at=START)  # f000000..f000009, 1 s apart
    write_rows(deployed, 2, status="PROCESSED", start=1000, at=START + timedelta(seconds=3))

    window = query_results(ddb(), deployed, since=(START + timedelta(seconds=2)).isoformat(),
                           until=(START + timedelta(seconds=4)).isoformat(), limit=50)
    prefixed = query_results(ddb(), deployed, prefix="incoming/f0010", limit=50)

    assert sorted(r.key for r in window.results) == [
        "incoming/f000002.csv", "incoming/f000003.csv", "incoming/f000004.csv",
        "incoming/f001000.csv", "incoming/f001001.csv"]
    assert [r.key for r in prefixed.results] == ["incoming/f001001.csv", "incoming/f001000.csv"]
    assert prefixed.next_token is None


def test_prefix_paging_continues_past_filtered_out_rows(deployed):
    write_rows(deployed, 6, status="PROCESSED", start=0)
    write_rows(deployed, 6, status="PROCESSED", start=1000, at=START + timedelta(seconds=10))
    pages = all_pages(deployed, prefix="incoming/f0000", limit=4)
    assert [k for p in pages for k in p] == [f"incoming/f{i:06d}.csv" for i in range(5, -1, -1)]


def test_bookkeeping_items_and_bad_tokens_are_refused(deployed):
    put_counters(deployed, PROCESSED=1)
    with pytest.raises(NotFound, match="no result for '__counters__'"):
        get_result(ddb(), deployed, "__counters__")
    with pytest.raises(UsageError, match="--page-token: not a token"):
        query_results(ddb(), deployed, page_token="garbage!")


# --- logs --------------------------------------------------------------------------

def put_log(names, messages: list[tuple[int, str]], stream: str = "2030/01/01/[$LATEST]a"):
    logs = boto3.client("logs", region_name="us-east-1")
    group = names.log_group("processor")
    ensure_stream(logs, group, stream)  # deploy made the group; the stream is the runtime's
    logs.put_log_events(logGroupName=group, logStreamName=stream,
                        logEvents=[{"timestamp": t, "message": m} for t, m in messages])


def test_logs_are_returned_once_each_and_filtered(deployed):
    # CloudWatch Logs refuses events from the future and older than 14 days: use now.
    now = int(datetime.now(timezone.utc).timestamp() * 1000)
    put_log(deployed, [(now, '{"level": "INFO", "key": "incoming/a.csv"}'),
                       (now + 1, '{"level": "ERROR", "key": "incoming/b.csv"}')])
    tail = LogTail(boto3.client("logs", region_name="us-east-1"), deployed, "processor",
                   start_ms=now - 1000)

    first = tail.poll()
    again = tail.poll()
    put_log(deployed, [(now + 5, "REPORT RequestId: 1")])
    later = tail.poll()

    assert [e.message for e in first] == ['{"level": "INFO", "key": "incoming/a.csv"}',
                                          '{"level": "ERROR", "key": "incoming/b.csv"}']
    assert first[0].time == datetime.fromtimestamp(now / 1000, timezone.utc).isoformat(
        timespec="milliseconds")
    assert again == []
    assert [e.message for e in later] == ["REPORT RequestId: 1"]


def test_missing_log_group_and_unknown_function(aws, names):
    deployed = names  # nothing deployed: no log group yet
    tail = LogTail(boto3.client("logs", region_name="us-east-1"), deployed, "processor",
                   start_ms=0)
    with pytest.raises(NotFound, match=r"no logs yet for processor \(log group "
                                       r"/aws/lambda/pipectl-demo-dev-processor does not exist"):
        tail.poll()
    with pytest.raises(UsageError, match="unknown function 'nope'"):
        LogTail(None, deployed, "nope", start_ms=0)


# --- trace ---------------------------------------------------------------------------

def put_row(names, key: str, **attrs):
    put_result(names, key, key=key, **attrs)


def test_trace_of_a_processed_file(aws, deployed):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.put_object(Bucket=deployed.bucket("raw"), Key="completed/a b.csv", Body=b"x\n1\n")
    s3.put_object(Bucket=deployed.bucket("processed"), Key="processed/2030/01/01/a b.jsonl",
                  Body=b'{"x": 1}\n')
    put_row(deployed, "incoming/a b.csv", status="PROCESSED", attempts=1, records_in=1,
            records_out=1, updated_at=START.isoformat(), started_at=START.isoformat(),
            output=f"s3://{deployed.bucket('processed')}/processed/2030/01/01/a b.jsonl")

    found = trace(aws, deployed, "incoming/a b.csv")

    stages = {s.stage: s for s in found.stages}
    assert found.found
    assert [s.stage for s in found.stages] == ["incoming", "result", "output", "completed",
                                               "failed", "queue", "dead-letter queue"]
    assert not stages["incoming"].found and not stages["failed"].found
    assert stages["result"].detail.startswith("PROCESSED, attempts 1")
    assert stages["output"].found and stages["completed"].found
    assert stages["completed"].detail == \
        f"s3://{deployed.bucket('raw')}/completed/a b.csv (4 B)"
    assert not stages["dead-letter queue"].found


def test_trace_of_a_failed_file_finds_its_dead_letter_and_leaves_it_there(aws, deployed):
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.put_object(Bucket=deployed.bucket("raw"), Key="failed/bad+1.json", Body=b"{")
    put_row(deployed, "incoming/bad+1.json", status="FAILED", attempts=3,
            error="invalid JSON at line 1", updated_at=START.isoformat())
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq = sqs.get_queue_url(QueueName=deployed.dlq)["QueueUrl"]
    body = events.s3_put(deployed.bucket("raw"), "incoming/bad+1.json")
    sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(body))
    sqs.send_message(QueueUrl=dlq, MessageBody="not an S3 event")

    found = trace(aws, deployed, "bad+1.json")  # the incoming prefix is added

    stages = {s.stage: s for s in found.stages}
    assert found.key == "incoming/bad+1.json"
    assert stages["failed"].found and not stages["completed"].found
    assert "error: invalid JSON at line 1" in stages["result"].detail
    assert stages["dead-letter queue"].found
    assert stages["dead-letter queue"].detail.startswith("1 message(s)")
    # released: both messages can be received again at once
    again = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert len(again) == 2


def test_trace_of_an_unknown_file_finds_nothing(aws, deployed):
    assert not trace(aws, deployed, "incoming/nothing.csv").found


# --- events --------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["incoming/my report (v2)+final.csv", "incoming/ü/a&b=c.json",
                                 "incoming/plain.csv"])
def test_s3_put_key_round_trips_through_unquote_plus(key):
    event = events.s3_put("raw", key, size=5, etag="abc")
    encoded = event["Records"][0]["s3"]["object"]["key"]
    assert unquote_plus(encoded) == key
    assert " " not in encoded and "/" in encoded
    assert event["Records"][0]["eventName"] == "ObjectCreated:Put"


def test_sqs_wrapped_event_is_lambdas_sqs_shape():
    inner = events.s3_put("raw", "incoming/a b.csv")
    wrapped = events.sqs_wrap(inner, f"arn:aws:sqs:us-east-1:{ACCOUNT}:q", "us-east-1")
    record = wrapped["Records"][0]
    template = json.loads((EVENTS / "sqs_s3_put.json").read_text())["Records"][0]
    assert set(record) == set(template)
    assert record["eventSourceARN"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:q"
    assert json.loads(record["body"]) == inner
    assert json.loads(record["body"])["Records"][0]["s3"]["object"]["key"] == "incoming/a+b.csv"
