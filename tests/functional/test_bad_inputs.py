"""The bad-input catalog: every awkward file ends in one documented state.

Each case goes through processor.lambda_handler against moto. PROCESSED cases say
exactly which records come out; FAILED cases say exactly which reason the results
row carries. Either way the message is done with (never in batchItemFailures), the
original is in exactly one of completed/ or failed/, and the next file in the same
batch is processed normally.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field

import processor
import pytest

RAW, PROCESSED = "raw-bucket", "processed-bucket"
NOT_JSON_NUMBERS = "is not valid JSON (NaN and Infinity are not JSON numbers)"
BIG = 123456789012345678901234567890123456789012345678901234567890


@dataclass
class Case:
    id: str
    name: str                       # under incoming/
    body: bytes
    error: str | None = None        # FAILED with exactly this reason; None: PROCESSED
    records: list[dict] | None = None
    env: dict[str, str] = field(default_factory=dict)


def _bomb(mebibytes: int) -> bytes:
    """A multi-member gzip inflating to `mebibytes` MiB of 64-byte lines, about 1000:1."""
    member = gzip.compress((b"x" * 63 + b"\n") * (1 << 14), 9)
    return gzip.compress(b"a\n") + member * mebibytes


CATALOG = [
    # --- CSV ---------------------------------------------------------------------------
    Case("csv-bom", "bom.csv", "\ufeffName,Age\n Ann ,3\n".encode(),
         records=[{"name": " Ann ", "age": "3"}]),
    # Suffixed, not refused: values are positional, so nothing is ambiguous.
    Case("csv-duplicate-headers", "dup.csv", b"id,Name,id\n1,x,2\n",
         records=[{"id": "1", "name": "x", "id_2": "2"}]),
    Case("csv-ragged-long-row", "ragged.csv", b"a,b\n1,2\n1,2,3\n",
         error="line 3: 3 fields but the header has 2"),
    Case("csv-short-row", "short.csv", b"a,b,c\n1\n",
         error="line 2: 1 field but the header has 3"),
    Case("csv-short-row-of-empties", "short2.csv", b"a,b,c\n1,2,3\n4,\n",
         error="line 3: 2 fields but the header has 3"),
    Case("json-float-beyond-a-double", "precise.json",
         b'[{"a": 1},\n {"x": 1.2345678901234567890123456789012345678901}]',
         error="line 2: the number 1.2345678901234567890123456789012345678901 would become "
               "1.2345678901234567 (a 64-bit float holds about 17 significant digits); quote it "
               "to keep it exactly as written"),
    Case("jsonl-float-that-underflows", "tiny.jsonl", b'{"a": 1}\n{"x": 1e-400}\n',
         error="line 2: the number 1e-400 would become 0.0 (a 64-bit float holds about 17 "
               "significant digits); quote it to keep it exactly as written"),
    Case("json-floats-that-a-double-holds", "floats.json",
         b'{"a": 0.1, "b": 1.10, "c": 2.5E+10, "d": -0.0, "e": 5e-324}',
         records=[{"a": 0.1, "b": 1.1, "c": 25000000000.0, "d": -0.0, "e": 5e-324}]),
    Case("csv-numbers-kept-as-written", "numbers.csv",
         b"n,m\n1.2345678901234567890123456789012345678901,007\n",
         records=[{"n": "1.2345678901234567890123456789012345678901", "m": "007"}]),
    Case("csv-unterminated-quote", "quote.csv", b'a,b\n1,2\n3,"four\n5,6\n',
         error="line 3: unterminated quoted field (still open at the end of the file, line 4)"),
    Case("csv-text-after-closing-quote", "junk.csv", b'a,b\n"x"y,2\n',
         error="line 2: malformed CSV: ',' expected after '\"'"),
    Case("csv-nul-byte", "nul.csv", b"a,b\n1,\x002\n",
         error="byte 6: NUL byte: binary or UTF-16 data, not UTF-8 text"),
    Case("csv-cr-only-line-ends", "mac.csv", b"a,b\r1,2\r3,4\r",
         records=[{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]),
    Case("csv-header-only", "header.csv", b"a,b\r\n", records=[]),
    Case("csv-empty-file", "empty.csv", b"", records=[]),
    Case("csv-latin-1", "latin1.csv", "name\ncafé\n".encode("latin-1"),
         error="near byte 8: not valid UTF-8 (invalid continuation byte)"),
    Case("csv-utf-16-with-bom", "utf16.csv", "a,b\n1,2\n".encode("utf-16"),
         error="byte 0: UTF-16 byte order mark: the file is UTF-16 (or UTF-32); "
               "only UTF-8 is supported, save it as UTF-8"),
    Case("csv-utf-16-without-bom", "utf16le.csv", "a,b\n1,2\n".encode("utf-16-le"),
         error="byte 1: NUL byte: binary or UTF-16 data, not UTF-8 text"),
    Case("csv-line-over-limit", "longline.csv", b"a\nshort\n" + b"x" * 200 + b"\n",
         error="line 3: longer than 100 bytes (MAX_LINE_BYTES)",
         env={"MAX_LINE_BYTES": "100"}),
    Case("csv-field-over-limit", "field.csv", b'a\n"' + b"x\n" * 40 + b'"\n',
         error="line 2: a field longer than 50 characters (MAX_FIELD_BYTES); "
               "an unterminated quote?", env={"MAX_FIELD_BYTES": "50"}),
    Case("csv-too-many-columns", "wide.csv", b"a,b,c,d\n1,2,3,4\n",
         error="line 1: 4 columns; at most 3 are allowed (MAX_COLUMNS)",
         env={"MAX_COLUMNS": "3"}),
    # --- JSON --------------------------------------------------------------------------
    Case("json-object", "object.json", b'{"User Name": "Ann"}', records=[{"user_name": "Ann"}]),
    Case("json-array", "array.json", b'[{"a": 1}, {"b": 2}]', records=[{"a": 1}, {"b": 2}]),
    Case("json-lines", "lines.jsonl", b'{"a": 1}\n\n{"b": 2}\n', records=[{"a": 1}, {"b": 2}]),
    Case("json-top-level-scalar", "scalar.json", b"42",
         error="line 1: the top-level value is a number; expected an object, an array of "
               "objects, or JSON Lines"),
    Case("jsonl-scalar-line", "scalar.jsonl", b'{"a": 1}\n"x"\n',
         error="line 2: a string, not an object"),
    # Duplicate keys: the last value wins, as in Python's json and JSON.parse.
    Case("json-duplicate-keys", "dupkeys.json", b'{"a": 1, "a": 2}', records=[{"a": 2}]),
    # Distinct keys that normalize to one name are kept apart, like CSV headers.
    Case("json-keys-collide-after-snake-case", "collide.json",
         b'{"User Name": 1, "user_name": 2}', records=[{"user_name": 1, "user_name_2": 2}]),
    Case("json-nan", "nan.json", b'[{"a": 1}, {"a": NaN}]',
         error=f"line 1: NaN {NOT_JSON_NUMBERS}"),
    Case("jsonl-infinity", "inf.jsonl", b'{"a": 1}\n{"a": -Infinity}\n',
         error=f"line 2: -Infinity {NOT_JSON_NUMBERS}"),
    Case("json-float-overflow", "overflow.json", b'[{"a": 1}, {"a": 1e400}]',
         error="record 2: a number is out of range for a 64-bit float (such as 1e400)"),
    Case("json-huge-integer", "bigint.json", b'{"n": %d}' % BIG, records=[{"n": BIG}]),
    Case("json-integer-over-4300-digits", "hugeint.jsonl", b'{"n": ' + b"9" * 5000 + b"}\n",
         error="line 1: an integer with more than 4300 digits"),
    Case("json-nesting-over-limit", "deep.json",
         b'[{"a": 1},\n' + b'{"a":' * 33 + b"1" + b"}" * 33 + b"]",
         error="line 2: nested deeper than 32 levels (MAX_NESTING_DEPTH)"),
    Case("jsonl-nesting-arrays", "deep.jsonl", b'{"a": ' + b"[" * 40 + b"]" * 40 + b"}\n",
         error="line 1: nested deeper than 32 levels (MAX_NESTING_DEPTH)"),
    Case("json-nesting-beyond-the-parser", "abyss.json", b"[" * 100_000 + b"]" * 100_000,
         error="line 1: nested deeper than the parser allows (MAX_NESTING_DEPTH)"),
    Case("json-nesting-at-limit", "ok-deep.json", b'{"a":' * 31 + b"1" + b"}" * 31,
         records=[json.loads(b'{"a":' * 31 + b"1" + b"}" * 31)]),
    Case("json-lone-surrogate", "surrogate.json", b'[{"a": "ok"}, {"a": "x\\ud800"}]',
         error="output record 2: a lone surrogate \\ud800 in a string is not valid Unicode"),
    Case("json-trailing-garbage", "trailing.json", b'[{"a": 1}]\nxyz',
         error="line 2: unexpected data after the array"),
    Case("jsonl-trailing-garbage", "trailing.jsonl", b'{"a": 1}\n{"a": 2} x\n',
         error="line 2, column 10: invalid JSON: Extra data"),
    Case("json-unterminated-array", "open.json", b'[{"a": 1},\n{"b": 2}',
         error="line 2: unterminated array after record 2"),
    Case("json-latin-1", "latin1.json", '{"a": "café"}'.encode("latin-1"),
         error="byte 10: not valid UTF-8 (invalid continuation byte)"),
    Case("json-utf-16-with-bom", "utf16.json", '{"a": 1}'.encode("utf-16"),
         error="byte 0: UTF-16 byte order mark: the file is UTF-16 (or UTF-32); "
               "only UTF-8 is supported, save it as UTF-8"),
    Case("json-empty-file", "empty.json", b"", error="empty file: no JSON value"),
    Case("json-record-over-limit", "bigrecord.json", b'[{"a": "' + b"x" * 300 + b'"}]',
         error="line 1: a record longer than 100 characters (MAX_LINE_BYTES)",
         env={"MAX_LINE_BYTES": "100"}),
    # --- any kind ----------------------------------------------------------------------
    Case("object-over-size-limit", "big.csv", b"a\n" + b"1\n" * 100,
         error="the object is 202 bytes; at most 100 are allowed (MAX_OBJECT_BYTES)",
         env={"MAX_OBJECT_BYTES": "100"}),
    Case("unsupported-suffix", "picture.bmp", b"BM",
         error="unsupported file type: 'picture.bmp' (expected .csv, .json, .jsonl, .ndjson or "
               ".txt, optionally followed by .gz)"),
    Case("text-binary", "binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00",
         error="byte 8: NUL byte: binary or UTF-16 data, not UTF-8 text"),
    # --- gzip --------------------------------------------------------------------------
    Case("gzip-csv", "orders.csv.gz", gzip.compress(b"Id,Total\n1,9.5\n"),
         records=[{"id": "1", "total": "9.5"}]),
    Case("gzip-jsonl", "data.jsonl.gz", gzip.compress(b'{"a": 1}\n{"a": 2}\n'),
         records=[{"a": 1}, {"a": 2}]),
    Case("gzip-corrupt", "broken.csv.gz", b"\x1f\x8b\x08\x00garbage",
         error="compressed byte 11: not a valid gzip stream (Compressed file ended before the "
               "end-of-stream marker was reached)"),
    Case("gzip-not-gzip", "plain.csv.gz", b"a,b\n1,2\n",
         error="compressed byte 2: not a valid gzip stream (Not a gzipped file (b'a,'))"),
    # A gzip bomb: 1 GiB of "x\n" from about 1 MiB; refused after one 128 KiB step of output.
    Case("gzip-bomb", "bomb.csv.gz", _bomb(1024),
         error="compression ratio above 100:1 after 432 compressed bytes "
               "(MAX_COMPRESSION_RATIO): a decompression bomb?"),
    Case("gzip-over-decompressed-limit", "inflate.csv.gz", gzip.compress(b"a\n" + b"1\n" * 999),
         error="decompresses to more than 1000 bytes (MAX_DECOMPRESSED_BYTES)",
         env={"MAX_DECOMPRESSED_BYTES": "1000"}),
]


@pytest.mark.parametrize("case", CATALOG, ids=[c.id for c in CATALOG])
def test_bad_input_ends_in_its_documented_state(aws_world, monkeypatch, case):
    # given the file, next to a good file in the same batch
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    key = f"incoming/{case.name}"
    aws_world.upload(key, case.body)
    aws_world.upload("incoming/neighbour.csv", "a\n1\n")
    message, neighbour = aws_world.message(key), aws_world.message("incoming/neighbour.csv")

    # when the batch is handled
    result = processor.lambda_handler(aws_world.event(message, neighbour), None)

    # then neither message is retried and the neighbour is processed
    assert result == {"batchItemFailures": []}
    assert aws_world.row("incoming/neighbour.csv")["status"] == "PROCESSED"
    row = aws_world.row(key)
    raw_keys = [k for k in aws_world.keys(RAW) if "neighbour" not in k]
    outputs = [k for k in aws_world.keys(PROCESSED) if "neighbour" not in k]
    if case.error is not None:
        # FAILED with the reason, original in failed/, no output
        assert (row["status"], row["error"]) == ("FAILED", case.error)
        assert row["location"] == f"failed/{case.name}" and row["attempts"] == 1
        assert raw_keys == [f"failed/{case.name}"]
        assert outputs == []
    else:
        # PROCESSED with exactly these records, original in completed/
        assert row["status"] == "PROCESSED" and "error" not in row
        assert raw_keys == [f"completed/{case.name}"]
        assert [o.rsplit("/", 1)[1] for o in outputs] == \
            [case.name + ".jsonl"]
        lines = aws_world.read(PROCESSED, outputs[0]).splitlines()
        records = [json.loads(line) for line in lines]
        assert [{k: v for k, v in r.items() if k != "_metadata"} for r in records] == \
            case.records
        assert (row["records_in"], row["records_out"]) == \
            (row["records_in"], len(case.records))


def test_every_bad_input_in_one_batch_fails_only_itself(aws_world):
    # given the whole catalog (default limits) and a good file in one batch
    cases = [c for c in CATALOG if not c.env]
    for case in cases:
        aws_world.upload(f"incoming/{case.name}", case.body)
    aws_world.upload("incoming/good.csv", "a\n1\n")
    messages = [aws_world.message(f"incoming/{c.name}") for c in cases]
    messages.append(aws_world.message("incoming/good.csv"))

    # when
    result = processor.lambda_handler(aws_world.event(*messages), None)

    # then nothing is retried, every row has its documented status, incoming/ is empty
    assert result == {"batchItemFailures": []}
    for case in cases:
        row = aws_world.row(f"incoming/{case.name}")
        assert row["status"] == ("FAILED" if case.error else "PROCESSED"), case.id
    assert aws_world.row("incoming/good.csv")["status"] == "PROCESSED"
    assert aws_world.keys(RAW, "incoming/") == []


def test_a_bad_limit_setting_fails_the_batch_loudly(aws_world, monkeypatch):
    # given a misconfigured limit
    monkeypatch.setenv("MAX_LINE_BYTES", "1MB")
    aws_world.upload("incoming/a.csv", "a\n1\n")

    # when / then the invocation errors (Lambda retries the batch, then dead-letters it)
    with pytest.raises(ValueError, match=r"MAX_LINE_BYTES='1MB': expected a positive whole"):
        processor.lambda_handler(aws_world.event(aws_world.message("incoming/a.csv")), None)
    assert aws_world.keys(RAW) == ["incoming/a.csv"]
