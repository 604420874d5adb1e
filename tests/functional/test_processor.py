"""processor.lambda_handler end to end against moto: SQS event in, output, row and move out."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import processor
import pytest
import results
import storage
from botocore.exceptions import ClientError

EVENTS = Path(__file__).resolve().parents[1] / "events"
# The buckets tests/functional/conftest.py creates.
RAW, PROCESSED = "raw-bucket", "processed-bucket"


def _day(aws_world, key: str) -> str:
    return aws_world.s3.head_object(Bucket=RAW, Key=key)["LastModified"].strftime("%Y/%m/%d")


def _metadata(row: dict, key: str) -> dict:
    return {"processed_at": row["started_at"], "environment": "test",
            "processor_version": "1.0.0", "source": f"s3://{RAW}/{key}"}


def _fail_calls(s3_client, operation: str, key_part: str, code: str = "SlowDown"):
    """Make the processor's S3 client fail `operation` for keys containing `key_part`."""

    def fail(params, **_):
        if key_part in params.get("Key", ""):
            raise ClientError({"Error": {"Code": code, "Message": "Please reduce your rate"}},
                              operation)

    s3_client.meta.events.register(f"before-parameter-build.s3.{operation}", fail)
    return lambda: s3_client.meta.events.unregister(
        f"before-parameter-build.s3.{operation}", fail)


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
    output_key = f"processed/{day}/sub/orders 2024.jsonl"
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
    assert row["processor_version"] == "1.0.0" and "error" not in row
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
    lines = aws_world.read(PROCESSED, f"processed/{day}/users.jsonl").splitlines()
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
    stem = name.rsplit(".", 1)[0]
    lines = aws_world.read(PROCESSED, f"processed/{day}/{stem}.jsonl").splitlines()
    assert [json.loads(line) for line in lines] == [dict(r, _metadata=_metadata(row, key))
                                                    for r in expected]
    assert (row["status"], row["kind"]) == ("PROCESSED", kind)


def test_malformed_file_fails_permanently_with_reason_and_moves_to_failed(aws_world):
    # given a JSON file with a syntax error on line 3
    key = "incoming/bad.json"
    aws_world.upload(key, '[{"a": 1},\n {"b": 2},\n {"c": }]')
    message = aws_world.message(key)

    # when
    result = processor.lambda_handler(aws_world.event(message), None)

    # then the message is done with (not retried), the row says why, the original is in failed/
    assert result == {"batchItemFailures": []}
    row = aws_world.row(key)
    assert row["status"] == "FAILED"
    assert row["error"] == "line 3: invalid JSON: Expecting value"
    assert row["location"] == "failed/bad.json" and row["attempts"] == 1
    assert aws_world.keys(RAW) == ["failed/bad.json"]
    assert aws_world.keys(PROCESSED) == []


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
    assert aws_world.keys(PROCESSED) == [f"processed/{day}/my file+(1).jsonl"]
    assert aws_world.keys(RAW) == ["completed/my file+(1).csv"]


def test_missing_processed_bucket_is_transient_and_neighbour_still_succeeds(aws_world):
    # given a good file whose output cannot be written, next to a malformed file
    aws_world.s3.delete_bucket(Bucket=PROCESSED)
    aws_world.upload("incoming/good.csv", "a\n1\n")
    aws_world.upload("incoming/bad.csv", "a\n1,2\n")
    good, bad = aws_world.message("incoming/good.csv"), aws_world.message("incoming/bad.csv")

    # when both arrive in one batch
    result = processor.lambda_handler(aws_world.event(good, bad), None)

    # then only the good file's message is retried; it stays in incoming/ with the error noted
    assert result == {"batchItemFailures": [{"itemIdentifier": good["messageId"]}]}
    row = aws_world.row("incoming/good.csv")
    assert row["status"] == "PROCESSING" and row["attempts"] == 1
    assert "NoSuchBucket" in row["last_error"]
    # and the neighbour finished: FAILED with its reason, moved to failed/
    bad_row = aws_world.row("incoming/bad.csv")
    assert bad_row["status"] == "FAILED"
    assert bad_row["error"] == "line 2: 2 fields but the header has 1"
    assert aws_world.keys(RAW) == ["failed/bad.csv", "incoming/good.csv"]


def test_throttled_write_is_retried_and_the_retry_succeeds(aws_world):
    # given two good files, one of whose output writes is throttled
    aws_world.upload("incoming/flaky.csv", "a\n1\n")
    aws_world.upload("incoming/fine.csv", "a\n2\n")
    flaky, fine = aws_world.message("incoming/flaky.csv"), aws_world.message("incoming/fine.csv")
    restore = _fail_calls(processor.s3_client(), "PutObject", "flaky")

    # when both arrive in one batch
    result = processor.lambda_handler(aws_world.event(flaky, fine), None)

    # then only the throttled one is reported; its neighbour is fully processed
    assert result == {"batchItemFailures": [{"itemIdentifier": flaky["messageId"]}]}
    assert aws_world.row("incoming/fine.csv")["status"] == "PROCESSED"
    assert "SlowDown" in aws_world.row("incoming/flaky.csv")["last_error"]

    # when SQS redelivers after the throttling ends
    restore()
    result = processor.lambda_handler(aws_world.event(flaky), None)

    # then it is processed, and the row counts both attempts
    assert result == {"batchItemFailures": []}
    row = aws_world.row("incoming/flaky.csv")
    assert (row["status"], row["attempts"], row["records_out"]) == ("PROCESSED", 2, 1)
    assert aws_world.keys(RAW) == ["completed/fine.csv", "completed/flaky.csv"]


def test_duplicate_delivery_after_success_is_a_no_op(aws_world):
    # given a file already processed
    key = "incoming/once.csv"
    aws_world.upload(key, "a\n1\n")
    message = aws_world.message(key)
    assert processor.lambda_handler(aws_world.event(message), None) == {"batchItemFailures": []}
    before = aws_world.row(key)

    # when the same notification is delivered again
    result = processor.lambda_handler(aws_world.event(message), None)

    # then it succeeds without a second output version or any change to the row
    assert result == {"batchItemFailures": []}
    assert len(aws_world.versions(PROCESSED, "processed/")) == 1
    assert aws_world.row(key) == before
    assert aws_world.keys(RAW) == ["completed/once.csv"]


def test_duplicate_delivery_after_failure_keeps_the_reason(aws_world):
    # given a malformed file already failed and moved to failed/
    key = "incoming/twice.csv"
    aws_world.upload(key, "a\n1,2\n")
    message = aws_world.message(key)
    processor.lambda_handler(aws_world.event(message), None)
    before = aws_world.row(key)

    # when the notification is delivered again
    result = processor.lambda_handler(aws_world.event(message), None)

    # then nothing changes: the reason is not replaced by "object vanished"
    assert result == {"batchItemFailures": []}
    assert aws_world.row(key) == before and before["status"] == "FAILED"
    assert aws_world.keys(RAW) == ["failed/twice.csv"]


def test_crash_before_the_move_is_finished_without_a_second_output(aws_world):
    # given a run whose output and row were written but whose original could not be deleted
    key = "incoming/half.csv"
    aws_world.upload(key, "a\n1\n")
    message = aws_world.message(key)
    restore = _fail_calls(processor.s3_client(), "DeleteObject", "half", code="InternalError")
    first = processor.lambda_handler(aws_world.event(message), None)
    restore()
    assert first == {"batchItemFailures": [{"itemIdentifier": message["messageId"]}]}
    assert aws_world.row(key)["status"] == "PROCESSED"
    assert "incoming/half.csv" in aws_world.keys(RAW)

    # when the message is redelivered
    result = processor.lambda_handler(aws_world.event(message), None)

    # then the move is finished and the output is not written again
    assert result == {"batchItemFailures": []}
    assert aws_world.keys(RAW) == ["completed/half.csv"]
    assert len(aws_world.versions(PROCESSED, "processed/")) == 1
    assert aws_world.row(key)["status"] == "PROCESSED"


def test_object_that_vanished_before_processing_fails_permanently(aws_world):
    # given a notification for an object that is no longer there (and was never processed)
    message = aws_world.message("incoming/ghost.csv")

    # when
    result = processor.lambda_handler(aws_world.event(message), None)

    # then the row explains it and the message is not retried
    assert result == {"batchItemFailures": []}
    row = aws_world.row("incoming/ghost.csv")
    assert row["status"] == "FAILED" and row["attempts"] == 1
    assert row["error"] == "object vanished from incoming/ before it was processed"


def test_unrecognized_message_goes_to_the_dead_letter_queue(aws_world):
    # given a message that is not an S3 notification
    message = dict(aws_world.message("incoming/x.csv"), body="not json")

    # when
    result = processor.lambda_handler(aws_world.event(message), None)

    # then it is reported failed, so SQS eventually dead-letters it instead of dropping it
    assert result == {"batchItemFailures": [{"itemIdentifier": message["messageId"]}]}


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


def test_object_writer_streams_multipart_and_verifies(aws_world, monkeypatch):
    # given tiny parts (moto's 5 MiB part minimum lowered to match)
    monkeypatch.setattr(storage, "PART_SIZE", 1024)
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 256)
    writer = storage.ObjectWriter(aws_world.s3, PROCESSED, "processed/big.jsonl")
    chunks = [(b"%05d\n" % i) * 50 for i in range(40)]

    # when
    for chunk in chunks:
        writer.write(chunk)
    writer.close()

    # then the object is the concatenation, uploaded in parts
    head = aws_world.s3.head_object(Bucket=PROCESSED, Key="processed/big.jsonl")
    assert head["ETag"].endswith('-12"')
    assert aws_world.read(PROCESSED, "processed/big.jsonl") == b"".join(chunks).decode()


def test_object_writer_abort_leaves_no_upload_behind(aws_world, monkeypatch):
    # given a multipart upload in progress
    monkeypatch.setattr(storage, "PART_SIZE", 1024)
    writer = storage.ObjectWriter(aws_world.s3, PROCESSED, "processed/partial.jsonl")
    writer.write(b"x" * 3000)
    assert aws_world.s3.list_multipart_uploads(Bucket=PROCESSED).get("Uploads")

    # when
    writer.abort()

    # then
    assert not aws_world.s3.list_multipart_uploads(Bucket=PROCESSED).get("Uploads")
    assert aws_world.keys(PROCESSED) == []


# --- idempotency: the lease, concurrency, crash recovery, counters ----------------------

def _obj(key: str):
    from s3_event import S3Object
    return S3Object(bucket=RAW, key=key, event_name="ObjectCreated:Put")


def _statuses(aws_world) -> dict[str, int]:
    found: dict[str, int] = {}
    for item in aws_world.table.scan(ConsistentRead=True)["Items"]:
        if item["object_key"] != results.COUNTERS_KEY:
            found[item["status"]] = found.get(item["status"], 0) + 1
    return found


@pytest.fixture
def atomic_dynamodb(monkeypatch):
    """DynamoDB's guarantee that moto lacks: each write and transaction is atomic.

    moto applies a transaction without a lock (and on a failed condition restores a
    whole-table snapshot, undoing other threads' writes), so concurrent attempts under
    mock_aws would race inside the emulator, not in the processor.
    """
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("transact_write_items", "update_item", "put_item", "get_item",
                 "delete_item"):
        original = getattr(DynamoDBBackend, name)

        def locked(self, *args, _original=original, **kwargs):
            with lock:
                return _original(self, *args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


def _slow_calls(s3_client, operation: str, seconds: float, started: threading.Event):
    def slow(params, **_):
        started.set()
        time.sleep(seconds)   # holds the winner mid-write while the other attempt arrives

    s3_client.meta.events.register(f"before-parameter-build.s3.{operation}", slow)


def test_two_concurrent_attempts_write_one_output_and_one_row(aws_world, atomic_dynamodb):
    # given one object delivered twice at the same moment (two workers, two messages)
    key = "incoming/race.csv"
    aws_world.upload(key, "a\n1\n2\n")
    settings = processor.Settings.from_env()
    writing = threading.Event()
    _slow_calls(processor.s3_client(), "PutObject", 0.5, writing)
    outcomes: dict[str, bool] = {}

    def attempt(name: str) -> None:
        outcomes[name] = processor.process_object(_obj(key), settings, message_id=name)

    # when both run, the second starting while the first is writing its output
    first = threading.Thread(target=attempt, args=("first",))
    first.start()
    assert writing.wait(10)
    second = threading.Thread(target=attempt, args=("second",))
    second.start()
    first.join(30)
    second.join(30)

    # then exactly one did the work; the other reports a batch item failure
    assert outcomes == {"first": True, "second": False}
    assert len(aws_world.versions(PROCESSED, "processed/")) == 1
    row = aws_world.row(key)
    assert row["status"] == "PROCESSED" and row["records_out"] == 2 and row["attempts"] == 1
    assert "in_progress_until" not in row and "in_progress_by" not in row
    assert results.counters(aws_world.table)["PROCESSED"] == 1
    assert results.counters(aws_world.table)["PROCESSING"] == 0

    # and when the loser's message comes back, it finds the work done
    assert processor.process_object(_obj(key), settings, message_id="second") is True
    assert len(aws_world.versions(PROCESSED, "processed/")) == 1
    assert aws_world.keys(RAW) == ["completed/race.csv"]


def test_many_simultaneous_attempts_still_write_once(aws_world, atomic_dynamodb):
    # given one object and eight attempts released together
    key = "incoming/herd.csv"
    aws_world.upload(key, "a\n1\n")
    settings = processor.Settings.from_env()
    processor.s3_client(), processor.results_table(settings.results_table)   # warm the cache
    gate = threading.Barrier(8)
    outcomes = []

    def attempt(i: int) -> None:
        gate.wait()
        outcomes.append(processor.process_object(_obj(key), settings, message_id=f"m{i}"))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)

    # then at least one succeeded, and there is one output, one row, one count
    assert len(outcomes) == 8 and any(outcomes)
    assert len(aws_world.versions(PROCESSED, "processed/")) == 1
    assert aws_world.row(key)["status"] == "PROCESSED"
    assert results.counters(aws_world.table) == {"PROCESSING": 0, "PROCESSED": 1, "FAILED": 0,
                                                 "ARCHIVED": 0}
    assert aws_world.keys(RAW, "incoming/") == []


def test_a_live_lease_makes_the_message_retry_and_an_expired_one_is_taken_over(aws_world):
    # given an attempt elsewhere that claimed the object and is still within its timeout
    key = "incoming/leased.csv"
    etag = aws_world.upload(key, "a\n1\n")
    now = time.time()
    assert results.claim(aws_world.table, key, bucket=RAW, kind="csv", version="1.0.0",
                         started_at=results.now_iso(), etag=etag, holder="other",
                         until=int(now) + 60, now=now)
    message = aws_world.message(key)

    # when the message is delivered here
    result = processor.lambda_handler(aws_world.event(message), None)

    # then it is retried later and nothing is written
    assert result == {"batchItemFailures": [{"itemIdentifier": message["messageId"]}]}
    assert aws_world.keys(PROCESSED) == [] and aws_world.keys(RAW) == [key]
    assert aws_world.row(key)["in_progress_by"] == "other"

    # when the other attempt died and its lease expired
    aws_world.table.update_item(Key={"object_key": key},
                                UpdateExpression="SET in_progress_until = :past",
                                ExpressionAttributeValues={":past": int(now) - 1})
    result = processor.lambda_handler(aws_world.event(message), None)

    # then this attempt takes over and finishes; the row counts both attempts
    assert result == {"batchItemFailures": []}
    row = aws_world.row(key)
    assert (row["status"], row["attempts"]) == ("PROCESSED", 2)
    assert results.counters(aws_world.table)["PROCESSED"] == 1
    assert results.counters(aws_world.table)["PROCESSING"] == 0


def test_the_lease_lasts_as_long_as_the_invocation_may(aws_world):
    # given a Lambda context with 30 s left
    key = "incoming/ctx.csv"
    aws_world.upload(key, "a\n1\n")
    restore = _fail_calls(processor.s3_client(), "PutObject", "ctx")

    class Context:
        aws_request_id = "req-1"

        @staticmethod
        def get_remaining_time_in_millis():
            return 30_000

    # when the attempt fails transiently
    before = time.time()
    processor.lambda_handler(aws_world.event(aws_world.message(key)), Context())
    restore()

    # then the lease was released at once (a retry need not wait for it) ...
    assert "in_progress_until" not in aws_world.row(key)
    # ... and a claim made with that context expires with the invocation
    deadline = processor.invocation_deadline(Context())
    assert before + 29 <= deadline <= time.time() + 30


def test_crash_after_the_output_before_the_row_does_not_write_a_second_version(
        aws_world, monkeypatch):
    # given an attempt that wrote its output and then died before recording it
    key = "incoming/crash.csv"
    aws_world.upload(key, "a\n1\n2\n")
    message = aws_world.message(key)
    real = results.mark_processed

    def crash(*args, **kwargs):
        raise ConnectionError("the function died here")

    monkeypatch.setattr(results, "mark_processed", crash)
    assert processor.lambda_handler(aws_world.event(message), None)["batchItemFailures"]
    assert len(aws_world.versions(PROCESSED, "processed/")) == 1

    # when the message comes back
    monkeypatch.setattr(results, "mark_processed", real)
    result = processor.lambda_handler(aws_world.event(message), None)

    # then the existing output is kept (one version), and the row has the real counts
    assert result == {"batchItemFailures": []}
    assert len(aws_world.versions(PROCESSED, "processed/")) == 1
    row = aws_world.row(key)
    assert (row["status"], row["records_in"], row["records_out"], row["attempts"]) == \
        ("PROCESSED", 2, 2, 2)
    assert aws_world.keys(RAW) == ["completed/crash.csv"]


def test_crash_after_the_copy_before_the_delete_keeps_one_copy(aws_world):
    # given an attempt whose copy to completed/ landed but whose delete failed
    key = "incoming/copied.csv"
    aws_world.upload(key, "a\n1\n")
    message = aws_world.message(key)
    restore = _fail_calls(processor.s3_client(), "DeleteObject", "copied", code="InternalError")
    assert processor.lambda_handler(aws_world.event(message), None)["batchItemFailures"]
    restore()

    # when the message comes back
    assert processor.lambda_handler(aws_world.event(message), None) == {"batchItemFailures": []}

    # then completed/ has one version, not a second copy
    assert aws_world.keys(RAW) == ["completed/copied.csv"]
    assert len(aws_world.versions(RAW, "completed/")) == 1


def test_same_key_uploaded_again_is_processed_again(aws_world):
    # given a processed file whose key is uploaded again with new content
    key = "incoming/again.csv"
    aws_world.upload(key, "a\n1\n")
    processor.lambda_handler(aws_world.event(aws_world.message(key)), None)
    aws_world.upload(key, "a\n1\n2\n")

    # when the new upload's notification arrives
    result = processor.lambda_handler(aws_world.event(aws_world.message(key)), None)

    # then the new version is processed (a different object version is not a duplicate)
    assert result == {"batchItemFailures": []}
    row = aws_world.row(key)
    assert (row["status"], row["records_out"], row["attempts"]) == ("PROCESSED", 2, 2)
    assert results.counters(aws_world.table)["PROCESSED"] == 1


def test_counters_match_the_rows_after_a_mixed_batch(aws_world):
    # given files that end processed, failed, duplicated, vanished and retried
    for name, body in {"good.csv": "a\n1\n", "bad.csv": "a\n1,2\n", "flaky.csv": "a\n3\n",
                       "bad.json": "[", "nested.json": '{"a": {"b": 1}}'}.items():
        aws_world.upload(f"incoming/{name}", body)
    messages = {name: aws_world.message(f"incoming/{name}")
                for name in ("good.csv", "bad.csv", "flaky.csv", "bad.json", "nested.json",
                             "ghost.csv")}
    restore = _fail_calls(processor.s3_client(), "PutObject", "flaky")
    first = processor.lambda_handler(aws_world.event(*messages.values()), None)
    assert first["batchItemFailures"] == [{"itemIdentifier": messages["flaky.csv"]["messageId"]}]
    assert results.counters(aws_world.table)["PROCESSING"] == 1
    restore()

    # when the retry and duplicate deliveries arrive
    again = [messages["flaky.csv"], messages["good.csv"], messages["bad.csv"],
             aws_world.message("incoming/good.csv")]
    assert processor.lambda_handler(aws_world.event(*again), None) == {"batchItemFailures": []}

    # then the counters item equals the number of rows in each status
    assert _statuses(aws_world) == {"PROCESSED": 3, "FAILED": 3}
    assert results.counters(aws_world.table) == {"PROCESSING": 0, "PROCESSED": 3, "FAILED": 3,
                                                 "ARCHIVED": 0}


def test_the_same_bytes_uploaded_again_after_a_failure_are_tried_again(aws_world, monkeypatch):
    # given a file that failed on a limit
    key = "incoming/wide.csv"
    aws_world.upload(key, "a,b,c\n1,2,3\n")
    monkeypatch.setenv("MAX_COLUMNS", "2")
    processor.lambda_handler(aws_world.event(aws_world.message(key)), None)
    assert aws_world.row(key)["status"] == "FAILED"

    # when the operator raises the limit and uploads the very same bytes again
    monkeypatch.setenv("MAX_COLUMNS", "3")
    aws_world.upload(key, "a,b,c\n1,2,3\n")
    result = processor.lambda_handler(aws_world.event(aws_world.message(key)), None)

    # then it is processed this time, and the counters moved FAILED -> PROCESSED
    assert result == {"batchItemFailures": []}
    row = aws_world.row(key)
    assert (row["status"], row["attempts"], row["records_out"]) == ("PROCESSED", 2, 1)
    assert "error" not in row
    assert results.counters(aws_world.table)["FAILED"] == 0
    assert results.counters(aws_world.table)["PROCESSED"] == 1
