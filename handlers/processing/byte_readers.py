"""Bytes in: gunzip with the size and ratio caps, and UTF-8 decoding that knows its offset.

Every reader here fails with a PermanentError that names a byte offset (or a
line), so a bad file is reported where it is bad.
"""

from __future__ import annotations

import codecs
import io
import zlib
from collections.abc import Iterator
from typing import Any, BinaryIO

from processing.limits import RATIO_FLOOR_BYTES, Limits, PermanentError


def _check_start(data: bytes) -> None:
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        raise PermanentError("byte 0: UTF-16 byte order mark: the file is UTF-16 (or UTF-32); "
                             "only UTF-8 is supported, save it as UTF-8")


def _nul(offset: int) -> PermanentError:
    return PermanentError(f"byte {offset}: NUL byte: binary or UTF-16 data, not UTF-8 text")


GZIP_MAGIC = b"\x1f\x8b"
INPUT_STEP = 64 * 1024      # compressed bytes read from the source at a time
# Decompressed bytes inflated (and checked) ahead of the parser at a time. Small, so at
# most this much of a bomb hidden behind ordinary data is ever parsed.
STEP_BYTES = 128 * 1024


class Gunzip(io.BufferedIOBase):
    """The decompressed bytes of a gzip stream (one member or several), with the size and
    ratio caps enforced before the parser sees a byte.

    It inflates ahead in steps of STEP_BYTES of output (so memory stays at about one
    step) and counts exactly the compressed bytes each step consumed. A step is refused
    when the file so far (past RATIO_FLOOR_BYTES), or the whole step by itself, inflated
    more than MAX_COMPRESSION_RATIO times: a bomb fails after one step of inflating, in
    milliseconds, even behind a prefix of ordinary data that dilutes the whole-file
    ratio, instead of after its output was parsed record by record.
    """

    def __init__(self, source: BinaryIO, limits: Limits, read_size: int):
        self._source = source
        self._max = limits.max_decompressed_bytes
        self._ratio = limits.max_compression_ratio
        self._read_size = read_size
        self._inflater: Any = None  # zlib's decompress object of the current member
        self._input = b""             # read from the source, not yet consumed by zlib
        self._fed = 0                 # bytes read from the source
        self._done = False
        self._buffer = b""
        self._pos = 0
        self.total = 0                # decompressed bytes so far

    @property
    def consumed(self) -> int:
        return self._fed - len(self._input)

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._read_size
        if self._pos >= len(self._buffer):
            self._buffer, self._pos = self._step(), 0
        data = self._buffer[self._pos:self._pos + size]
        self._pos += len(data)
        return data

    read1 = read

    def _step(self) -> bytes:
        before = self.consumed
        try:
            data = self._inflate(STEP_BYTES)
        except zlib.error as e:
            raise PermanentError(f"compressed byte {self.consumed}: not a valid gzip stream "
                                 f"({e})") from None
        self.total += len(data)
        if self.total > self._max:
            raise PermanentError(f"decompresses to more than {self._max} bytes "
                                 "(MAX_DECOMPRESSED_BYTES)")
        whole = self.total > RATIO_FLOOR_BYTES and self.total > self._ratio * self.consumed
        step = len(data) >= STEP_BYTES and len(data) > self._ratio * (self.consumed - before)
        if whole or step:
            raise PermanentError(f"compression ratio above {self._ratio}:1 after "
                                 f"{self.consumed} compressed bytes "
                                 "(MAX_COMPRESSION_RATIO): a decompression bomb?")
        return data

    def _more(self) -> bool:
        data = self._source.read(INPUT_STEP)
        self._fed += len(data)
        self._input += data
        return bool(data)

    def _inflate(self, limit: int) -> bytes:
        """Up to `limit` decompressed bytes; b"" at the end of the last member."""
        parts, produced = [], 0
        while produced < limit and not self._done:
            if self._inflater is None and not self._next_member():
                break
            if not self._input and not self._more():
                raise PermanentError(f"compressed byte {self._fed}: not a valid gzip stream "
                                     "(Compressed file ended before the end-of-stream marker "
                                     "was reached)")
            inflater = self._inflater
            data = inflater.decompress(self._input, limit - produced)
            self._input = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            if inflater.eof:
                self._inflater = None
            parts.append(data)
            produced += len(data)
        return b"".join(parts)

    def _next_member(self) -> bool:
        """Start the next gzip member; False at the end of the stream. As GzipFile does,
        zero bytes after a member are padding and anything else must be a member."""
        while True:
            self._input = self._input.lstrip(b"\0")
            if len(self._input) >= 2 or not self._more():
                break
        if not self._input:
            self._done = True
            return False
        if self._input[:2] != GZIP_MAGIC:
            raise PermanentError(f"compressed byte {self.consumed + 2}: not a valid gzip "
                                 f"stream (Not a gzipped file ({self._input[:2]!r}))")
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return True


class CountingReader(io.BufferedIOBase):
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


def text_lines(source: BinaryIO, newline: str | None, limits: Limits
               ) -> tuple[io.TextIOWrapper, CountingReader]:
    """UTF-8 text of `source` for line-by-line readers, and the reader that counts its bytes."""
    counting = CountingReader(source, limits.max_line_bytes)
    return io.TextIOWrapper(counting, encoding="utf-8-sig", newline=newline), counting  # type: ignore[arg-type]


class Utf8Chunks:
    """UTF-8 text of a binary stream in chunks; a bad byte raises PermanentError with its offset."""

    def __init__(self, source: BinaryIO, read_size: int):
        self._source = source
        self._read_size = read_size
        self.bytes_read = 0

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8-sig")()
        while True:
            data = self._source.read(self._read_size)
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
