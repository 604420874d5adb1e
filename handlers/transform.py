"""The processor's pure core: parse a stream, normalize each record, write JSON Lines.

No AWS here. `process_stream` reads a binary stream incrementally and hands
encoded output to `write` in batches, so memory stays bounded by the largest
single record, never by the file. Anything that cannot be parsed raises
PermanentError with a reason that says where.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

READ_SIZE = 1 << 20            # bytes read from the source at a time
FLUSH_LINES = 1024             # output handed to `write` in batches of this many lines

KINDS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "text"}


class PermanentError(Exception):
    """The input can never be processed as it is; retrying will not help."""


@dataclass
class Counts:
    records_in: int = 0
    records_out: int = 0
    dropped_values: int = 0


def kind_for_key(key: str) -> str | None:
    """csv | json | jsonl | text for a supported suffix (case-insensitive), else None."""
    dot = key.rfind(".")
    if dot < 0 or "/" in key[dot:]:
        return None
    return KINDS.get(key[dot:].lower())


# --- field names -----------------------------------------------------------------

_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")      # "HTTPStatus" -> "HTTP_Status"
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")           # "firstName"  -> "first_Name"
_SEPARATORS = re.compile(r"[\W_]+")                 # spaces, hyphens, punctuation
_names: dict[str, str] = {}


def snake_case(name: str) -> str:
    """'User Name' -> 'user_name', 'HTTPStatus Code' -> 'http_status_code'. Cached."""
    try:
        return _names[name]
    except KeyError:
        pass
    converted = _CAMEL.sub(r"\1_\2", _ACRONYM.sub(r"\1_\2", name.strip()))
    converted = _SEPARATORS.sub("_", converted).strip("_").lower() or "_"
    if len(_names) < 100_000:   # JSON keys are data; don't let odd files grow the cache forever
        _names[name] = converted
    return converted


# --- records ---------------------------------------------------------------------

def _is_empty(value) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value or value.isspace()
    if isinstance(value, (list, dict)):
        return not value
    return False


def normalize(record: dict) -> tuple[dict, int]:
    """Drop null/blank/empty values (counted) and snake_case the keys, recursively."""
    out = {}
    dropped = 0
    for key, value in record.items():
        if isinstance(value, dict) and value:
            value, inner = normalize(value)
            dropped += inner
            if not value:           # every value inside was empty
                continue
        elif isinstance(value, list) and value:
            value, inner = _normalize_list(value)
            dropped += inner
        elif _is_empty(value):
            dropped += 1
            continue
        out[snake_case(key)] = value
    return out, dropped


def _normalize_list(values: list) -> tuple[list, int]:
    # Elements keep their positions (a list is data, not a record); only the
    # dicts inside are normalized.
    dropped = 0
    out = []
    for value in values:
        if isinstance(value, dict):
            value, inner = normalize(value)
            dropped += inner
        out.append(value)
    return out, dropped


# --- output ----------------------------------------------------------------------

def _make_encoder() -> Callable[[object], str]:
    """Compact, non-ASCII-escaping JSON, the encoder built once.

    JSONEncoder.encode builds a new C encoder on every call, which is a third of
    the per-record cost; the C encoder itself can be reused.
    """
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is None:
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

    def default(o):
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")

    try:
        encoder = c_make_encoder(None, default, json.encoder.encode_basestring, None, ":", ",",
                                 False, False, True)
        encoder({"probe": [1.5, None, True, "é"]}, 0)
    except TypeError:           # a Python whose C encoder takes other arguments
        return json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    return lambda o: "".join(encoder(o, 0))


_encode = _make_encoder()


class _LineWriter:
    """Turns records into JSON Lines and hands them to `write` in batches."""

    def __init__(self, write: Callable[[bytes], None], metadata: dict, counts: Counts):
        # Every record gets the same _metadata: encode it once and splice it in.
        self.suffix = ',"_metadata":' + _encode(metadata) + "}\n"
        self._write = write
        self._counts = counts
        self.lines: list[str] = []

    def add(self, record: dict) -> None:
        self.lines.append(_encode(record)[:-1] + self.suffix)
        if len(self.lines) >= FLUSH_LINES:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            self._counts.records_out += len(self.lines)
            self._write("".join(self.lines).encode("utf-8"))
            self.lines.clear()


def process_stream(kind: str, source: BinaryIO, write: Callable[[bytes], None],
                   metadata: dict) -> Counts:
    """Parse `source` as `kind`, normalize every record, write JSON Lines to `write`."""
    counts = Counts()
    out = _LineWriter(write, metadata, counts)
    if kind == "csv":
        _csv(source, out, counts)
    elif kind == "text":
        record = text_stats(source)
        counts.records_in = 1
        out.add(record)
    else:
        records = json_records(source) if kind == "json" else jsonl_records(source)
        for record in records:
            counts.records_in += 1
            record, dropped = normalize(record)
            counts.dropped_values += dropped
            if record:
                out.add(record)
    out.flush()
    return counts


class _CountingReader(io.BufferedIOBase):
    """Counts the bytes a TextIOWrapper pulls, so a decoding error can name its offset."""

    def __init__(self, source: BinaryIO):
        self._source = source
        self.before_last = 0        # bytes handed out before the last read
        self.total = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.before_last = self.total
        self.total += len(data)
        return data

    read1 = read

    def where(self, e: UnicodeDecodeError) -> str:
        # Exact unless the decoder held back part of a character from the previous
        # read (at most 3 bytes earlier).
        return f"near byte {self.before_last + e.start}"


def _text(source: BinaryIO, newline: str | None) -> tuple[io.TextIOWrapper, _CountingReader]:
    counting = _CountingReader(source)
    return io.TextIOWrapper(counting, encoding="utf-8-sig", newline=newline), counting


# --- CSV -------------------------------------------------------------------------

def _csv(source: BinaryIO, out: _LineWriter, counts: Counts) -> None:
    text, counting = _text(source, newline="")
    reader = csv.reader(text)
    try:
        header = next(reader, None)
        if header is None:
            return
        names = _header_names(header)
        width = len(names)
        dropped = 0
        lines, suffix, encode = out.lines, out.suffix, _encode
        for row in reader:
            if not row:                     # blank line
                continue
            counts.records_in += 1
            if len(row) > width:
                raise PermanentError(
                    f"line {reader.line_num}: {len(row)} fields but the header has {width}")
            record = {n: v for n, v in zip(names, row, strict=False) if v and not v.isspace()}
            dropped += width - len(record)  # empty, blank and missing trailing fields
            if record:
                lines.append(encode(record)[:-1] + suffix)
                if len(lines) >= FLUSH_LINES:
                    out.flush()
        counts.dropped_values += dropped
    except csv.Error as e:
        raise PermanentError(f"line {reader.line_num}: malformed CSV: {e}") from None
    except UnicodeDecodeError as e:
        raise PermanentError(f"{counting.where(e)}: not valid UTF-8 ({e.reason})") from None
    finally:
        text.detach()


def _header_names(header: list[str]) -> list[str]:
    names: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(header, 1):
        name = snake_case(raw) if raw.strip() else f"column_{i}"
        base, n = name, 1
        while name in seen:                 # duplicate headers must not overwrite each other
            n += 1
            name = f"{base}_{n}"
        seen.add(name)
        names.append(name)
    return names


# --- JSON ------------------------------------------------------------------------

_NON_WS = re.compile(r"[^ \t\n\r]")
_raw_decode = json.JSONDecoder().raw_decode


class _Utf8Chunks:
    """UTF-8 text of a binary stream in chunks; a bad byte raises PermanentError with its offset."""

    def __init__(self, source: BinaryIO):
        self._source = source
        self.bytes_read = 0

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        while True:
            data = self._source.read(READ_SIZE)
            pending = len(decoder.getstate()[0])
            try:
                text = decoder.decode(data, final=not data)
            except UnicodeDecodeError as e:
                raise PermanentError(f"byte {self.bytes_read - pending + e.start}: "
                                     f"not valid UTF-8 ({e.reason})") from None
            self.bytes_read += len(data)
            if text:
                yield text
            if not data:
                return


class _JsonScanner:
    """A growing text buffer over the source with line tracking for error messages."""

    def __init__(self, source: BinaryIO):
        self._chunks = iter(_Utf8Chunks(source))
        self.buf = ""
        self.pos = 0
        self.eof = False
        self._lines_before = 0       # newlines in text already discarded from buf
        self.start = 0               # where the last value began, for error messages

    def more(self, at_least: int = 0) -> bool:
        """Read more text (at least `at_least` chars if available); False at end of input."""
        if self.eof:
            return False
        self._lines_before += self.buf.count("\n", 0, self.pos)
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
                # Double the unconsumed buffer each time, so a large value costs O(n).
                self.more(at_least=max(READ_SIZE, len(self.buf) - self.pos))
                continue
            if end == len(self.buf) and not self.eof and not isinstance(value, (dict, list, str)):
                # A number or literal at the buffer's edge may continue in the next chunk.
                self.more()
                continue
            self.pos = end
            return value

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


def json_records(source: BinaryIO) -> Iterator[dict]:
    """Objects from a JSON array, a single object, or concatenated objects / JSON Lines."""
    scan = _JsonScanner(source)
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
                value = scan.value()
                if not isinstance(value, dict):
                    raise PermanentError(f"line {scan.line(scan.start)}: record {n} is "
                                         f"{_type_name(value)}, not an object")
                yield value
                c = scan.skip_ws()
                if c == ",":
                    scan.pos += 1
                    scan.skip_ws()
                    continue
                if c == "]":
                    scan.pos += 1
                    break
                where = f"line {scan.line()}"
                raise PermanentError(f"{where}: expected ',' or ']' after record {n}"
                                     if c else f"{where}: unterminated array after record {n}")
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
        value = scan.value()
        if not isinstance(value, dict):
            raise PermanentError(f"line {scan.line(scan.start)}: record {n} is "
                                 f"{_type_name(value)}, not an object")
        yield value


def jsonl_records(source: BinaryIO) -> Iterator[dict]:
    """One JSON object per line; blank lines are ignored."""
    text, counting = _text(source, newline=None)
    loads = json.loads
    line_no = 0
    try:
        for line_no, line in enumerate(text, 1):
            if not line or line.isspace():
                continue
            try:
                value = loads(line)
            except json.JSONDecodeError as e:
                raise PermanentError(f"line {line_no}, column {e.colno}: invalid JSON: {e.msg}") \
                    from None
            if value.__class__ is not dict:
                raise PermanentError(f"line {line_no}: {_type_name(value)}, not an object")
            yield value
    except UnicodeDecodeError as e:
        raise PermanentError(f"{counting.where(e)}: not valid UTF-8 ({e.reason})") from None
    finally:
        text.detach()


# --- text ------------------------------------------------------------------------

def text_stats(source: BinaryIO) -> dict:
    """Line, word, character and byte counts of a UTF-8 text, streamed."""
    lines = words = chars = blank = longest = 0
    length = 0                  # characters in the line in progress
    has_text = False            # has the line in progress any non-space character?
    in_word = False             # did the previous chunk end inside a word?
    last = "\n"
    chunks = _Utf8Chunks(source)
    for chunk in chunks:
        chars += len(chunk)
        words += len(chunk.split())
        if in_word and not chunk[0].isspace():
            words -= 1          # one word split across two chunks
        in_word = not chunk[-1].isspace()
        parts = chunk.split("\n")
        for part in parts[:-1]:             # each of these ended a line
            lines += 1
            longest = max(longest, length + len(part))
            if not has_text and (not part or part.isspace()):
                blank += 1
            length, has_text = 0, False
        tail = parts[-1]
        length += len(tail)
        has_text = has_text or (bool(tail) and not tail.isspace())
        last = chunk[-1]
    if last != "\n":                        # a last line without a newline still counts
        lines += 1
        longest = max(longest, length)
    return {"lines": lines, "words": words, "characters": chars, "bytes": chunks.bytes_read,
            "blank_lines": blank, "longest_line": longest}
