"""processor idempotency: redelivery, the lease, concurrent attempts, crash recovery, counters.

SQS delivers at least once and may deliver the same notification to two workers at
once; whatever the interleaving, an object gets one output, one row and one count.
"""

from __future__ import annotations

import threading
import time

import processor
from common import results
from common.invocation import Busy

from tests.functional.conftest import PROCESSED, RAW
from tests.functional.s3_faults import fail_calls, slow_calls


def _obj(key: str):
    from common.s3_event import S3Object
    return S3Object(bucket=RAW, key=key, event_name="ObjectCreated:Put")


def _statuses(aws_world) -> dict[str, int]:
    found: dict[str, int] = {}
    for item in aws_world.table.scan(ConsistentRead=True)["Items"]:
        if item["object_key"] != results.COUNTERS_KEY:
            found[item["status"]] = found.get(item["status"], 0) + 1
    return found


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
    restore = fail_calls(processor.s3_client(), "DeleteObject", "half", code="InternalError")
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


def test_two_concurrent_attempts_write_one_output_and_one_row(aws_world, atomic_dynamodb):
    # given one object delivered twice at the same moment (two workers, two messages)
    key = "incoming/race.csv"
    aws_world.upload(key, "a\n1\n2\n")
    settings = processor.Settings.from_env()
    writing = threading.Event()
    slow_calls(processor.s3_client(), "PutObject", 0.5, writing)
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

    # then exactly one did the work; the other is busy until the first one's lease ends
    assert outcomes["first"] is True
    assert isinstance(outcomes["second"], Busy) and not outcomes["second"]
    assert outcomes["second"].until <= time.time() + 900 + processor.LEASE_MARGIN_SECONDS
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
    assert results.claim(aws_world.table, results.row_key(RAW, key), bucket=RAW, kind="csv",
                         version="1.0.0", started_at=results.now_iso(), etag=etag, holder="other",
                         until=int(now) + 60, now=now)
    message = aws_world.message(key)

    # when the message is delivered here
    result = processor.lambda_handler(aws_world.event(message), None)

    # then it is retried later and nothing is written
    assert result == {"batchItemFailures": [{"itemIdentifier": message["messageId"]}]}
    assert aws_world.keys(PROCESSED) == [] and aws_world.keys(RAW) == [key]
    assert aws_world.row(key)["in_progress_by"] == "other"

    # when the other attempt died and its lease expired
    aws_world.table.update_item(Key={"object_key": results.row_key(RAW, key)},
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
    restore = fail_calls(processor.s3_client(), "PutObject", "ctx")

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
    restore = fail_calls(processor.s3_client(), "DeleteObject", "copied", code="InternalError")
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
    restore = fail_calls(processor.s3_client(), "PutObject", "flaky")
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

