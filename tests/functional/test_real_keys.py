"""Any key S3 accepts is a valid file (issue 19 item 1): unicode, spaces, +, %, #, very
long, deep. Metadata carries only ASCII, and a request botocore refuses is never retried."""

from __future__ import annotations

import json

import processor
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, ParamValidationError
from common import failures, user_metadata
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from processing import outputs

from tests.functional.conftest import PROCESSED, RAW

NON_ASCII = ["incoming/café.csv", "incoming/ünïcødé/données.json", "incoming/日本語 レポート.csv",
             "incoming/emoji 🎉 + 100%#1.jsonl"]
BODIES = {".csv": "name,city\nAda,Zürich\n", ".json": '{"name": "Ada", "city": "Zürich"}',
          ".jsonl": '{"name": "Ada", "city": "Zürich"}\n'}

# Any Unicode but surrogates (not UTF-8) and control characters (S3 accepts them, but its
# XML listings cannot carry most of them), with the characters that break encodings.
_CHAR = st.one_of(st.characters(blacklist_categories=("Cs", "Cc")),
                  st.sampled_from(" +%#?&=~!*'()[]{}<>\\\"^`|@$,;:"))
_SEGMENT = st.text(_CHAR, min_size=1, max_size=40).filter(lambda s: s not in (".", ".."))


# The output key is the source's path plus "processed/YYYY/MM/DD/" and ".jsonl": 18 bytes
# longer than "incoming/<path>", and S3 keys hold 1,024 bytes.
ROOM = 1024 - 18


@st.composite
def s3_keys(draw) -> str:
    """incoming/<up to 12 folders>/<name>.csv, long enough to leave only the output room."""
    folders = draw(st.lists(_SEGMENT, max_size=12))
    name = draw(st.one_of(_SEGMENT, st.text(_CHAR, min_size=200, max_size=400)))
    key = "incoming/" + "".join(f + "/" for f in folders) + name + ".csv"
    while len(key.encode()) > ROOM:
        key = "incoming/" + key[len("incoming/") + 1:]
    return key


def _processed_once(world, key: str) -> dict:
    message = world.message(key)
    assert processor.lambda_handler(world.event(message), None) == {"batchItemFailures": []}
    row = world.row(key)
    assert (row["status"], row["attempts"]) == ("PROCESSED", 1), row.get("error")
    return row


def _output_key(row: dict) -> str:
    return row["output"].split("/", 3)[3]


@pytest.mark.parametrize("key", NON_ASCII)
def test_a_non_ascii_name_is_processed_and_its_output_names_the_source(aws_world, key):
    # given an upload whose name is not ASCII
    suffix = "." + key.rsplit(".", 1)[1]
    aws_world.upload(key, BODIES[suffix])

    # when its notification arrives, then it is processed in one attempt
    row = _processed_once(aws_world, key)

    # and the original moved, the output carries the record and the decodable source
    assert aws_world.keys(RAW) == ["completed/" + key[len("incoming/"):]]
    output = _output_key(row)
    found = aws_world.s3.head_object(Bucket=PROCESSED, Key=output)
    assert all(v.isascii() for v in found["Metadata"].values())
    assert user_metadata.decode_all(found["Metadata"])["source"] == f"s3://{RAW}/{key}"
    record = json.loads(aws_world.read(PROCESSED, output))
    assert record["city"] == "Zürich" and record["_metadata"]["source"] == f"s3://{RAW}/{key}"


@settings(max_examples=50, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(key=s3_keys())
def test_any_key_s3_accepts_goes_through_the_event_the_processor_and_the_move(aws_world, key):
    # given any key S3 accepts, uploaded and announced URL-encoded as S3 does
    aws_world.upload(key, "a,b\n1,2\n")

    # when the processor handles it, then one attempt processes it
    row = _processed_once(aws_world, key)

    # and the original is in completed/ under its own name, nothing is left in incoming/
    completed = "completed/" + key[len("incoming/"):]
    assert aws_world.s3.head_object(Bucket=RAW, Key=completed)["ContentLength"] == 8
    assert aws_world.keys(RAW, "incoming/") == []
    found = aws_world.s3.head_object(Bucket=PROCESSED, Key=_output_key(row))
    assert user_metadata.decode_all(found["Metadata"])["source"] == f"s3://{RAW}/{key}"
    aws_world.s3.delete_object(Bucket=RAW, Key=completed)


@settings(max_examples=300, deadline=None)
@given(value=st.text(st.characters(blacklist_categories=("Cs",))))
def test_metadata_encoding_is_ascii_and_decodes_to_the_original(value):
    encoded = user_metadata.encode(value)
    assert all(" " <= c <= "~" for c in encoded)
    assert user_metadata.decode(encoded) == value


@pytest.mark.parametrize("value, expected", [
    # S3 returns non-ASCII metadata set over REST as RFC 2047 encoded-words, B or Q
    # (docs.aws.amazon.com/AmazonS3/latest/userguide/UsingMetadata.html).
    ("=?UTF-8?B?Y2Fmw6k=?=", "café"),
    ("=?UTF-8?Q?caf=C3=A9?=", "café"),
    ("=?utf-8?b?5pel5pys?= =?utf-8?b?6Kqe?=", "日本語"),
    ("s3://raw/incoming/plain.csv", "s3://raw/incoming/plain.csv"),
    ("=?UTF-8?B?not base64!?=", "=?UTF-8?B?not base64!?="),
])
def test_metadata_decoding_reads_s3s_own_encoded_words(value, expected):
    assert user_metadata.decode(value) == expected


def test_an_ascii_value_that_looks_encoded_survives_the_round_trip():
    looks_encoded = "incoming/=?UTF-8?B?Y2Fmw6k=?=.csv"
    assert user_metadata.encode(looks_encoded) != looks_encoded
    assert user_metadata.decode(user_metadata.encode(looks_encoded)) == looks_encoded


def test_a_name_too_long_for_its_output_key_fails_with_the_reason(aws_world):
    # given a name S3 accepts, with no room left for "processed/<day>/" and ".jsonl"
    key = "incoming/" + "é" * 500 + ".csv"            # 1,013 bytes
    aws_world.upload(key, "a\n1\n")

    result = processor.lambda_handler(aws_world.event(aws_world.message(key)), None)

    assert result == {"batchItemFailures": []}
    row = aws_world.row(key)
    assert (row["status"], row["attempts"]) == ("FAILED", 1)
    assert row["error"].startswith("the name is too long to process: 'processed/")
    assert row["error"].endswith("would be 1031 bytes, and S3 keys hold at most 1024")
    assert aws_world.keys(RAW) == ["failed/" + key.removeprefix("incoming/")]


def test_a_request_botocore_refuses_is_failed_at_once_not_retried(aws_world, monkeypatch):
    # given the old bug back: metadata written unencoded, which botocore refuses client-side
    monkeypatch.setattr(user_metadata, "encode_all", lambda metadata: dict(metadata))
    key = "incoming/café.csv"
    aws_world.upload(key, "a\n1\n")

    # when the processor handles it
    result = processor.lambda_handler(aws_world.event(aws_world.message(key)), None)

    # then it is FAILED in one attempt with the reason, not left to retry for 18 minutes
    assert result == {"batchItemFailures": []}
    row = aws_world.row(key)
    assert (row["status"], row["attempts"]) == ("FAILED", 1)
    assert row["error"].startswith("not retried (a bug or an invalid request, "
                                   "ParamValidationError): Parameter validation failed:")
    assert "Non ascii characters found in S3 metadata" in row["error"]
    assert aws_world.keys(RAW) == ["failed/café.csv"]
    assert aws_world.keys(PROCESSED) == []


def test_a_programming_error_is_failed_at_once_with_the_reason(aws_world, monkeypatch):
    # given a handler bug that raises on every attempt
    def broken(*args, **kwargs):
        raise TypeError("unsupported operand type(s) for +: 'int' and 'str'")
    monkeypatch.setattr(outputs, "process_stream", broken)
    aws_world.upload("incoming/orders.csv", "a\n1\n")

    result = processor.lambda_handler(aws_world.event(aws_world.message("incoming/orders.csv")),
                                      None)

    assert result == {"batchItemFailures": []}
    row = aws_world.row("incoming/orders.csv")
    assert (row["status"], row["attempts"]) == ("FAILED", 1)
    assert row["error"] == ("not retried (a bug or an invalid request, TypeError): "
                            "unsupported operand type(s) for +: 'int' and 'str'")
    assert aws_world.keys(RAW) == ["failed/orders.csv"]


def test_a_bug_before_the_file_is_read_fails_the_row_and_leaves_the_original(aws_world,
                                                                             monkeypatch):
    monkeypatch.setattr(processor.storage, "open_object",
                        lambda *a, **k: (_ for _ in ()).throw(KeyError("ContentLength")))
    aws_world.upload("incoming/orders.csv", "a\n1\n")

    result = processor.lambda_handler(aws_world.event(aws_world.message("incoming/orders.csv")),
                                      None)

    assert result == {"batchItemFailures": []}
    row = aws_world.row("incoming/orders.csv")
    assert (row["status"], row["attempts"]) == ("FAILED", 1)
    assert "KeyError" in row["error"] and "ContentLength" in row["error"]
    assert aws_world.keys(RAW) == ["incoming/orders.csv"]     # nothing is lost


def _client_error(code: str, status: int) -> ClientError:
    # The parsed shape of an AWS error response (docs.aws.amazon.com/AmazonS3/latest/API/
    # ErrorResponses.html): Error.Code / Error.Message, and the HTTP status.
    return ClientError({"Error": {"Code": code, "Message": "m"},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


@pytest.mark.parametrize("exc, transient", [
    (_client_error("SlowDown", 503), True),
    (_client_error("ThrottlingException", 400), True),
    (_client_error("ProvisionedThroughputExceededException", 400), True),
    (_client_error("InternalError", 500), True),
    # a 400 that a retry cures: the connection idled past S3's timeout
    (_client_error("RequestTimeout", 400), True),
    # a 400 that it never cures: a malformed VersionId, "Invalid version id specified"
    (_client_error("InvalidArgument", 400), False),
    (_client_error("NoSuchBucket", 404), True),
    (_client_error("KeyTooLongError", 400), False),
    (_client_error("MetadataTooLarge", 400), False),
    (_client_error("ValidationException", 400), False),
    (EndpointConnectionError(endpoint_url="https://s3.amazonaws.com"), True),
    (TimeoutError("timed out"), True),
    (ParamValidationError(report="Non ascii characters found"), False),
    (TypeError("x"), False),
    (KeyError("x"), False),
    (ValueError("x"), False),
])
def test_failures_are_classified_by_cause(exc, transient):
    assert failures.is_transient(exc) is transient
