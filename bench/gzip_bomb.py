"""How long the processor takes to refuse a gzip bomb, next to inflating it whole.

    python bench/gzip_bomb.py

Four crafted files through the processor core (handlers/processing/transform.py, as .csv.gz or
.jsonl.gz): a plain bomb (1 GiB of short lines from about 3 MB, in 1,024 gzip
members), 100 MB of one-character CSV rows (cheap to inflate, slow to parse), a bomb
behind 20,000 ordinary random rows that dilute the whole-file ratio, and 200 MB of
blank JSON Lines. Each prints the seconds until FAILED (and
the reason) beside the seconds zlib alone takes to inflate the same bytes: the check
must stop long before a full inflate would, and long before parsing it would.
"""

from __future__ import annotations

import gzip
import io
import random
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "handlers"))

from processing.transform import PermanentError, process_stream  # noqa: E402


def bombs() -> dict[str, tuple[str, bytes]]:
    member = gzip.compress((b"x" * 63 + b"\n") * (1 << 14), 9)        # 1 MiB, ~1000:1
    rng = random.Random(21)
    rows = b"n\n" + b"".join(b"%d\n" % rng.getrandbits(48) for _ in range(20_000))
    return {
        "plain bomb, 1 GiB from 3 MB": ("csv", gzip.compress(b"a\n") + member * 1024),
        "100 MB of one-character CSV rows": ("csv", gzip.compress(b"a\n" + b"1\n" * (50 << 20),
                                                                  9)),
        "bomb behind 20,000 ordinary rows": ("csv", gzip.compress(rows)
                                             + gzip.compress(b"1\n" * 20_000_000, 9)),
        "200 MB of blank JSON Lines": ("jsonl", gzip.compress(b"\n" * (200 << 20), 9)),
    }


def inflate_all(data: bytes) -> float:
    started = time.perf_counter()
    rest = data
    while rest:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        while rest and not d.eof:
            d.decompress(rest, 1 << 20)
            rest = d.unconsumed_tail
        rest = d.unused_data
    return time.perf_counter() - started


def main() -> None:
    for name, (kind, data) in bombs().items():
        started = time.perf_counter()
        try:
            process_stream(kind, io.BytesIO(data), lambda b: None, {}, compressed=True)
            outcome = "PROCESSED (not refused!)"
        except PermanentError as e:
            outcome = f"FAILED: {e}"
        refused = time.perf_counter() - started
        print(f"{name} ({len(data):,} bytes): refused in {refused:.3f} s; "
              f"zlib alone inflates it in {inflate_all(data):.3f} s\n    {outcome}")


if __name__ == "__main__":
    main()
