"""The processor's pure core: names, normalization, parsers and their errors."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from processing import transform
from processing.transform import PermanentError, kind_for_key, normalize, process_stream, snake_case

META = {"processed_at": "2026-11-23T14:00:00+00:00", "environment": "test",
        "processor_version": "1.0.0", "source": "s3://raw/incoming/x"}


def run(kind: str, data: bytes | str) -> tuple[transform.Counts, list[dict]]:
    out = io.BytesIO()
    raw = data.encode() if isinstance(data, str) else data
    counts = process_stream(kind, io.BytesIO(raw), out.write, META)
    text = out.getvalue().decode()
    assert text == "" or text.endswith("\n")
    records = [json.loads(line) for line in text.splitlines()]
    for record in records:
        assert record.pop("_metadata") == META
    return counts, records


def error(kind: str, data: bytes | str) -> str:
    with pytest.raises(PermanentError) as e:
        run(kind, data)
    return str(e.value)


@pytest.fixture
def small_reads(monkeypatch):
    """Force values to straddle read boundaries."""
    monkeypatch.setattr(transform, "READ_SIZE", 7)


# --- names and records -------------------------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("User Name", "user_name"),
    ("Email Address", "email_address"),
    ("firstName", "first_name"),
    ("HTTPStatus Code", "http_status_code"),
    ("  Zip-Code ", "zip_code"),
    ("already_snake", "already_snake"),
    ("userID", "user_id"),
    ("ID", "id"),
    ("order.total (EUR)", "order_total_eur"),
    ("Größe", "größe"),
    ("!!!", "_"),
])
def test_snake_case(name, expected):
    assert snake_case(name) == expected


def test_normalize_drops_empty_values_recursively_and_counts_them():
    # given a record with every kind of empty value, nested
    record = {"User Name": "Ann", "Age": 0, "Active": False, "Note": "  ", "Nick": "",
              "Middle": None, "Tags": [], "Extra": {}, "Address": {"Zip-Code": "1", "City": None},
              "Gone": {"A": None, "B": ""}, "Items": [{"Item Name": "x", "Qty": None}, 3]}

    # when
    out, dropped = normalize(record)

    # then falsy-but-real values stay; empties go; emptied dicts go too
    assert out == {"user_name": "Ann", "age": 0, "active": False, "address": {"zip_code": "1"},
                   "items": [{"item_name": "x"}, 3]}
    assert dropped == 9


def test_kind_for_key():
    assert [kind_for_key(k) for k in ("a/b.csv", "b.JSON", "c.jsonl", "d.ndjson", "e.txt",
                                      "f.png", "noext", "dir.csv/file")] == \
        ["csv", "json", "jsonl", "jsonl", "text", "image", None, None]


# --- CSV -----------------------------------------------------------------------------

def test_csv_with_bom_crlf_and_empty_values():
    # given a spreadsheet export: BOM, CRLF, quoted newline, empty values, blank line
    data = '\ufeffUser Name,Email Address,Note\r\nAnn,ann@x.io,"two\r\nlines"\r\nBob,,\r\n\r\n'

    # when
    counts, records = run("csv", data)

    # then
    assert records == [{"user_name": "Ann", "email_address": "ann@x.io", "note": "two\r\nlines"},
                       {"user_name": "Bob"}]
    assert (counts.records_in, counts.records_out, counts.dropped_values) == (2, 2, 2)


def test_csv_duplicate_and_blank_headers_do_not_collide():
    _, records = run("csv", "Name,name,\nA,B,C\n")
    assert records == [{"name": "A", "name_2": "B", "column_3": "C"}]


def test_csv_empty_file_has_no_records():
    assert run("csv", "") == (transform.Counts(0, 0, 0), [])


def test_csv_ragged_row_names_its_line():
    assert error("csv", "a,b\n1,2\n\n1,2,3\n") == "line 4: 3 fields but the header has 2"


def test_csv_short_row_fails_like_a_long_one():
    assert error("csv", "a,b,c\n1,2,3\n4,5\n") == "line 3: 2 fields but the header has 3"
    assert error("csv", "a,b\n1\n") == "line 2: 1 field but the header has 2"


def test_csv_invalid_utf8_names_its_byte():
    assert error("csv", b"a\nok\n\xff\n") == "near byte 5: not valid UTF-8 (invalid start byte)"


# --- JSON ----------------------------------------------------------------------------

@pytest.mark.parametrize("reads", ["default", "tiny"])
def test_json_array(reads, monkeypatch):
    if reads == "tiny":
        monkeypatch.setattr(transform, "READ_SIZE", 7)
    data = ' [ {"firstName": "Ann", "n": 12345678901}, {"s": "caf\u00e9 \\u00e9 ]"} ,{"x": null}]\n'
    counts, records = run("json", data.encode())
    assert records == [{"first_name": "Ann", "n": 12345678901}, {"s": "café é ]"}]
    assert (counts.records_in, counts.records_out, counts.dropped_values) == (3, 2, 1)


def test_json_single_object():
    assert run("json", '{"A B": {"C": 1}}')[1] == [{"a_b": {"c": 1}}]


def test_json_empty_array():
    assert run("json", "[ ]") == (transform.Counts(0, 0, 0), [])


def test_json_concatenated_and_json_lines_objects(small_reads):
    _, records = run("json", '{"a": 1}\n{"b": 2}{"c": 3}\n\n  {"d": 4}')
    assert records == [{"a": 1}, {"b": 2}, {"c": 3}, {"d": 4}]


def test_jsonl_ignores_blank_lines():
    counts, records = run("jsonl", '{"A": 1}\n\n   \r\n{"B": null, "C": 2}\r\n')
    assert records == [{"a": 1}, {"c": 2}]
    assert (counts.records_in, counts.dropped_values) == (2, 1)


def test_large_json_array_streams_in_bounded_chunks(small_reads):
    # given many records with a tiny read size, the scanner never holds the whole input
    data = json.dumps([{"i": i, "pad": "x" * 20} for i in range(500)]).encode()
    reads = []

    class Source(io.BytesIO):
        def read(self, n=-1):
            reads.append(n)
            return super().read(n)

    out = io.BytesIO()
    counts = process_stream("json", Source(data), out.write, META)
    assert counts.records_out == 500
    assert max(reads) == 7 and len(reads) > len(data) // 7


@pytest.mark.parametrize("kind, data, message", [
    ("json", '[{"a": 1},\n {"b": }]', "line 2: invalid JSON: Expecting value"),
    ("json", '[{"a": 1},\n 3]', "line 2: record 2 is a number, not an object"),
    ("json", '{"a": 1}\n\n"x"', "line 3: record 2 is a string, not an object"),
    ("json", "  42 ", "line 1: the top-level value is a number; expected an object, "
                      "an array of objects, or JSON Lines"),
    ("json", "[{\"a\": 1}", "line 1: unterminated array after record 1"),
    ("json", '[{"a": 1}] [', "line 1: unexpected data after the array"),
    ("json", "   ", "empty file: no JSON value"),
    ("json", b'[{"a": "\xff"}]', "byte 8: not valid UTF-8 (invalid start byte)"),
    ("jsonl", '{"a": 1}\n{"a" 2}\n', "line 2, column 6: invalid JSON: Expecting ':' delimiter"),
    ("jsonl", '{"a": 1}\n[1]\n', "line 2: an array, not an object"),
    ("text", b"ok\n\xc3", "byte 3: not valid UTF-8 (unexpected end of data)"),
])
def test_malformed_input_raises_permanent_error_with_location(kind, data, message):
    assert error(kind, data) == message


def test_garbage_json_fails_without_reading_everything(small_reads):
    # given a huge non-JSON file
    source = io.BytesIO(b"[ this is not json " + b"x" * 1_000_000)

    # when / then it fails after a few small reads, not after buffering the whole file
    with pytest.raises(PermanentError, match="line 1: invalid JSON: Expecting value"):
        process_stream("json", source, lambda b: None, META)
    assert source.tell() < 100


# --- text ----------------------------------------------------------------------------

@pytest.mark.parametrize("reads", ["default", "tiny"])
def test_text_statistics(reads, monkeypatch):
    if reads == "tiny":
        monkeypatch.setattr(transform, "READ_SIZE", 3)
    data = "héllo wonderful world\n\n   \nfoo bar\nlast line".encode()
    counts, records = run("text", data)
    assert records == [{"lines": 5, "words": 7, "characters": len(data.decode()),
                        "bytes": len(data), "blank_lines": 2, "longest_line": 21}]
    assert (counts.records_in, counts.records_out) == (1, 1)


def test_empty_text():
    _, records = run("text", b"")
    assert records == [{"lines": 0, "words": 0, "characters": 0, "bytes": 0,
                        "blank_lines": 0, "longest_line": 0}]


def test_output_is_flushed_in_batches(monkeypatch):
    # given a small batch size
    monkeypatch.setattr(transform, "FLUSH_LINES", 4)
    writes = []

    # when
    process_stream("jsonl", io.BytesIO(b'{"a": 1}\n' * 50), writes.append, {"m": 1})

    # then output arrives in several writes whose concatenation is every line
    assert len(writes) == 13
    assert b"".join(writes) == b'{"a":1,"_metadata":{"m":1}}\n' * 50


def test_output_encoding_matches_compact_json_dumps():
    # given values of every JSON type, non-ASCII text and floats
    value = {"a": [1, 2.5, -0.0, 1e300, None, True, False], "s": "é \u2028 \"q\"\n",
             "n": {"deep": {"x": 123456789012345678901234567890}}}

    # when / then the reused C encoder writes exactly what json.dumps would
    assert transform._encode(value) == json.dumps(value, ensure_ascii=False,
                                                  separators=(",", ":"))


def test_csv_rows_are_encoded_exactly_as_json_dumps_would():
    # given CSV fields holding every control character but NUL (refused), quotes,
    # backslashes, JavaScript's line separators, DEL, a BOM, astral and non-ASCII characters
    hard = "".join(chr(c) for c in range(1, 32)) + '"\\/\u2028\u2029\x7f\ufeffé😀\U0010ffff'
    fields = [hard[i:i + 7] for i in range(0, len(hard), 7)]
    header = ",".join(f"f{i}" for i in range(len(fields)))
    row = ",".join('"' + f.replace('"', '""') + '"' for f in fields)
    writes: list[bytes] = []

    # when
    process_stream("csv", io.BytesIO(f"{header}\r\n{row}\r\n".encode()), writes.append,
                   {"m": 1})

    # then the line is what json.dumps writes for the same record (orjson encodes CSV rows)
    record = {f"f{i}": f for i, f in enumerate(fields) if f and not f.isspace()}
    expected = json.dumps({**record, "_metadata": {"m": 1}}, ensure_ascii=False,
                          separators=(",", ":"))
    assert b"".join(writes).decode("utf-8") == expected + "\n"


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_output_encoding_refuses_what_is_not_json(number):
    # NaN/Infinity would make invalid JSON Lines; the processor turns this into a reason
    with pytest.raises(ValueError):
        transform._encode({"x": number})


# --- numbers ---------------------------------------------------------------------------

def test_a_float_split_across_reads_is_judged_whole(small_reads):
    # given floats that straddle 7-character reads: the first 7-20 digits alone would be
    # a different number (and for the long one, an exact-looking prefix)
    data = '[{"a": 12345.678901234, "b": 0.1}, {"c": 2.5e-3}]'

    assert run("json", data)[1] == [{"a": 12345.678901234, "b": 0.1}, {"c": 0.0025}]
    long = "1." + "2" * 70
    assert error("json", '[{"x": ' + long + "}]") == (
        f"line 1: the number {long[:57]}... would become 1.2222222222222223 (a 64-bit float "
        "holds about 17 significant digits); quote it to keep it exactly as written")


@settings(max_examples=200, deadline=None)
@given(value=st.floats(allow_nan=False, allow_infinity=False))
def test_every_double_written_the_way_python_writes_it_is_kept(value):
    assert run("jsonl", json.dumps({"v": value}) + "\n")[1] == [{"v": value}]


@settings(max_examples=200, deadline=None)
@given(digits=st.text("0123456789", min_size=18, max_size=60), exponent=st.integers(-30, 30))
def test_a_number_is_kept_or_the_file_fails_never_rounded_silently(digits, exponent):
    from decimal import Decimal

    text = f"0.{digits}e{exponent}"
    try:
        (record,) = run("jsonl", '{"v": ' + text + "}\n")[1]
    except PermanentError as e:
        assert f"the number {text[:57]}" in str(e)
    else:
        assert Decimal(repr(record["v"])) == Decimal(text)


# --- gzip bombs --------------------------------------------------------------------------

def test_a_bomb_behind_ordinary_data_is_refused_before_its_output_is_parsed():
    import gzip
    import random

    from processing.byte_readers import STEP_BYTES

    # given ordinary rows that dilute the whole-file ratio, then a member inflating 40 MB
    # of tiny rows from about 40 KB (the crafted file that took minutes to refuse)
    rng = random.Random(19)
    prefix = b"n\n" + b"".join(b"%d\n" % rng.getrandbits(48) for _ in range(20_000))
    data = gzip.compress(prefix) + gzip.compress(b"1\n" * 20_000_000)
    seen = []

    # when it is read, then it fails as a bomb
    with pytest.raises(PermanentError, match=r"compression ratio above 100:1 after \d+ "):
        process_stream("csv", io.BytesIO(data), lambda b: None, META, compressed=True,
                       accept=lambda record: seen.append(record) or True)

    # and at most one step of the bomb reached the parser
    assert 20_000 < len(seen) <= 20_000 + STEP_BYTES // 2


def test_a_small_repetitive_file_is_no_bomb():
    import gzip

    # 100 KB of one repeated row inflates about 300:1, but is smaller than one step
    counts, _ = run_gz("csv", gzip.compress(b"a\n" + b"1\n" * 50_000))
    assert counts.records_out == 50_000


def run_gz(kind: str, data: bytes):
    out = io.BytesIO()
    counts = process_stream(kind, io.BytesIO(data), out.write, META, compressed=True)
    return counts, out.getvalue()


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=2000), cut=st.integers(min_value=0, max_value=2000),
       members=st.integers(min_value=1, max_value=3), padding=st.integers(0, 3))
def test_gunzip_matches_the_standard_library_on_members_truncations_and_padding(
        data, cut, members, padding):
    import gzip

    from processing.byte_readers import Gunzip
    from processing.limits import DEFAULT_LIMITS

    blob = (gzip.compress(data) * members + b"\0" * padding)[:cut or None]
    try:
        expected = gzip.decompress(blob)
    except (OSError, EOFError):
        expected = None
    reader = Gunzip(io.BytesIO(blob), DEFAULT_LIMITS, 4096)
    try:
        got = b"".join(iter(lambda: reader.read(), b""))
    except PermanentError as e:
        assert expected is None, str(e)
        assert "not a valid gzip stream" in str(e)
    else:
        assert got == expected
