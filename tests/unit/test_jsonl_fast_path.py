"""JSON Lines: the orjson fast path gives exactly the bytes (or the error) of the exact rules.

The exact rules are the standard library's reading (json_reader.FAST_PATH = False, what
every line went through before the fast path existed). Lines are generated as text, so
numbers come in every spelling the rules care about: big integers, floats that a
64-bit float cannot hold as written, 1e400, NaN and Infinity, lone surrogates,
duplicate keys, keys that collide after snake_case, nesting past the limit.
"""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from processing import json_reader
from processing.limits import DEFAULT_LIMITS, Limits, PermanentError
from processing.transform import process_stream

META = {"processed_at": "2026-11-23T14:00:00+00:00", "environment": "test",
        "processor_version": "1.0.0", "source": "s3://raw/incoming/x.jsonl"}

NUMBERS = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.integers(-(10**30), 10**30).map(str),                 # past 64 bits, both signs
    st.sampled_from(["-0", "0", "9223372036854775807", "9223372036854775808",
                     "18446744073709551615", "18446744073709551616", "-9223372036854775809",
                     "1234567890123456", "-0.0", "0.0", "1.10", "1e5", "1E+5", "1e-5",
                     "1.5e16", "1e16", "1e+16", "1e-7", "0.1", "0.30000000000000004",
                     "1.2345678901234567890", "123456789012345.6", "1e400", "-1e400",
                     "1e-400", "5e-324", "2.2250738585072014e-308", "1e308",
                     "1.7976931348623157e308",
                     "NaN", "Infinity", "-Infinity", "01", "1.", ".5", "+1", "1e", "0x10"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(0, 25).flatmap(lambda p: st.decimals(allow_nan=False, allow_infinity=False,
                                                      places=p)).map(str),
)

ESCAPES = st.sampled_from(["\\n", "\\t", "\\\"", "\\\\", "\\/", "\\u0000", "\\u001f", "\\u007f",
                           "\\u00e9", "\\u2028", "\\ud800", "\\udfff", "\\ud83d\\ude00",
                           "\\ud83d", "\\ude00x", "\\x", "\\u12"])
PIECES = st.one_of(st.text(st.characters(exclude_characters='"\\\r\n'), max_size=8), ESCAPES,
                   st.sampled_from([" ", "\t", "\x01", "\x7f", "é", "😀", "\u2028", "\ufeff",
                                    "12345678901234567", "1.5e400"]))
STRINGS = st.lists(PIECES, max_size=4).map(lambda parts: '"' + "".join(parts) + '"')
KEYS = st.one_of(STRINGS, st.sampled_from(['"User Name"', '"user_name"', '"userName"', '"a"',
                                           '"A"', '"_metadata"', '"  "', '""', '"HTTPStatus"']))
SPACE = st.sampled_from(["", " ", "  ", "\t", "\u00a0", "\x0c"])
SCALARS = st.one_of(NUMBERS, STRINGS, st.sampled_from(["true", "false", "null", '""', '"  "',
                                                       "[]", "{}", "nul", "True"]))


def _object(children):
    pair = st.tuples(KEYS, SPACE, children).map(lambda p: f"{p[0]}:{p[1]}{p[2]}")
    return st.lists(pair, max_size=5).map(lambda ps: "{" + ",".join(ps) + "}")


def _array(children):
    return st.lists(children, max_size=4).map(lambda vs: "[" + ",".join(vs) + "]")


VALUES = st.recursive(SCALARS, lambda c: st.one_of(_object(c), _array(c)), max_leaves=12)
LINES = st.one_of(
    _object(VALUES), _object(VALUES), _object(VALUES),      # mostly records
    VALUES,                                                  # a non-object line
    st.sampled_from(["", "   ", "\t", "garbage", '{"a": 1', '{"a": 1}}', '{"a": 1} x']),
)
FILES = st.tuples(st.lists(st.tuples(SPACE, LINES, SPACE), max_size=6),
                  st.sampled_from(["\n", "\r\n", "\r"]))


def outcome(data: bytes, fast: bool, limits: Limits) -> tuple:
    json_reader.FAST_PATH = fast
    out = io.BytesIO()
    try:
        counts = process_stream("jsonl", io.BytesIO(data), out.write, META, limits)
    except PermanentError as e:
        return ("error", str(e), out.getvalue())
    finally:
        json_reader.FAST_PATH = True
    return ("ok", out.getvalue(), counts.records_in, counts.records_out, counts.dropped_values)


def same_both_ways(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple:
    exact = outcome(data, False, limits)
    assert outcome(data, True, limits) == exact
    return exact


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FILES, st.sampled_from([32, 3, 1]))
@example(([("", '{"a":1,"a":2.5,"b":"x"}', "")], "\n"), 32)
@example(([("", '{"User Name":"x","user_name":"y","n":12345678901234567890}', "")], "\n"), 32)
def test_the_fast_path_writes_the_same_bytes_or_fails_the_same_way(file, depth):
    lines, newline = file
    text = newline.join(f"{before}{line}{after}" for before, line, after in lines)
    same_both_ways(text.encode("utf-8", "surrogatepass"), Limits(max_nesting_depth=depth))


@pytest.mark.parametrize("line, expected", [
    ('{"a": 1.2345678901234567890}', "the number 1.2345678901234567890 would become"),
    ('{"a": NaN}', "NaN is not valid JSON"),
    ('{"a": "\\ud800"}', "a lone surrogate \\ud800"),
    ('{"a": 1e400}', "out of range for a 64-bit float"),
    ('[1.5]', "line 1: an array, not an object"),
])
def test_what_the_exact_rules_refuse_is_refused_with_the_same_words(line, expected):
    result = same_both_ways(line.encode() + b"\n")
    assert result[0] == "error" and expected in result[1]


@pytest.mark.parametrize("levels", [40, 990, 1010, 1100])
@pytest.mark.parametrize("depth", [32, 5000])
def test_deep_nesting_fails_with_the_same_words(levels, depth):
    line = '{"a":' + "[" * levels + "1" + "]" * levels + "}\n"
    result = same_both_ways(line.encode(), Limits(max_nesting_depth=depth))
    if depth == 32:
        assert result[0] == "error" and "MAX_NESTING_DEPTH" in result[1]


def test_what_the_fast_path_keeps_exactly():
    data = (b'{"User Name":"a","n":9007199254740993,"f":1.10,"big":123456789012345678901234}\n'
            b'{"a":1,"a":2,"b":[1,{"C D":null,"e":true}],"s":"\\u00e9\\ud83d\\ude00"}\n')
    kind, written, *_ = same_both_ways(data)
    assert kind == "ok"
    assert written.split(b',"_metadata"')[0] == (
        b'{"user_name":"a","n":9007199254740993,"f":1.1,"big":123456789012345678901234')
    assert b'{"a":2,"b":[1,{"e":true}],"s":"\xc3\xa9\xf0\x9f\x98\x80"' in written


@pytest.mark.parametrize("line", [
    '{"":[90071992547409.79],"":{}}',            # found by hypothesis (the test above)
    '{"a": 1.2345678901234567890, "b": 1, "a" : 2}',
    '{"a": {"x": 1e400}, "a": null}',
])
def test_a_value_a_duplicate_key_overwrites_is_judged_as_the_exact_rules_judge_it(line,
                                                                                 monkeypatch):
    outcomes = []
    for fast in (True, False):
        monkeypatch.setattr(json_reader, "FAST_PATH", fast)
        out = io.BytesIO()
        try:
            counts = process_stream("jsonl", io.BytesIO(line.encode() + b"\n"), out.write, META,
                                    DEFAULT_LIMITS, False)
            outcomes.append((out.getvalue(), counts.records_out))
        except PermanentError as e:
            outcomes.append(str(e))
    assert outcomes[0] == outcomes[1]
