"""The processor's output: records as compact JSON Lines, handed on in batches, and counted.

Two encoders, one output. A CSV record holds only strings, which orjson encodes
byte for byte as json.dumps(ensure_ascii=False, separators=(",", ":")) does, at
about twice the speed of the whole per-row loop. So does a JSON Lines record
without floats that orjson read (json_reader.jsonl_records: no long integers then).
Other records parsed from JSON keep the standard library's C encoder: orjson
spells floats differently (1e16, not 1e+16), writes infinity as null instead of
refusing it and refuses integers past 64 bits, so the output would change with
the encoder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import orjson

from processing.limits import PermanentError

encode_strings = orjson.dumps   # a record whose keys and values are all str -> UTF-8 JSON


@dataclass
class Counts:
    records_in: int = 0
    records_out: int = 0
    dropped_values: int = 0


class RecordWriter(Protocol):
    """What the readers fill: LineWriter here, parquet_writer.RowGroups for Parquet."""

    def add(self, record: dict) -> None: ...

    def add_plain(self, record: dict) -> None:
        """add() for a record orjson read: strings, booleans, nulls, 64-bit integers."""

    def flush(self) -> None: ...


# (write, metadata, counts, flush_lines) -> the writer of one file's output: LineWriter
# itself, or output_format.Encoding.records for another format.
MakeWriter = Callable[[Callable[[bytes], None], dict, Counts, int], RecordWriter]


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


encode_json = _make_encoder()


class LineWriter:
    """Turns records into JSON Lines and hands them to `write` every `flush_lines` lines."""

    def __init__(self, write: Callable[[bytes], None], metadata: dict, counts: Counts,
                 flush_lines: int):
        # Every record gets the same _metadata: encode it once and splice it in.
        self.suffix = (',"_metadata":' + encode_json(metadata) + "}\n").encode("utf-8")
        self.flush_lines = flush_lines
        self._write = write
        self._counts = counts
        self.lines: list[bytes] = []

    def add(self, record: dict) -> None:
        try:
            line = encode_json(record)
        except ValueError:
            # Only a float that overflowed to infinity gets here (1e400): NaN and
            # Infinity literals are refused by the parser already.
            raise PermanentError(f"record {self._counts.records_in}: a number is out of range "
                                 "for a 64-bit float (such as 1e400)") from None
        try:
            encoded = line.encode("utf-8")
        except UnicodeEncodeError as e:
            # A JSON "\ud800" escape decodes to a lone surrogate, which is not Unicode text.
            raise PermanentError(
                f"output record {self._counts.records_out + len(self.lines) + 1}: a lone "
                f"surrogate \\u{ord(line[e.start]):04x} in a string is not valid Unicode"
            ) from None
        self.lines.append(encoded[:-1] + self.suffix)
        if len(self.lines) >= self.flush_lines:
            self.flush()

    def add_plain(self, record: dict) -> None:
        """add() for a record of strings, booleans, nulls and integers of at most 64 bits
        (orjson refuses longer ones: then add() writes it)."""
        try:
            encoded = encode_strings(record)
        except orjson.JSONEncodeError:      # nested past orjson's 254 levels
            self.add(record)
            return
        self.lines.append(encoded[:-1] + self.suffix)
        if len(self.lines) >= self.flush_lines:
            self.flush()

    def flush(self) -> None:
        if self.lines:
            self._counts.records_out += len(self.lines)
            self._write(b"".join(self.lines))
            self.lines.clear()
