"""Generated bad and odd files through the real processor (issue 19): random bytes,
truncations, huge fields, deep nesting, mixed encodings, as CSV, JSON, JSON Lines, text,
plain or gzip-wrapped. Each ends PROCESSED or FAILED with a reason in one attempt: never
a retry, a hang or a lost original."""

from __future__ import annotations

import gzip
import json
import time

import processor
from common import results
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.functional.conftest import RAW

SUFFIXES = [".csv", ".json", ".jsonl", ".ndjson", ".txt"]
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20)


@st.composite
def _structured(draw) -> bytes:
    """Valid JSON, JSON Lines or CSV, or the same cut short."""
    kind = draw(st.sampled_from(["json", "jsonl", "csv"]))
    if kind == "json":
        text = json.dumps(draw(st.lists(st.dictionaries(st.text(max_size=8), _json_values,
                                                         max_size=5), max_size=5)))
    elif kind == "jsonl":
        text = "".join(json.dumps(draw(_json_values)) + "\n" for _ in range(draw(
            st.integers(0, 5))))
    else:
        width = draw(st.integers(1, 5))
        cell = st.text(st.characters(blacklist_categories=("Cs",)), max_size=10)
        rows = draw(st.lists(st.lists(cell, min_size=1, max_size=width + 1), max_size=6))
        text = "\n".join(",".join(f'"{c}"' if draw(st.booleans()) else c for c in row)
                         for row in [[f"h{i}" for i in range(width)], *rows])
    data = text.encode("utf-8", "surrogatepass")
    return data[:draw(st.integers(0, len(data)))] if draw(st.booleans()) else data


_deep = st.builds(lambda n, opener, closer: (opener * n + closer * n).encode(),
                  st.integers(1, 3000), st.sampled_from(["[", '{"a":[']),
                  st.sampled_from(["]", "]}"]))
_huge_field = st.builds(lambda n, quoted: b"a,b\n" + (b'"' if quoted else b"") + b"x" * n
                        + b",1\n", st.integers(1000, 400_000), st.booleans())
_mixed = st.builds(lambda parts: b"".join(t.encode(enc, "replace") for t, enc in parts),
                   st.lists(st.tuples(st.text(max_size=30), st.sampled_from(
                       ["utf-8", "latin-1", "utf-16", "utf-16-le", "cp1252"])), max_size=5))
CONTENTS = st.one_of(st.binary(max_size=3000), _structured(), _deep, _huge_field, _mixed)


@st.composite
def files(draw) -> tuple[str, bytes]:
    suffix = draw(st.sampled_from(SUFFIXES))
    body = draw(CONTENTS)
    if draw(st.booleans()):
        suffix += ".gz"
        body = gzip.compress(body)
        if draw(st.booleans()):
            body = body[:draw(st.integers(0, len(body)))]        # a truncated gzip
    return suffix, body


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(file=files())
def test_any_file_ends_processed_or_failed_in_one_attempt(aws_world, file):
    suffix, body = file
    key = f"incoming/generated{suffix}"
    aws_world.upload(key, body)

    started = time.monotonic()
    result = processor.lambda_handler(aws_world.event(aws_world.message(key)), None)
    elapsed = time.monotonic() - started

    # not retried, not hung, one attempt
    assert result == {"batchItemFailures": []}
    assert elapsed < 20
    row = aws_world.row(key)
    assert row["attempts"] == 1 and row["status"] in ("PROCESSED", "FAILED")
    # and the original is where the row says, nothing left behind in incoming/
    place = "completed/" if row["status"] == "PROCESSED" else "failed/"
    assert aws_world.keys(RAW) == [place + key.removeprefix("incoming/")]
    if row["status"] == "FAILED":
        assert row["error"].strip() and not row["error"].startswith("not retried")
    aws_world.s3.delete_object(Bucket=RAW, Key=place + key.removeprefix("incoming/"))
    aws_world.table.delete_item(Key={"object_key": results.row_key(RAW, key)})
