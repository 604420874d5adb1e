"""processor.lambda_handler on each kind of file and message: what it writes, records and moves."""

from __future__ import annotations

import json
from pathlib import Path

import processor
import pytest

from tests.functional.conftest import PROCESSED, RAW

EVENTS = Path(__file__).resolve().parents[1] / "events"


def _day(aws_world, key: str) -> str:
    return aws_world.s3.head_object(Bucket=RAW, Key=key)["LastModified"].strftime("%Y/%m/%d")


def _metadata(row: dict, key: str) -> dict:
    return {"processed_at": row["started_at"], "environment": "test",
            "processor_version": "unversioned", "source": f"s3://{RAW}/{key}"}


def test_csv_file_becomes_json_lines_row_processed_and_original_completed(aws_world):
    # given a CSV with spaced headers and empty values in a sub-folder of incoming/
    key = "incoming/sub/orders 2024.csv"
    etag = aws_world.upload(key, "\ufeffUser Name,Email Address,Age\r\nAnn,ann@x.io,31\r\n"
                                "Bob,,  \r\n,,\r\n")
    day = _day(aws_world, key)

    # when the notification arrives
    result = processor.lambda_handler(aws_world.event(aws_world.message(key)), None)

    # then the output holds one compact line per non-empty record
    assert result == {"batchItemFailures": []}
    row = aws_world.row(key)
    output_key = f"processed/{day}/sub/orders 2024.csv.jsonl"
    meta = _metadata(row, key)
    expected = [{"user_name": "Ann", "email_address": "ann@x.io", "age": "31", "_metadata": meta},
                {"user_name": "Bob", "_metadata": meta}]
    assert aws_world.read(PROCESSED, output_key) == "".join(
        json.dumps(r, separators=(",", ":")) + "\n" for r in expected)
    # and the row says so
    assert row["status"] == "PROCESSED"
    assert (row["records_in"], row["records_out"], row["dropped_values"]) == (3, 2, 5)
    assert row["output"] == f"s3://{PROCESSED}/{output_key}"
    assert row["location"] == "completed/sub/orders 2024.csv"
    assert row["kind"] == "csv" and row["etag"] == etag and row["attempts"] == 1
    assert row["processor_version"] == "unversioned" and "error" not in row
    assert row["updated_at"] == row["finished_at"] >= row["started_at"]
    # and the original moved from incoming/ to completed/
    assert aws_world.keys(RAW) == ["completed/sub/orders 2024.csv"]


def test_json_array_is_normalized_recursively(aws_world):
    # given a JSON array with camelCase, nested objects and nulls
    key = "incoming/users.json"
    aws_world.upload(key, json.dumps([
        {"firstName": "Ann", "HTTPStatus Code": 200, "address": {"Zip-Code": "123", "x": None}},
        {"firstName": None, "tags": [], "note": "   "},
        {"firstName": "Cy", "tags": ["a"]},
    ]))
    day = _day(aws_world, key)

    # when
    result = processor.lambda_handler(aws_world.event(aws_world.message(key)), None)

    # then the emptied record is dropped and the others are snake_cased
    assert result["batchItemFailures"] == []
    row = aws_world.row(key)
    lines = aws_world.read(PROCESSED, f"processed/{day}/users.json.jsonl").splitlines()
    meta = _metadata(row, key)
    assert [json.loads(line) for line in lines] == [
        {"first_name": "Ann", "http_status_code": 200, "address": {"zip_code": "123"},
         "_metadata": meta},
        {"first_name": "Cy", "tags": ["a"], "_metadata": meta},
    ]
    assert (row["status"], row["records_in"], row["records_out"], row["dropped_values"]) == \
        ("PROCESSED", 3, 2, 4)
    assert aws_world.keys(RAW) == ["completed/users.json"]


@pytest.mark.parametrize("name, body, kind, expected", [
    ("events.jsonl", '{"Event Type": "click"}\n\n{"Event Type": null}\n', "json",
     [{"event_type": "click"}]),
    ("notes.txt", "hello world\nbye\n", "text",
     [{"lines": 2, "words": 3, "characters": 16, "bytes": 16, "blank_lines": 0,
       "longest_line": 11}]),
])
def test_json_lines_and_text_files(aws_world, name, body, kind, expected):
    # given
    key = f"incoming/{name}"
    aws_world.upload(key, body)
    day = _day(aws_world, key)

    # when
    result = processor.lambda_handler(aws_world.event(aws_world.message(key)), None)

    # then
    assert result == {"batchItemFailures": []}
    row = aws_world.row(key)
    lines = aws_world.read(PROCESSED, f"processed/{day}/{name}.jsonl").splitlines()
    assert [json.loads(line) for line in lines] == [dict(r, _metadata=_metadata(row, key))
                                                    for r in expected]
    assert (row["status"], row["kind"]) == ("PROCESSED", kind)


def test_s3_test_event_is_skipped(aws_world):
    # given the message S3 sends when notifications are configured
    event = json.loads((EVENTS / "sqs_s3_test_event.json").read_text())

    # when
    result = processor.lambda_handler(event, None)

    # then it succeeds and touches nothing
    assert result == {"batchItemFailures": []}
    assert aws_world.table.scan()["Items"] == []


def test_key_outside_incoming_is_skipped(aws_world):
    # given an object under another prefix
    aws_world.upload("other/x.csv", "a\n1\n")

    # when
    result = processor.lambda_handler(aws_world.event(aws_world.message("other/x.csv")), None)

    # then nothing is processed or moved
    assert result == {"batchItemFailures": []}
    assert aws_world.keys(RAW) == ["other/x.csv"] and aws_world.table.scan()["Items"] == []


@pytest.mark.parametrize("encode_slash", [False, True], ids=["aws", "moto-encodes-slash"])
def test_url_encoded_awkward_key_is_decoded_once(aws_world, encode_slash):
    # given a key with a space, a plus and parentheses, encoded the way S3 (or moto) does
    key = "incoming/my file+(1).csv"
    aws_world.upload(key, "Name\nann\n")
    message = aws_world.message(key, encode_slash=encode_slash)
    assert "my+file%2B%281%29.csv" in message["body"]

    # when
    result = processor.lambda_handler(aws_world.event(message), None)

    # then the row, output and move all use the real key
    assert result == {"batchItemFailures": []}
    day = _day(aws_world, "completed/my file+(1).csv")
    assert aws_world.row(key)["status"] == "PROCESSED"
    assert aws_world.keys(PROCESSED) == [f"processed/{day}/my file+(1).csv.jsonl"]
    assert aws_world.keys(RAW) == ["completed/my file+(1).csv"]


def test_one_json_log_line_per_object(aws_world, capsys):
    # given
    aws_world.upload("incoming/log.csv", "a\n1\n2\n")

    # when
    processor.lambda_handler(aws_world.event(aws_world.message("incoming/log.csv")), None)

    # then stdout has one structured line with the counts
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 1
    assert {k: lines[0][k] for k in ("level", "key", "status", "records_in", "records_out",
                                     "error")} == {
        "level": "INFO", "key": "incoming/log.csv", "status": "PROCESSED", "records_in": 2,
        "records_out": 2, "error": None}
    assert isinstance(lines[0]["duration_ms"], int)

