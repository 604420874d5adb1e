"""The processor's pure core: parse a stream, normalize each record, write JSON Lines.

No AWS here. `process_stream` reads a binary stream incrementally and hands
encoded output to `write` in batches, so memory stays bounded by the largest
single record, never by the file. Anything that cannot be parsed raises
PermanentError with a reason that says where (line, byte offset, column).

Every resource a file can make the processor spend is capped by `Limits` (read
from the environment, see LIMIT_DEFAULTS); breaching a cap is a PermanentError
raised in bounded time and memory, never a MemoryError or a timeout.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import os
import re
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import BinaryIO

READ_SIZE = 1 << 20            # bytes read from the source at a time
FLUSH_LINES = 1024             # output handed to `write` in batches of this many lines

KINDS = {".csv": "csv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "text",
         # Images: handled by images.py (metadata + thumbnail), never gzip-wrapped.
         ".jpg": "image", ".jpeg": "image", ".png": "image", ".gif": "image", ".webp": "image"}
GZIP_SUFFIX = ".gz"            # after a supported suffix: orders.csv.gz, data.jsonl.gz

# --- limits ----------------------------------------------------------------------
# The one place the processor's caps are named. Each is an environment variable of
# the processor function (pipeline.yaml -> deploy); unset means the default here.
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
LIMIT_DEFAULTS: dict[str, int] = {
    "MAX_OBJECT_BYTES": 5 * GiB,          # the object as stored (compressed size for .gz),
                                          # checked from ContentLength before reading
    "MAX_LINE_BYTES": 1 * MiB,            # one CSV / JSON Lines line; for .json one record
    "MAX_FIELD_BYTES": 256 * KiB,         # one CSV field (characters)
    "MAX_COLUMNS": 1000,                  # CSV header width
    "MAX_NESTING_DEPTH": 32,              # JSON objects/arrays inside a record
    "MAX_DECOMPRESSED_BYTES": 10 * GiB,   # what a .gz file may inflate to
    "MAX_COMPRESSION_RATIO": 100,         # decompressed / compressed bytes, for .gz
}
# Ratios are judged only past this much output: tiny files compress oddly well.
RATIO_FLOOR_BYTES = 1 * MiB


@dataclass(frozen=True)
class Limits:
    max_object_bytes: int = LIMIT_DEFAULTS["MAX_OBJECT_BYTES"]
    max_line_bytes: int = LIMIT_DEFAULTS["MAX_LINE_BYTES"]
    max_field_bytes: int = LIMIT_DEFAULTS["MAX_FIELD_BYTES"]
    max_columns: int = LIMIT_DEFAULTS["MAX_COLUMNS"]
    max_nesting_depth: int = LIMIT_DEFAULTS["MAX_NESTING_DEPTH"]
    max_decompressed_bytes: int = LIMIT_DEFAULTS["MAX_DECOMPRESSED_BYTES"]
    max_compression_ratio: int = LIMIT_DEFAULTS["MAX_COMPRESSION_RATIO"]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Limits:
        """Limits from MAX_* variables; a value that is not a positive integer is an error."""
        values = {}
        for f in fields(cls):
            name = f.name.upper()
            raw = (environ.get(name) or "").strip()
            if not raw:
                continue
            try:
                value = int(raw)
            except ValueError:
                value = 0
            if value <= 0:
                raise ValueError(f"{name}={raw!r}: expected a positive whole number "
                                 f"(default {LIMIT_DEFAULTS[name]})")
            values[f.name] = value
        return cls(**values)


DEFAULT_LIMITS = Limits()


class PermanentError(Exception):
    """The input can never be processed as it is; retrying will not help."""


@dataclass
class Counts:
    records_in: int = 0
    records_out: int = 0
    dropped_values: int = 0


def kind_for_key(key: str) -> str | None:
    """csv | json | jsonl | text for a supported suffix (case-insensitive), else None.

    A `.gz` after a supported suffix names the same kind, gzip-compressed.
    """
    compressed = is_gzip(key)
    if compressed:
        key = key[:-len(GZIP_SUFFIX)]
    dot = key.rfind(".")
    if dot < 0 or "/" in key[dot:]:
        return None
    kind = KINDS.get(key[dot:].lower())
    return None if compressed and kind == "image" else kind


def is_gzip(key: str) -> bool:
    return key[-len(GZIP_SUFFIX):].lower() == GZIP_SUFFIX


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


class TooDeep(PermanentError):
    """A record nests objects/arrays deeper than MAX_NESTING_DEPTH (the caller adds where)."""


def normalize(record: dict, max_depth: int = LIMIT_DEFAULTS["MAX_NESTING_DEPTH"]
              ) -> tuple[dict, int]:
    """Drop null/blank/empty values (counted) and snake_case the keys, recursively.

    The record itself is depth 1; a non-empty object or array inside it one more.
    Two keys that become the same name ("User Name", "user_name") are kept apart as
    CSV headers are: the later one gets a suffix, "user_name_2".
    """
    out = {}
    dropped = 0
    skipped = 0
    for key, value in record.items():
        if isinstance(value, dict) and value:
            if max_depth <= 1:
                raise TooDeep(max_depth)
            value, inner = normalize(value, max_depth - 1)
            dropped += inner
            if not value:           # every value inside was empty
                skipped += 1
                continue
        elif isinstance(value, list) and value:
            if max_depth <= 1:
                raise TooDeep(max_depth)
            value, inner = _normalize_list(value, max_depth - 1)
            dropped += inner
        elif _is_empty(value):
            dropped += 1
            skipped += 1
            continue
        out[snake_case(key)] = value
    if len(out) + skipped != len(record):      # rare: two keys became one name
        out = _renamed_apart(record, max_depth)
    return out, dropped


def _renamed_apart(record: dict, max_depth: int) -> dict:
    # The slow path, only for a record whose keys collided: one key at a time, in order.
    out: dict = {}
    for key, value in record.items():
        kept, _ = normalize({key: value}, max_depth)
        if kept:
            ((name, value),) = kept.items()
            candidate, n = name, 1
            while candidate in out:
                n += 1
                candidate = f"{name}_{n}"
            out[candidate] = value
    return out


def _normalize_list(values: list, max_depth: int) -> tuple[list, int]:
    # Elements keep their positions (a list is data, not a record); only the
    # dicts inside are normalized.
    dropped = 0
    out = []
    for value in values:
        if isinstance(value, dict):
            if value:
                if max_depth <= 1:
                    raise TooDeep(max_depth)
                value, inner = normalize(value, max_depth - 1)
                dropped += inner
        elif isinstance(value, list) and value:
            if max_depth <= 1:
                raise TooDeep(max_depth)
            value, inner = _normalize_list(value, max_depth - 1)
            dropped += inner
        out.append(value)
    return out, dropped


# --- output ----------------------------------------------------------------------

def _make_encoder() -> Callable[[object], str]:
    """Compact, non-ASCII-escaping JSON, the encoder built once; NaN/Infinity raise ValueError.

    JSONEncoder.encode builds a new C encoder on every call, which is a third of
    the per-record cost; the C encoder itself can be reused.
    """
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    fallback = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode
    if c_make_encoder is None:
        return fallback

    def default(o):
        raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")

    try:
        encoder = c_make_encoder(None, default, json.encoder.encode_basestring, None, ":", ",",
                                 False, False, False)
        encoder({"probe": [1.5, None, True, "é"]}, 0)
    except TypeError:           # a Python whose C encoder takes other arguments
        return fallback
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
        try:
            line = _encode(record)
        except ValueError:
            # Only a float that overflowed to infinity gets here (1e400): NaN and
            # Infinity literals are refused by the parser already.
            raise PermanentError(f"record {self._counts.records_in}: a number is out of range "
                                 "for a 64-bit float (such as 1e400)") from None
        self.lines.append(line[:-1] + self.suffix)
        if len(self.lines) >= FLUSH_LINES:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            try:
                data = "".join(self.lines).encode("utf-8")
            except UnicodeEncodeError:
                raise PermanentError(self._unencodable()) from None
            self._counts.records_out += len(self.lines)
            self._write(data)
            self.lines.clear()

    def _unencodable(self) -> str:
        # A JSON "\ud800" escape decodes to a lone surrogate, which is not Unicode text.
        for i, line in enumerate(self.lines):
            try:
                line.encode("utf-8")
            except UnicodeEncodeError as e:
                char = line[e.start]
                return (f"output record {self._counts.records_out + i + 1}: a lone surrogate "
                        f"\\u{ord(char):04x} in a string is not valid Unicode")
        return "output is not valid Unicode"


def process_stream(kind: str, source: BinaryIO, write: Callable[[bytes], None],
                   metadata: dict, limits: Limits = DEFAULT_LIMITS,
                   compressed: bool = False,
                   accept: Callable[[dict], bool] | None = None) -> Counts:
    """Parse `source` as `kind`, normalize every record, write JSON Lines to `write`.

    accept: called with each normalized record (not text statistics); False leaves
    the record out of the output (schema.Screen: a rejected record).
    """
    counts = Counts()
    out = _LineWriter(write, metadata, counts)
    if compressed:
        source = _Gunzip(source, limits)
    if kind == "csv":
        _csv(source, out, counts, limits, accept)
    elif kind == "text":
        record = text_stats(source)
        counts.records_in = 1
        out.add(record)
    else:
        where = _Where()
        records = json_records(source, limits, where) if kind == "json" \
            else jsonl_records(source, limits, where)
        depth = limits.max_nesting_depth
        for record in records:
            counts.records_in += 1
            try:
                record, dropped = normalize(record, depth)
            except TooDeep:
                raise PermanentError(f"{where}: nested deeper than {depth} levels "
                                     "(MAX_NESTING_DEPTH)") from None
            counts.dropped_values += dropped
            if record and (accept is None or accept(record)):
                out.add(record)
    out.flush()
    return counts


# --- bytes in --------------------------------------------------------------------

def _check_start(data: bytes) -> None:
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        raise PermanentError("byte 0: UTF-16 byte order mark: the file is UTF-16 (or UTF-32); "
                             "only UTF-8 is supported, save it as UTF-8")


def _nul(offset: int) -> PermanentError:
    return PermanentError(f"byte {offset}: NUL byte: binary or UTF-16 data, not UTF-8 text")


class _Gunzip(io.BufferedIOBase):
    """The decompressed bytes of a gzip stream, with the size and ratio caps enforced.

    GzipFile inflates at most what each read asks for, so a bomb is stopped after
    about RATIO_FLOOR_BYTES of output, having read a few KiB of input.
    """

    def __init__(self, source: BinaryIO, limits: Limits):
        self._compressed = _Counted(source)
        self._gz = gzip.GzipFile(fileobj=self._compressed, mode="rb")
        self._max = limits.max_decompressed_bytes
        self._ratio = limits.max_compression_ratio
        self.total = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = READ_SIZE
        try:
            data = self._gz.read(size)
        except (gzip.BadGzipFile, EOFError, zlib.error) as e:
            raise PermanentError(f"compressed byte {self._compressed.total}: "
                                 f"not a valid gzip stream ({e})") from None
        self.total += len(data)
        if self.total > self._max:
            raise PermanentError(f"decompresses to more than {self._max} bytes "
                                 "(MAX_DECOMPRESSED_BYTES)")
        if self.total > RATIO_FLOOR_BYTES and self.total > self._ratio * self._compressed.total:
            raise PermanentError(f"compression ratio above {self._ratio}:1 after "
                                 f"{self._compressed.total} compressed bytes "
                                 "(MAX_COMPRESSION_RATIO): a decompression bomb?")
        return data

    read1 = read


class _Counted(io.RawIOBase):
    def __init__(self, source: BinaryIO):
        self._source = source
        self.total = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._source.read(size)
        self.total += len(data)
        return data


class _CountingReader(io.BufferedIOBase):
    """Counts the bytes a TextIOWrapper pulls, so a decoding error can name its offset.

    It also enforces MAX_LINE_BYTES on the bytes themselves: a line that never ends
    fails as soon as it is too long, before TextIOWrapper buffers it. Reads are no
    larger than the limit, so a line wholly inside one read is short enough; only
    runs across reads need counting. CR, LF and CRLF all end lines.
    """

    def __init__(self, source: BinaryIO, max_line: int):
        self._source = source
        self._max_line = max_line
        self.before_last = 0        # bytes handed out before the last read
        self.total = 0
        self._run = 0               # bytes since the last line break
        self._breaks = 0            # line breaks in earlier reads, for messages

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > self._max_line:
            size = self._max_line
        data = self._source.read(size)
        if not self.total:
            _check_start(data)
        if b"\0" in data:
            raise _nul(self.total + data.index(b"\0"))
        first = data.find(b"\n")
        cr = data.find(b"\r")
        if cr >= 0 and (first < 0 or cr < first):
            first = cr
        if first < 0:
            self._run += len(data)
            if self._run > self._max_line:
                self._too_long()
        else:
            if self._run + first > self._max_line:
                self._too_long()
            if cr < 0:                      # the common case: LF only
                self._run = len(data) - 1 - data.rfind(b"\n")
            else:
                self._run = len(data) - 1 - max(data.rfind(b"\n"), data.rfind(b"\r"))
                self._breaks += data.count(b"\r") - data.count(b"\r\n")
            self._breaks += data.count(b"\n")
        self.before_last = self.total
        self.total += len(data)
        return data

    read1 = read

    def _too_long(self) -> None:
        # Called before this read is counted: the long line is line _breaks + 1.
        raise PermanentError(f"line {self._breaks + 1}: longer than {self._max_line} bytes "
                             "(MAX_LINE_BYTES)")

    def where(self, e: UnicodeDecodeError) -> str:
        # Exact unless the decoder held back part of a character from the previous
        # read (at most 3 bytes earlier).
        return f"near byte {self.before_last + e.start}"


def _text(source: BinaryIO, newline: str | None, limits: Limits
          ) -> tuple[io.TextIOWrapper, _CountingReader]:
    counting = _CountingReader(source, limits.max_line_bytes)
    return io.TextIOWrapper(counting, encoding="utf-8-sig", newline=newline), counting


# --- CSV -------------------------------------------------------------------------

def _csv(source: BinaryIO, out: _LineWriter, counts: Counts, limits: Limits,
         accept: Callable[[dict], bool] | None = None) -> None:
    text, counting = _text(source, newline="", limits=limits)
    # Process-wide, so set on every call; a worker runs one invocation at a time.
    csv.field_size_limit(limits.max_field_bytes)
    # strict: an unterminated quote is an error, not a field that swallows the file.
    reader = csv.reader(text, strict=True)
    last = 0                                # the line the previous record ended on
    try:
        header = next(reader, None)
        if header is None:
            return
        if len(header) > limits.max_columns:
            raise PermanentError(f"line 1: {len(header)} columns; at most "
                                 f"{limits.max_columns} are allowed (MAX_COLUMNS)")
        names = _header_names(header)
        width = len(names)
        dropped = 0
        last = reader.line_num
        lines, suffix, encode = out.lines, out.suffix, _encode
        for row in reader:
            if not row:                     # blank line
                last = reader.line_num
                continue
            counts.records_in += 1
            if len(row) > width:
                raise PermanentError(
                    f"line {reader.line_num}: {len(row)} fields but the header has {width}")
            record = {n: v for n, v in zip(names, row, strict=False) if v and not v.isspace()}
            dropped += width - len(record)  # empty, blank and missing trailing fields
            if record and (accept is None or accept(record)):
                lines.append(encode(record)[:-1] + suffix)
                if len(lines) >= FLUSH_LINES:
                    out.flush()
            last = reader.line_num
        counts.dropped_values += dropped
    except csv.Error as e:
        raise PermanentError(_csv_error(str(e), last + 1, reader.line_num, limits)) from None
    except UnicodeDecodeError as e:
        raise PermanentError(f"{counting.where(e)}: not valid UTF-8 ({e.reason})") from None
    finally:
        text.detach()


def _csv_error(message: str, start: int, line: int, limits: Limits) -> str:
    if message == "unexpected end of data":
        return (f"line {start}: unterminated quoted field (still open at the end of the file, "
                f"line {line})")
    if message.startswith("field larger than field limit"):
        return (f"line {start}: a field longer than {limits.max_field_bytes} characters "
                "(MAX_FIELD_BYTES); an unterminated quote?")
    where = f"line {start}" if start == line else f"lines {start}-{line}"
    return f"{where}: malformed CSV: {message}"


def _header_names(header: list[str]) -> list[str]:
    # Duplicate headers are suffixed in column order ("id", "id_2"), not refused: the
    # values are positional, so nothing is ambiguous, and exports often repeat a name.
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

class _NotANumber(ValueError):
    """NaN, Infinity or -Infinity: accepted by Python's json, not JSON (RFC 8259)."""


def _refuse_constant(name: str):
    raise _NotANumber(name)


_NON_WS = re.compile(r"[^ \t\n\r]")
# Duplicate keys: the last value wins, as in Python's json, JavaScript's JSON.parse and
# most parsers (RFC 8259 leaves it to the parser); catching them would need a
# Python-level hook on every object.
_decoder = json.JSONDecoder(parse_constant=_refuse_constant)
_raw_decode = _decoder.raw_decode


def _value_error(e: ValueError) -> str:
    if isinstance(e, _NotANumber):
        return f"{e} is not valid JSON (NaN and Infinity are not JSON numbers)"
    if "integer string conversion" in str(e):
        return f"an integer with more than {_max_int_digits()} digits"
    return f"invalid JSON: {e}"


def _max_int_digits() -> int:
    import sys
    return sys.get_int_max_str_digits() if hasattr(sys, "get_int_max_str_digits") else 4300


class _Where:
    """Where the record being handled came from, for error messages."""

    def __init__(self):
        self.line = 0
        self.scan: _JsonScanner | None = None

    def __str__(self) -> str:
        return f"line {self.scan.line(self.scan.start) if self.scan else self.line}"


class _Utf8Chunks:
    """UTF-8 text of a binary stream in chunks; a bad byte raises PermanentError with its offset."""

    def __init__(self, source: BinaryIO):
        self._source = source
        self.bytes_read = 0

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        while True:
            data = self._source.read(READ_SIZE)
            if not self.bytes_read:
                _check_start(data)
            if b"\0" in data:
                raise _nul(self.bytes_read + data.index(b"\0"))
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

    def __init__(self, source: BinaryIO, max_record: int = LIMIT_DEFAULTS["MAX_LINE_BYTES"]):
        self._chunks = iter(_Utf8Chunks(source))
        self.buf = ""
        self.pos = 0
        self.eof = False
        self._lines_before = 0       # newlines in text already discarded from buf
        self.start = 0               # where the last value began, for error messages
        self._max_record = max_record

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
        self.more(at_least=min(max(READ_SIZE, pending), self._max_record + 1))

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


def json_records(source: BinaryIO, limits: Limits = DEFAULT_LIMITS,
                 where: _Where | None = None) -> Iterator[dict]:
    """Objects from a JSON array, a single object, or concatenated objects / JSON Lines."""
    scan = _JsonScanner(source, limits.max_line_bytes)
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
        value = scan.value()
        if not isinstance(value, dict):
            raise PermanentError(f"line {scan.line(scan.start)}: record {n} is "
                                 f"{_type_name(value)}, not an object")
        yield value


def jsonl_records(source: BinaryIO, limits: Limits = DEFAULT_LIMITS,
                  where: _Where | None = None) -> Iterator[dict]:
    """One JSON object per line; blank lines are ignored."""
    text, counting = _text(source, newline=None, limits=limits)
    loads = _decoder.decode
    where = where or _Where()
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
            except ValueError as e:
                raise PermanentError(f"line {line_no}: {_value_error(e)}") from None
            except RecursionError:
                raise PermanentError(f"line {line_no}: nested deeper than the parser allows "
                                     "(MAX_NESTING_DEPTH)") from None
            if value.__class__ is not dict:
                raise PermanentError(f"line {line_no}: {_type_name(value)}, not an object")
            where.line = line_no
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
