"""Bytes in: gunzip with the size and ratio caps, and UTF-8 decoding that knows its offset.

Every reader here fails with a PermanentError that names a byte offset (or a
line), so a bad file is reported where it is bad.
"""

from __future__ import annotations

import codecs
import gzip
import io
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from limits import RATIO_FLOOR_BYTES, Limits, PermanentError


def _check_start(data: bytes) -> None:
    if data[:2] in (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE):
        raise PermanentError("byte 0: UTF-16 byte order mark: the file is UTF-16 (or UTF-32); "
                             "only UTF-8 is supported, save it as UTF-8")


def _nul(offset: int) -> PermanentError:
    return PermanentError(f"byte {offset}: NUL byte: binary or UTF-16 data, not UTF-8 text")


class Gunzip(io.BufferedIOBase):
    """The decompressed bytes of a gzip stream, with the size and ratio caps enforced.

    GzipFile inflates at most what each read asks for, so a bomb is stopped after
    about RATIO_FLOOR_BYTES of output, having read a few KiB of input.
    """

    def __init__(self, source: BinaryIO, limits: Limits, read_size: int):
        self._compressed = _Counted(source)
        self._gz = gzip.GzipFile(fileobj=self._compressed, mode="rb")
        self._max = limits.max_decompressed_bytes
        self._ratio = limits.max_compression_ratio
        self._read_size = read_size
        self.total = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = self._read_size
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
    return io.TextIOWrapper(counting, encoding="utf-8-sig", newline=newline), counting


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
