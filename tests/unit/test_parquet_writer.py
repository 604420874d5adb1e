"""The Parquet writer (handlers/processing/parquet_writer.py): every record is either in the
output as it was or in rejects/ with a reason; never cast, never dropped."""

from __future__ import annotations

import io
import math

import pyarrow.parquet as pq
from hypothesis import given, settings
from hypothesis import strategies as st
from processing.jsonl_writer import Counts
from processing.output_format import Encoding, GzipStream, OutputFormat
from processing.transform import process_stream

META = {"processed_at": "2026-11-23T14:00:00+00:00", "environment": "t",
        "processor_version": "1", "source": "s3://b/k"}
NAMES = ("a", "b", "c")
values = st.one_of(st.integers(-2 ** 70, 2 ** 70), st.floats(allow_nan=False,
                                                             allow_infinity=False),
                   st.text(min_size=1, max_size=5).filter(lambda s: s.strip()), st.booleans())
records = st.lists(st.dictionaries(st.sampled_from(NAMES), values, min_size=1), min_size=1,
                   max_size=300)


def write(found: list[dict], rows: int = 100, declared=None, strings=False):
    rejected = []
    buffer = io.BytesIO()
    encoding = Encoding(OutputFormat(format="parquet", row_group_rows=rows), declared=declared,
                        strings=strings, reject=lambda r, why: rejected.append((r, why)))
    counts = Counts()
    out = encoding.records(buffer.write, META, counts, 1024)
    for record in found:
        out.add(record)
    out.flush()
    encoding.finish()
    return pq.read_table(io.BytesIO(buffer.getvalue())), rejected, counts


def same(stored, original) -> bool:
    if isinstance(original, float) or isinstance(stored, float):
        return stored.__class__ is float and (stored == original or
                                              math.isclose(stored, original))
    return stored.__class__ is original.__class__ and stored == original


@settings(max_examples=60, deadline=None)
@given(records)
def test_every_record_is_written_unchanged_or_rejected_with_a_reason(found):
    table, rejected, counts = write(found)
    rows = table.drop(["_metadata"]).to_pylist()
    assert counts.records_out == len(rows) == len(found) - len(rejected)
    assert all(why for _, why in rejected)
    kept = [r for r in found if not any(r is x for x, _ in rejected)]
    for row, record in zip(rows, kept, strict=True):
        assert {k: v for k, v in row.items() if v is not None}.keys() == record.keys()
        for name, value in record.items():
            # an integer in a double column is kept only when exact (below 2**53)
            assert same(row[name], value) or (isinstance(value, int) and
                                              float(value) == row[name]), (name, value, row)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-2 ** 63, 2 ** 63 - 1), min_size=1, max_size=50))
def test_a_consistently_typed_column_loses_nothing(ints):
    table, rejected, _ = write([{"n": i, "s": str(i)} for i in ints])
    assert rejected == []
    assert table.column("n").to_pylist() == ints
    assert table.column("s").to_pylist() == [str(i) for i in ints]


def test_a_string_in_an_integer_column_is_rejected_not_cast():
    table, rejected, _ = write([{"n": 1}, {"n": 2}, {"n": "3"}, {"n": 2 ** 64}])
    assert table.column("n").to_pylist() == [1, 2]
    assert [(r, why) for r, why in rejected] == [
        ({"n": "3"}, ['n: expected an integer (the column\'s Parquet type), got "3"']),
        ({"n": 2 ** 64}, [f"n: expected an integer (the column's Parquet type), got {2 ** 64}"])]


def test_a_nested_value_of_another_shape_is_rejected_not_trimmed():
    # the first row group (two records) makes the struct {x}; a later {x, y} does not fit
    table, rejected, _ = write([{"o": {"x": 1}}, {"o": {"x": 2}}, {"o": {"x": 3, "y": 4}}],
                               rows=2)
    assert table.column("o").to_pylist() == [{"x": 1}, {"x": 2}]
    assert rejected[0][0] == {"o": {"x": 3, "y": 4}}


def test_declared_types_convert_csv_strings_and_an_empty_file_keeps_its_columns():
    declared = {"n": {"type": "integer"}, "when": {"type": "datetime"}, "d": {"type": "date"}}
    table, rejected, _ = write([{"n": "7", "when": "2026-01-02T03:04:05", "d": "2026-01-02"}],
                               declared=declared, strings=True)
    assert rejected == []
    row = table.drop(["_metadata"]).to_pylist()[0]
    assert row["n"] == 7 and row["d"].isoformat() == "2026-01-02"
    assert row["when"].isoformat() == "2026-01-02T03:04:05+00:00"      # no offset: UTC
    empty, _, counts = write([], declared=declared, strings=True)
    assert empty.num_rows == 0 and counts.records_out == 0
    assert empty.schema.names == ["n", "when", "d", "_metadata"]


def test_row_groups_hold_row_group_rows_records():
    data = io.BytesIO()
    encoding = Encoding(OutputFormat(format="parquet", row_group_rows=100))
    lines = "".join(f'{{"i": {i}}}\n' for i in range(250)).encode()
    counts = process_stream("jsonl", io.BytesIO(lines), data.write, META,
                            records=encoding.records)
    encoding.finish()
    parquet = pq.ParquetFile(io.BytesIO(data.getvalue()))
    assert [parquet.metadata.row_group(i).num_rows for i in range(3)] == [100, 100, 50]
    assert counts.records_out == 250


@given(st.lists(st.binary(max_size=2000), max_size=20))
def test_gzip_stream_is_the_bytes_gzipped(chunks):
    import gzip

    out = io.BytesIO()
    stream = GzipStream(out.write)
    for chunk in chunks:
        stream.write(chunk)
    stream.close()
    assert gzip.decompress(out.getvalue()) == b"".join(chunks)
