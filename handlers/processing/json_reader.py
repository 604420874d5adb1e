"""JSON and JSON Lines in: records as dicts, streamed, with errors that say which line.

A .json file is scanned value by value over a growing text buffer, so an array of
a million records never sits in memory at once; a .jsonl file is read line by line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any, BinaryIO

import orjson

from processing.byte_readers import Utf8Chunks, text_lines
from processing.limits import DEFAULT_LIMITS, Limits, PermanentError


class _NotANumber(ValueError):
    """NaN, Infinity or -Infinity: accepted by Python's json, not JSON (RFC 8259)."""


def _refuse_constant(name: str):
    raise _NotANumber(name)


class _InexactNumber(ValueError):
    """A number a 64-bit float cannot hold as written (1.2345678901234567890): it would
    change in the output without a word, so the file fails instead."""

    def __init__(self, text: str, value: float):
        super().__init__(text)
        self.text, self.value = text, value


def _exact_float(text: str) -> float:
    """float(text), only if the output (its shortest repr) has the same value as the input.

    0.1, 1.10 and 1e2 are kept (same value, perhaps spelled shorter); a 40-digit
    fraction, or 1e-400 (underflows to 0.0), is refused. 1e400 overflows to infinity,
    which the writer refuses with its own message.
    """
    value = float(text)
    if value - value != 0 or repr(value) == text:      # infinity, or the common case
        return value
    if Decimal(text) != Decimal(repr(value)):
        raise _InexactNumber(text, value)
    return value


_NON_WS = re.compile(r"[^ \t\n\r]")
# Duplicate keys: the last value wins, as in Python's json, JavaScript's JSON.parse and
# most parsers (RFC 8259 leaves it to the parser); catching them would need a
# Python-level hook on every object.
_decoder = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_exact_float)
_raw_decode = _decoder.raw_decode


def _value_error(e: ValueError) -> str:
    if isinstance(e, _InexactNumber):
        shown = e.text if len(e.text) <= 60 else e.text[:57] + "..."
        return (f"the number {shown} would become {e.value!r} (a 64-bit float holds about 17 "
                "significant digits); quote it to keep it exactly as written")
    if isinstance(e, _NotANumber):
        return f"{e} is not valid JSON (NaN and Infinity are not JSON numbers)"
    if "integer string conversion" in str(e):
        return f"an integer with more than {_max_int_digits()} digits"
    return f"invalid JSON: {e}"


def _max_int_digits() -> int:
    import sys
    return sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 4300


class Where:
    """Where the record being handled came from, for error messages.

    text: the JSON Lines line of a record orjson read (see jsonl_records), else None.
    """

    def __init__(self):
        self.line = 0
        self.text: str | None = None
        self.scan: _JsonScanner | None = None

    def kept_every_value(self, record: dict) -> bool:
        """Whether orjson's record holds every value its line (`text`) spells.

        A duplicate key keeps only its last value, and the exact rules refuse an inexact
        float or an oversized number wherever it is, overwritten too: a line that may hold
        one (a digit before ".", "e" or "E", or a long run of digits) is read the exact
        way unless its keys all survive. A line spells at least as many `"` `:` marks as
        it has keys (a string may hold one too, which only sends the line the exact way).
        """
        text = self.text
        if text is None or _NUMBER_TROUBLE(text) is None:
            return True
        return len(_KEY_ENDS(text)) == _count_keys(record)

    def exact(self) -> dict:
        """The record orjson read from `text`, read again by the exact rules."""
        assert self.text is not None
        value = _decode_line(self.text, self.line)
        self.text = None
        if value.__class__ is not dict:     # orjson read an object: so does json
            raise PermanentError(f"line {self.line}: {_type_name(value)}, not an object")
        return value

    def __str__(self) -> str:
        return f"line {self.scan.line(self.scan.start) if self.scan else self.line}"


class _JsonScanner:
    """A growing text buffer over the source with line tracking for error messages."""

    def __init__(self, source: BinaryIO, max_record: int, read_size: int):
        self._chunks = iter(Utf8Chunks(source, read_size))
        self.buf = ""
        self.pos = 0
        self.eof = False
        self._lines_before = 0       # newlines in text already discarded from buf
        self.start = 0               # where the last value began, for error messages
        self._max_record = max_record
        self._read_size = read_size

    def more(self, at_least: int = 0) -> bool:
        """Read more text (at least `at_least` chars if available); False at end of input."""
        if self.eof:
            return False
        self._lines_before += self.buf.count("\n", 0, self.pos)
        self.start -= self.pos
        parts = [self.buf[self.pos:]]
        got = 0
        for chunk in self._chunks:
            parts.append(chunk)
            got += len(chunk)
            if got >= at_least:
                break
        else:
            self.eof = True
        self.buf = "".join(parts)
        self.pos = 0
        return got > 0

    def skip_ws(self) -> str:
        """The next non-whitespace character ('' at end of input); pos points at it."""
        while True:
            m = _NON_WS.search(self.buf, self.pos)
            if m:
                self.pos = m.start()
                return self.buf[self.pos]
            self.pos = len(self.buf)
            if not self.more():
                return ""

    def value(self, decode=_raw_decode):
        """Decode one JSON value at pos, reading more input until it is complete."""
        while True:
            self.start = self.pos
            try:
                value, end = decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                if self.eof or self._definite(e):
                    raise PermanentError(f"line {self.line(e.pos)}: invalid JSON: {e.msg}") \
                        from None
                self._grow()
                continue
            except _InexactNumber as e:
                if not self.eof and self.buf.endswith(e.text):
                    self._grow()        # the number may go on in the next chunk
                    continue
                raise PermanentError(f"line {self.line(self.start)}: {_value_error(e)}") \
                    from None
            except ValueError as e:
                raise PermanentError(f"line {self.line(self.start)}: {_value_error(e)}") \
                    from None
            except RecursionError:
                raise PermanentError(f"line {self.line(self.start)}: nested deeper than the "
                                     "parser allows (MAX_NESTING_DEPTH)") from None
            if end == len(self.buf) and not self.eof and not isinstance(value, (dict, list, str)):
                # A number or literal at the buffer's edge may continue in the next chunk.
                self._grow()
                continue
            if end - self.start > self._max_record:
                raise PermanentError(f"line {self.line(self.start)}: a record longer than "
                                     f"{self._max_record} characters (MAX_LINE_BYTES)")
            self.pos = end
            return value

    def _grow(self) -> None:
        pending = len(self.buf) - self.pos
        if pending > self._max_record:
            raise PermanentError(f"line {self.line(self.pos)}: a record longer than "
                                 f"{self._max_record} characters (MAX_LINE_BYTES)")
        # Double the unconsumed buffer each time, so a large value costs O(n).
        self.more(at_least=min(max(self._read_size, pending), self._max_record + 1))

    def _definite(self, e: json.JSONDecodeError) -> bool:
        # An error well before the end of the buffer cannot be cured by more input
        # (except an unterminated string, which reports where the string began), so
        # a garbage file fails at once instead of being read whole into memory.
        return e.pos < len(self.buf) - 16 and not e.msg.startswith("Unterminated string")

    def line(self, pos: int | None = None) -> int:
        return self._lines_before + self.buf.count("\n", 0, self.pos if pos is None else pos) + 1


def _type_name(value) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(value), "a number")


def _record(scan: _JsonScanner, n: int) -> dict:
    value = scan.value()
    if not isinstance(value, dict):
        raise PermanentError(f"line {scan.line(scan.start)}: record {n} is "
                             f"{_type_name(value)}, not an object")
    return value


def json_records(source: BinaryIO, limits: Limits = DEFAULT_LIMITS,
                 where: Where | None = None, *, read_size: int) -> Iterator[dict]:
    """Objects from a JSON array, a single object, or concatenated objects / JSON Lines."""
    scan = _JsonScanner(source, limits.max_line_bytes, read_size)
    if where is not None:
        where.scan = scan
    first = scan.skip_ws()
    if first == "":
        raise PermanentError("empty file: no JSON value")
    if first == "[":
        scan.pos += 1
        n = 0
        if scan.skip_ws() == "]":
            scan.pos += 1
        else:
            while True:
                n += 1
                yield _record(scan, n)
                c = scan.skip_ws()
                if c == ",":
                    scan.pos += 1
                    scan.skip_ws()
                    continue
                if c == "]":
                    scan.pos += 1
                    break
                where_ = f"line {scan.line()}"
                raise PermanentError(f"{where_}: expected ',' or ']' after record {n}"
                                     if c else f"{where_}: unterminated array after record {n}")
        if scan.skip_ws():
            raise PermanentError(f"line {scan.line()}: unexpected data after the array")
        return
    if first != "{":
        value = scan.value()
        raise PermanentError(f"line {scan.line(scan.start)}: the top-level value is "
                             f"{_type_name(value)}; expected an object, an array of objects, "
                             "or JSON Lines")
    n = 0
    while scan.skip_ws():
        n += 1
        yield _record(scan, n)


# The JSON Lines fast path. Where orjson reads a line and the record holds no float,
# orjson and the standard library read it alike: strings and escapes, integers (exact
# in both; orjson makes a float of an integer past 64 bits), true/false/null, and
# duplicate keys (the last value, in the first key's place). orjson refuses what the
# exact rules refuse (NaN and Infinity, lone surrogates, control characters, a BOM).
# So a line orjson refuses, and a record in which the normalizer meets a float or
# any other trouble (normalize.FloatSeen, TooDeep), is read again the standard way
# (Where.exact), which decides and words the outcome exactly as before.
FAST_PATH = True        # False: every line the standard way (tests compare the two)


def jsonl_records(source: BinaryIO, limits: Limits = DEFAULT_LIMITS,
                  where: Where | None = None) -> Iterator[dict]:
    """One JSON object per line; blank lines are ignored.

    A record orjson read comes with where.text set to its line (else None): the caller
    must give up on it for where.exact() when it holds a float (see above).
    """
    text, counting = text_lines(source, newline=None, limits=limits)
    where = where or Where()
    fast_loads: Callable[[str], Any] = orjson.loads
    fast_error = orjson.JSONDecodeError
    if not FAST_PATH:
        fast_loads = _refuse_all
    line_no = 0
    try:
        for line_no, line in enumerate(text, 1):
            try:
                value = fast_loads(line)
                read_fast = line
            except fast_error:
                value = _decode_line(line, line_no)     # blank, or the exact error
                read_fast = None
            if value.__class__ is not dict:
                if value is _BLANK:
                    continue
                if read_fast is not None:       # a float, or the wording of the exact rules
                    value = _decode_line(line, line_no)
                raise PermanentError(f"line {line_no}: {_type_name(value)}, not an object")
            where.line, where.text = line_no, read_fast
            yield value
    except UnicodeDecodeError as e:
        raise PermanentError(f"{counting.where(e)}: not valid UTF-8 ({e.reason})") from None
    finally:
        text.detach()


_BLANK = object()
_NUMBER_TROUBLE = re.compile(r"\d[.eE]|\d{19}").search
_KEY_ENDS = re.compile(r'"\s*:').findall


def _count_keys(value: Any) -> int:
    n, todo = 0, [value]
    while todo:
        v = todo.pop()
        if v.__class__ is dict:
            n += len(v)
            todo.extend(v.values())
        elif v.__class__ is list:
            todo.extend(v)
    return n


def _refuse_all(line: str):
    raise orjson.JSONDecodeError("the fast path is off", line, 0)


def _decode_line(line: str, line_no: int, loads=_decoder.decode):
    """The standard library's reading of one line (the exact rules), or _BLANK."""
    if not line or line.isspace():
        return _BLANK
    try:
        return loads(line)
    except json.JSONDecodeError as e:
        raise PermanentError(f"line {line_no}, column {e.colno}: invalid JSON: {e.msg}") \
            from None
    except ValueError as e:
        raise PermanentError(f"line {line_no}: {_value_error(e)}") from None
    except RecursionError:
        raise PermanentError(f"line {line_no}: nested deeper than the parser allows "
                             "(MAX_NESTING_DEPTH)") from None
