"""Plain text in: one record of statistics about the whole file, not one per line."""

from __future__ import annotations

from typing import BinaryIO

from processing.byte_readers import Utf8Chunks


def text_stats(source: BinaryIO, read_size: int) -> dict:
    """Line, word, character and byte counts of a UTF-8 text, streamed."""
    lines = words = chars = blank = longest = 0
    length = 0                  # characters in the line in progress
    has_text = False            # has the line in progress any non-space character?
    in_word = False             # did the previous chunk end inside a word?
    last = "\n"
    chunks = Utf8Chunks(source, read_size)
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
