"""The processor core's output formats side by side: bytes on disk and records/s.

    python bench/formats.py [--rows 500000] [--repeat 3]

The same records as bench/transform.py (a CSV and a JSON Lines file, generated under
bench/out/ and reused) go through transform.process_stream once per output format
(output_format.Encoding, as the processor wires it), written to a local file: JSON
Lines, gzipped JSON Lines, Parquet with each compression, and, for the CSV, Parquet
typed by a record schema (age an integer, signup_date a date; the schema's validator
runs too, as in the processor). No S3: this is the writers' cost and size alone
(bench/memory.py measures the whole handler against a moto server). records/s is the
median of --repeat runs over the input's records.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "handlers"))
sys.path.insert(0, str(ROOT / "bench"))

from processing import schema  # noqa: E402
from processing.output_format import Encoding, OutputFormat  # noqa: E402
from processing.transform import process_stream  # noqa: E402
from transform import META, OUT, generate  # noqa: E402

SCHEMA = schema.Schema(suffix=".csv", fields={"age": {"type": "integer"},
                                               "signup_date": {"type": "date"}})
VARIANTS = [("jsonl", OutputFormat(), None), ("jsonl.gz", OutputFormat(format="jsonl.gz"), None),
            ("parquet zstd", OutputFormat(format="parquet"), None),
            ("parquet snappy", OutputFormat(format="parquet", compression="snappy"), None),
            ("parquet gzip", OutputFormat(format="parquet", compression="gzip"), None),
            ("parquet zstd, schema", OutputFormat(format="parquet"), SCHEMA)]


def run(kind: str, path: Path, fmt: OutputFormat, found: schema.Schema | None,
        out: Path) -> tuple[float, int, int]:
    """(seconds, records in, bytes written)."""
    rejected = []
    validator = schema.Validator(found, strings=kind == "csv") if found else None
    screen = schema.Screen(validator, lambda: None)
    screen.reject = lambda record, reasons: rejected.append(reasons)   # counted, not kept
    encoding = Encoding(fmt, declared=found.fields if found else None, strings=kind == "csv",
                        reject=screen.reject)
    start = time.perf_counter()
    with open(path, "rb") as source, open(out, "wb") as sink:
        counts = process_stream(kind, source, sink.write, META,
                                accept=screen.accept if validator else None,
                                records=encoding.records)
        encoding.finish()
    seconds = time.perf_counter() - start
    if rejected:
        raise SystemExit(f"{kind} {fmt}: {len(rejected)} records rejected: {rejected[0]}")
    return seconds, counts.records_in, out.stat().st_size


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=500_000)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args()
    paths = generate(a.rows)
    print(f"{'input':>6} {'output':>21} {'bytes on disk':>14} {'vs input':>8} "
          f"{'vs jsonl':>8} {'records/s':>10}")
    for kind, path in paths.items():
        base = None
        for name, fmt, found in VARIANTS:
            if found is not None and kind != "csv":
                continue
            out = OUT / f"formats-{kind}{fmt.extension}"
            runs = sorted(run(kind, path, fmt, found, out) for _ in range(a.repeat))
            seconds, records, size = runs[len(runs) // 2]
            base = base or size
            print(f"{kind:>6} {name:>21} {size:>14,} {size / path.stat().st_size:>7.2f}x "
                  f"{size / base:>7.2f}x {records / seconds:>10,.0f}", flush=True)
            out.unlink()
        print(f"{kind:>6} {'(input)':>21} {path.stat().st_size:>14,}")


if __name__ == "__main__":
    main()
