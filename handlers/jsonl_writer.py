"""The processor's output: records as compact JSON Lines, handed on in batches, and counted."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from limits import PermanentError


@dataclass
class Counts:
    records_in: int = 0
    records_out: int = 0
    dropped_values: int = 0


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
        self.suffix = ',"_metadata":' + encode_json(metadata) + "}\n"
        self.flush_lines = flush_lines
        self._write = write
        self._counts = counts
        self.lines: list[str] = []

    def add(self, record: dict) -> None:
        try:
            line = encode_json(record)
        except ValueError:
            # Only a float that overflowed to infinity gets here (1e400): NaN and
            # Infinity literals are refused by the parser already.
            raise PermanentError(f"record {self._counts.records_in}: a number is out of range "
                                 "for a 64-bit float (such as 1e400)") from None
        self.lines.append(line[:-1] + self.suffix)
        if len(self.lines) >= self.flush_lines:
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
