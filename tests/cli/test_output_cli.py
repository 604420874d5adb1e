"""Keys never drive the terminal (issue 21, item 2): whatever S3 accepts as a key reaches the
screen as plain text, Rich markup uninterpreted, control and bidi characters escaped."""

from __future__ import annotations

import io
import json
import unicodedata

import boto3
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console

from pipectl import output
from tests.helpers import ACCOUNT

RAW = f"demo-dev-raw-{ACCOUNT}"
NASTY = ["incoming/\x1b[2Jcleared.csv", "incoming/\u202etxt.exe.csv", "incoming/[bold]x[/].csv",
         "incoming/[/]oops.csv", "incoming/bell\x07\x9b.csv", "incoming/line\u2028sep.csv"]
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def unsafe(text: str) -> set[str]:
    """Characters in text that could drive a terminal or reorder what it shows."""
    return {ch for ch in text if ch != "\n" and (
        ch in BIDI or unicodedata.category(ch) in ("Cc", "Zl", "Zp"))}


# Keys as S3 takes them (any UTF-8 up to 1,024 bytes), biased towards the characters that
# matter here: controls, C1, bidi overrides, separators and Rich's markup brackets.
KEYS = st.lists(st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8),
    st.sampled_from(["\x1b", "\x1b[31m", "\x9b", "\r", "\n", "\t", "\x00", "\u202e", "\u2066",
                     "\u2028", "[", "]", "[/]", "[bold]", "\\", "%", "+", " "])),
    min_size=1, max_size=12).map("".join).filter(bool)


@settings(max_examples=200, deadline=None)
@given(KEYS)
def test_any_key_reaches_a_table_and_a_message_as_plain_text(key):
    # given a key, when it is shown in a table cell, a table title and a message
    screen = Console(file=io.StringIO(), width=10_000, color_system=None, force_terminal=False)
    screen.print(output.table(key, ["key", "size"], [[key, output.human_bytes(len(key))]]))
    screen.print(output.lines(key, "second line"))
    shown = screen.file.getvalue()
    # then nothing in it can drive the terminal, and the key is there, escaped but whole
    assert unsafe(shown) == set()
    assert output.plain(key) in shown
    assert unsafe(output.plain(key)) == set() and "\n" not in output.plain(key)


@settings(max_examples=100, deadline=None)
@given(key=KEYS)
def test_any_key_in_a_message_reaches_stderr_as_plain_text(key, monkeypatch_stderr):
    output.error(f"{key}: cannot download")
    shown = monkeypatch_stderr.getvalue()
    monkeypatch_stderr.truncate(0)
    monkeypatch_stderr.seek(0)
    assert unsafe(shown) == set()
    assert output.plain(key, newlines=True) in shown


def test_plain_escapes_visibly_and_leaves_printable_text_alone():
    assert output.plain("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert output.plain("invoice\u202efdp.exe") == "invoice\\u202efdp.exe"
    assert output.plain("x\ny", newlines=True) == "x\ny"
    assert output.plain("x\ny") == "x\\x0ay"
    assert output.plain("données 日本 [bold] 100% a+b") == "données 日本 [bold] 100% a+b"


@pytest.fixture(scope="module")
def monkeypatch_stderr():
    # module scope: hypothesis runs every example in one test call, and reusing one buffer
    # keeps function-scoped fixtures out of @given
    buffer = io.StringIO()
    saved = output.stderr
    output.stderr = Console(file=buffer, width=10_000, color_system=None)
    yield buffer
    output.stderr = saved


def test_ls_shows_hostile_keys_escaped_never_raw(s3, pipectl):
    for key in NASTY:
        s3.put_object(Bucket=RAW, Key=key, Body=b"x")
    code, out, err = pipectl("ls", "raw/incoming/", "-r")   # "[/]" makes prefixes
    assert code == 0, err
    assert unsafe(out) == set()
    for key in NASTY:
        assert output.plain(key) in out
    code, out, _ = pipectl("ls", "raw/incoming/", "-r", "-o", "json")  # JSON escapes itself
    assert {o["key"] for o in json.loads(out)["objects"]} == set(NASTY) and unsafe(out) == set()


def test_trace_and_results_of_markup_and_escape_keys(deployed, pipectl):
    s3 = boto3.client("s3", region_name="us-east-1")
    for key in NASTY:
        s3.put_object(Bucket=deployed.bucket("raw"), Key=key, Body=b"a\n")
    for key in NASTY:
        code, out, err = pipectl("trace", key)
        assert code == 0, err            # found in incoming/, no markup error
        assert unsafe(out + err) == set() and output.plain(key) in out
    code, out, _ = pipectl("status")
    assert code == 0 and unsafe(out) == set()
    assert any(output.plain(key) in out for key in NASTY)  # the oldest in incoming/


# --- issue 16, item 8: narrow terminals and readable values ---------------------------

LONG_KEY = "incoming/2024/customers/eu-west/orders-export-final.csv"


@pytest.fixture
def narrow(monkeypatch):
    """stdout as a 60-column terminal."""
    monkeypatch.setattr(output, "stdout", Console(width=60, soft_wrap=True))


def test_ls_at_60_columns_keeps_every_key_whole(s3, pipectl, narrow):
    s3.put_object(Bucket=RAW, Key=LONG_KEY, Body=b"x" * 2048)
    code, out, _ = pipectl("ls", "raw/incoming/", "-r")
    assert code == 0
    assert LONG_KEY in out.splitlines()                # on a line of its own, not folded
    assert "  size: 2.0 KiB" in out
    assert any(line.startswith("  last modified (UTC): 20") and len(line) == 42
               for line in out.splitlines())          # "YYYY-MM-DD HH:MM:SS", no microseconds


def test_trace_and_status_at_60_columns_keep_keys_and_names_whole(deployed, pipectl, narrow):
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=deployed.bucket("raw"), Key=LONG_KEY, Body=b"a\n")
    code, out, _ = pipectl("trace", LONG_KEY)
    assert code == 0 and LONG_KEY in out.splitlines()
    code, out, _ = pipectl("status")
    assert code == 0
    assert f"raw bucket: {deployed.bucket('raw')}" in out.splitlines()


def test_human_time_is_utc_to_the_second():
    assert output.human_time("2024-05-17T04:00:00.123456+02:00") == "2024-05-17 02:00:00"
    assert output.human_time("2024-05-17T02:00:00Z") == "2024-05-17 02:00:00"
    assert output.human_time(None) == "" and output.human_time("n/a") == "n/a"


@settings(max_examples=50, deadline=None)
@given(st.datetimes(timezones=st.timezones()))
def test_any_aware_time_shows_as_its_utc_second(when):
    from datetime import timezone

    assert output.human_time(when.isoformat()) == \
        when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
