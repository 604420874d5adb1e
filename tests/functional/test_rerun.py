"""What a re-run means, at the processor: `pipectl reprocess` messages (S3 notifications
with the marker) on PROCESSED, FAILED and stranded files, twice, and after a crash."""

from __future__ import annotations

import json
import time

import boto3
import processor
import pytest
from processing import outputs

from pipectl.ops.reprocess import Candidate, notification
from tests.functional.conftest import PROCESSED, RAW


def rerun_message(world, key: str, *, version: str, run_id: str = "run1",
                  etag: str | None = None) -> dict:
    """The SQS message `pipectl reprocess` sends for key (built by pipectl itself)."""
    message = world.message(key)
    message["body"] = json.dumps(notification(
        Candidate(key=key, bucket=RAW, status="PROCESSED", size=None, etag=etag, version=None,
                  updated_at=None), run_id, version, "us-east-1"))
    return message


def run(world, *messages) -> dict:
    return processor.lambda_handler(world.event(*messages), None)


def output_key(row: dict) -> str:
    return row["output"].split("/", 3)[3]


@pytest.fixture
def old_version(aws_world, monkeypatch):
    """incoming/a.csv PROCESSED by version 'old', then the processor redeployed as 'new'."""
    monkeypatch.setenv("PROCESSOR_VERSION", "old")
    aws_world.upload("incoming/a.csv", "A,B\n1,2\n")
    assert run(aws_world, aws_world.message("incoming/a.csv")) == {"batchItemFailures": []}
    monkeypatch.setenv("PROCESSOR_VERSION", "new")
    return aws_world


def test_a_processed_file_is_rewritten_in_place_by_the_new_version(old_version):
    world = old_version
    before = world.row("incoming/a.csv")

    # when reprocess targets the new version
    assert run(world, rerun_message(world, "incoming/a.csv", version="new")) == {
        "batchItemFailures": []}

    # then the same output key holds the new version's records; the row says so
    row = world.row("incoming/a.csv")
    assert row["status"] == "PROCESSED" and row["processor_version"] == "new"
    assert row["previous_version"] == "old" and row["attempts"] == 2
    assert row["output"] == before["output"] and row["reprocess_run"] == "run1"
    [line] = world.read(PROCESSED, output_key(row)).splitlines()
    assert json.loads(line)["_metadata"]["processor_version"] == "new"
    assert row["output_etag"] == world.s3.head_object(Bucket=PROCESSED,
                                                      Key=output_key(row))["ETag"]
    # and the original stays in completed/, where it belongs; nothing back in incoming/
    assert world.keys(RAW) == ["completed/a.csv"]
    # and the counters count one PROCESSED file
    counters = world.row("__counters__")
    assert (counters["PROCESSED"], counters.get("PROCESSING", 0)) == (1, 0)


def test_the_same_rerun_twice_does_the_work_once(old_version):
    world = old_version
    message = rerun_message(world, "incoming/a.csv", version="new")
    run(world, message)
    row = world.row("incoming/a.csv")

    # when the same message comes again, and another run targets the same version
    run(world, message)
    run(world, rerun_message(world, "incoming/a.csv", version="new", run_id="run2"))

    # then nothing was attempted again: same row, one new output version
    assert world.row("incoming/a.csv") == row
    assert len(world.versions(PROCESSED, output_key(row))) == 2   # old's and new's


def test_a_failed_file_after_its_limit_was_raised_ends_processed(aws_world, monkeypatch):
    # given a file FAILED on a line limit
    monkeypatch.setenv("MAX_LINE_BYTES", "10")
    aws_world.upload("incoming/long.jsonl", '{"text": "' + "x" * 50 + '"}\n')
    run(aws_world, aws_world.message("incoming/long.jsonl"))
    assert aws_world.row("incoming/long.jsonl")["status"] == "FAILED"
    assert aws_world.keys(RAW) == ["failed/long.jsonl"]

    # when the limit is raised and the file reprocessed
    monkeypatch.delenv("MAX_LINE_BYTES")
    monkeypatch.setenv("PROCESSOR_VERSION", "v2")
    run(aws_world, rerun_message(aws_world, "incoming/long.jsonl", version="v2"))

    # then it is PROCESSED, with one output, and the original moved failed/ -> completed/
    row = aws_world.row("incoming/long.jsonl")
    assert row["status"] == "PROCESSED" and row["processor_version"] == "v2"
    assert row["location"] == "completed/long.jsonl" and "error" not in row
    assert aws_world.keys(RAW) == ["completed/long.jsonl"]
    assert aws_world.keys(PROCESSED) == [output_key(row)]
    counters = aws_world.row("__counters__")
    assert (counters["PROCESSED"], counters["FAILED"]) == (1, 0)


def test_a_stranded_file_is_processed_like_an_upload(aws_world, monkeypatch):
    monkeypatch.setenv("PROCESSOR_VERSION", "v2")
    aws_world.upload("incoming/lost.json", '{"a": 1}')
    run(aws_world, rerun_message(aws_world, "incoming/lost.json", version="v2"))
    row = aws_world.row("incoming/lost.json")
    assert row["status"] == "PROCESSED" and row["processor_version"] == "v2"
    assert aws_world.keys(RAW) == ["completed/lost.json"]


class Killed(BaseException):
    """Stands for the process dying: nothing after it runs, no handler catches it."""


def killed_at(monkeypatch, target, name: str, message: dict, settings, **handling) -> None:
    """processor.handle_message(message), the process dying where it calls target.name
    (patched for this call only)."""

    def die(*args, **kwargs):
        raise Killed

    with monkeypatch.context() as m:
        m.setattr(target, name, die)
        with pytest.raises(Killed):
            processor.handle_message(message, settings, **handling)


def test_a_rerun_killed_after_its_output_loses_and_duplicates_nothing(old_version,
                                                                      monkeypatch):
    world = old_version
    old_row = world.row("incoming/a.csv")
    settings = processor.Settings.from_env()
    message = rerun_message(world, "incoming/a.csv", version="new")

    # given a re-run that dies after writing its output, before the row (its lease ends
    # at once: the invocation's deadline has passed)
    killed_at(monkeypatch, processor.results, "mark_processed", message, settings,
              deadline=time.time() - 10)
    assert world.row("incoming/a.csv")["status"] == "PROCESSING"
    assert world.keys(RAW) == ["completed/a.csv"]          # the original never moved

    # when the message comes back (on another day: a fresh name would be another key)
    monkeypatch.setattr(processor, "_output_key", lambda *a: "processed/2099/01/01/a.csv.jsonl")
    assert processor.handle_message(message, settings) is True

    # then the row is PROCESSED by the new version, the output was not written a third time
    row = world.row("incoming/a.csv")
    assert row["status"] == "PROCESSED" and row["processor_version"] == "new"
    assert row["previous_version"] == "old" and row["output"] == old_row["output"]
    assert len(world.versions(PROCESSED, output_key(row))) == 2
    assert world.keys(PROCESSED) == [output_key(row)]
    assert world.keys(RAW) == ["completed/a.csv"]
    counters = world.row("__counters__")
    assert (counters["PROCESSED"], counters["PROCESSING"]) == (1, 0)


def test_a_failed_rerun_killed_before_its_move_is_finished_by_the_next_delivery(
        aws_world, monkeypatch):
    # given a FAILED file whose re-run wrote the row PROCESSED and died before the move
    monkeypatch.setenv("MAX_LINE_BYTES", "10")
    aws_world.upload("incoming/m.jsonl", '{"text": "' + "x" * 50 + '"}\n')
    run(aws_world, aws_world.message("incoming/m.jsonl"))
    monkeypatch.delenv("MAX_LINE_BYTES")
    monkeypatch.setenv("PROCESSOR_VERSION", "v2")
    settings = processor.Settings.from_env()
    message = rerun_message(aws_world, "incoming/m.jsonl", version="v2")
    killed_at(monkeypatch, processor.storage, "move", message, settings)
    assert aws_world.row("incoming/m.jsonl")["status"] == "PROCESSED"
    assert aws_world.keys(RAW) == ["failed/m.jsonl"]

    # when the message comes back
    assert processor.handle_message(message, settings) is True

    # then the original is in completed/, once
    assert aws_world.keys(RAW) == ["completed/m.jsonl"]
    assert aws_world.row("incoming/m.jsonl")["attempts"] == 2



@pytest.mark.parametrize("sink_key", ["", "n"])
def test_a_rerun_replaces_the_sink_tables_items(aws_world, monkeypatch, sink_key):
    # given a sink (keyed by a field, or by a hash of the record) and a file processed by v1
    key_name = sink_key or "record_id"
    table = boto3.resource("dynamodb").create_table(
        TableName="records", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": key_name, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key_name, "AttributeType": "S"}])
    monkeypatch.setenv("SINK_TABLE", "records")
    monkeypatch.setenv("SINK_KEY", sink_key)
    monkeypatch.setenv("PROCESSOR_VERSION", "v1")
    aws_world.upload("incoming/s.csv", "n,x\n1,a\n2,b\n3,c\n")
    run(aws_world, aws_world.message("incoming/s.csv"))
    assert len(table.scan(ConsistentRead=True)["Items"]) == 3

    # when version 2, whose records differ (a field more), re-runs it
    monkeypatch.setenv("PROCESSOR_VERSION", "v2")
    real = outputs.process_stream

    def v2_stream(*args, accept=None, **kwargs):
        def changed(record):
            record["added_in_v2"] = "yes"
            return accept(record)
        return real(*args, accept=changed if accept else None, **kwargs)

    monkeypatch.setattr(outputs, "process_stream", v2_stream)
    run(aws_world, rerun_message(aws_world, "incoming/s.csv", version="v2"))

    # then the table holds the new records only: replaced, not added beside the old ones
    items = table.scan(ConsistentRead=True)["Items"]
    assert sorted((i["n"], i["added_in_v2"]) for i in items) == [
        ("1", "yes"), ("2", "yes"), ("3", "yes")]
    row = aws_world.row("incoming/s.csv")
    assert (row["sink_items"], row["sink_items_removed"]) == (3, 0 if sink_key else 3)


def test_the_totals_count_a_re_run_files_rejects_once(aws_world, monkeypatch):
    from test_sink import ORDERS, ORDERS_SCHEMA

    # given a file with 2 rejected records, processed by v1
    monkeypatch.setenv("RECORD_SCHEMAS", json.dumps(ORDERS_SCHEMA))
    monkeypatch.setenv("PROCESSOR_VERSION", "v1")
    aws_world.upload("incoming/orders/day1.csv", ORDERS)
    run(aws_world, aws_world.message("incoming/orders/day1.csv"))
    assert aws_world.row("__counters__")["records_rejected"] == 2

    # when v2 re-runs it, twice (the second is refused)
    monkeypatch.setenv("PROCESSOR_VERSION", "v2")
    for _ in range(2):
        run(aws_world, rerun_message(aws_world, "incoming/orders/day1.csv", version="v2"))

    # then the total is still the file's 2, the row says v2
    assert aws_world.row("incoming/orders/day1.csv")["processor_version"] == "v2"
    counters = aws_world.row("__counters__")
    assert (counters["records_rejected"], counters["PROCESSED"]) == (2, 1)


def test_a_rerun_that_rejects_nothing_leaves_no_old_rejects_behind(aws_world, monkeypatch):
    from test_sink import ORDERS, ORDERS_SCHEMA

    # given a file whose v1 (with a schema) rejected 2 records
    monkeypatch.setenv("RECORD_SCHEMAS", json.dumps(ORDERS_SCHEMA))
    monkeypatch.setenv("PROCESSOR_VERSION", "v1")
    aws_world.upload("incoming/orders/day1.csv", ORDERS)
    run(aws_world, aws_world.message("incoming/orders/day1.csv"))
    assert aws_world.row("incoming/orders/day1.csv")["rejects"]
    assert len(aws_world.keys(PROCESSED, "rejects/")) == 1

    # when v2, without the schema, re-runs it
    monkeypatch.delenv("RECORD_SCHEMAS")
    monkeypatch.setenv("PROCESSOR_VERSION", "v2")
    run(aws_world, rerun_message(aws_world, "incoming/orders/day1.csv", version="v2"))

    # then every record is in the output, and neither the row nor the bucket names rejects
    row = aws_world.row("incoming/orders/day1.csv")
    assert (row["status"], row["records_out"]) == ("PROCESSED", 5)
    assert "rejects" not in row and aws_world.keys(PROCESSED, "rejects/") == []
    assert "records_rejected" not in row
    assert aws_world.row("__counters__")["records_rejected"] == 0
