"""processor.lambda_handler when something goes wrong: retried, or done with?

A bad file (or an object that vanished) ends FAILED with its reason and is not
retried; a transient AWS error leaves the file in incoming/ and reports only its
message as a batch item failure; a message that is not an event about an object is
refused at once with one log line (tests/events has every shape).
"""

from __future__ import annotations

import json

import processor

from tests.functional.conftest import PROCESSED, RAW
from tests.functional.s3_faults import fail_calls, s3_answers


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
    restore = fail_calls(processor.s3_client(), "PutObject", "flaky")

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


def test_a_malformed_version_id_fails_the_file_at_once_with_s3s_reason(aws_world):
    # given an event naming a version id S3 cannot parse, which S3 answers with 400
    # InvalidArgument "Invalid version id specified" (moto answers 404 NoSuchVersion)
    key = "incoming/versioned.csv"
    aws_world.upload(key, "a\n1\n")
    message = aws_world.message(key, version_id="not a version id")
    s3_answers(processor.s3_client(), "GetObject", 400, "InvalidArgument",
               "Invalid version id specified")

    # when
    result = processor.lambda_handler(aws_world.event(message), None)

    # then a retry cannot cure it: the message is done with and the row says why
    assert result == {"batchItemFailures": []}
    row = aws_world.row(key)
    assert (row["status"], row["attempts"]) == ("FAILED", 1)
    assert row["error"] == ("refused by AWS, not retried: An error occurred (InvalidArgument) "
                            "when calling the GetObject operation: Invalid version id specified")
    # and the original, never read, stays where it is
    assert aws_world.keys(RAW) == [key]


def test_a_version_id_moto_does_not_know_fails_the_file_at_once_too(aws_world):
    # given the same event against moto itself, which answers 404 NoSuchVersion
    key = "incoming/versioned.csv"
    aws_world.upload(key, "a\n1\n")
    message = aws_world.message(key, version_id="not a version id")

    # when
    result = processor.lambda_handler(aws_world.event(message), None)

    # then that version is gone as far as the processor can tell: FAILED at once
    assert result == {"batchItemFailures": []}
    row = aws_world.row(key)
    assert (row["status"], row["attempts"], row["version_id"]) == ("FAILED", 1,
                                                                   "not a version id")
    # and the reason is that version, not a vanished object: the key is still there
    current = aws_world.s3.head_object(Bucket=RAW, Key=key)["VersionId"]
    assert row["error"] == ("version not a version id of the object does not exist (deleted, "
                            f"or never this key's); its current version is {current}")
    assert aws_world.keys(RAW) == [key]


def test_an_event_for_a_deleted_version_says_which_version_is_current(aws_world):
    # given two uploads of one key, the first version deleted before its event is handled
    key = "incoming/twice.csv"
    first = aws_world.s3.put_object(Bucket=RAW, Key=key, Body=b"a\n1\n")["VersionId"]
    second = aws_world.s3.put_object(Bucket=RAW, Key=key, Body=b"a\n2\n")["VersionId"]
    aws_world.s3.delete_object(Bucket=RAW, Key=key, VersionId=first)

    # when the first version's event arrives
    result = processor.lambda_handler(
        aws_world.event(aws_world.message(key, version_id=first)), None)

    # then it fails at once naming both versions, and the current one is left alone
    assert result == {"batchItemFailures": []}
    row = aws_world.row(key)
    assert (row["status"], row["attempts"]) == ("FAILED", 1)
    assert row["error"] == (f"version {first} of the object does not exist (deleted, or "
                            f"never this key's); its current version is {second}")
    assert aws_world.keys(RAW) == [key]


def test_unrecognized_message_is_refused_at_once_with_one_log_line(aws_world, capsys):
    # given a message that is not an S3 notification
    message = dict(aws_world.message("incoming/x.csv"), body="not json")

    # when
    result = processor.lambda_handler(aws_world.event(message), None)

    # then it is done with now (three receives would not make it readable), and says why
    assert result == {"batchItemFailures": []}
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["status"], line["message"][:40]) for line in lines] == [
        ("REFUSED", "refused: message body is not JSON (Expec")]
    assert aws_world.row("incoming/x.csv") is None
