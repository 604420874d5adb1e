"""`pipectl reconcile` at 10,000 rows against a moto server: paged listings vs one call per row.

    python bench/reconcile.py [--rows 10000] [--naive-rows 1000]

The pipeline is deployed into a moto server, then seeded as the processor leaves it:
N PROCESSED rows (with their output ETag), N outputs under processed/ and N originals
under completed/, plus one output deleted and one original without a row, so the run
has something to find. It prints pipectl's time and API calls for all N rows, and beside
it the obvious implementation (a HeadObject per output and a GetItem per original)
timed on M of them against the same server, as rates: moto is slow (DESIGN.md), so
the ratio, not the absolute time, is the figure.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scratch_pipeline import scratch_pipeline  # noqa: E402 - bench/ is not a package

from pipectl import config as config_module  # noqa: E402
from pipectl.aws.session import Aws  # noqa: E402
from pipectl.deploy import engine  # noqa: E402
from pipectl.local.emulator import atomic_dynamodb, lifecycle_size_filters  # noqa: E402
from pipectl.naming import Names  # noqa: E402
from pipectl.ops.reconcile import reconcile  # noqa: E402

SERVICES = ("s3", "dynamodb")


def seed(aws: Aws, names: Names, rows: int) -> list[tuple[str, str, str]]:
    """(row key, output key, completed key) per PROCESSED row, written as the processor would
    (on 8 threads: seeding is not what is measured)."""
    s3, ddb = aws.client("s3"), aws.client("dynamodb")
    raw, processed = names.bucket("raw"), names.bucket("processed")

    def one(i: int) -> tuple[tuple[str, str, str], dict]:
        key = f"incoming/bench/{i:05d}.csv"
        output, done = f"processed/2030/01/01/bench/{i:05d}.jsonl", f"completed/bench/{i:05d}.csv"
        etag = s3.put_object(Bucket=processed, Key=output, Body=b'{"id":"%d"}\n' % i)["ETag"]
        s3.put_object(Bucket=raw, Key=done, Body=b"id\n%d\n" % i)
        return (key, output, done), {
            "object_key": {"S": key}, "status": {"S": "PROCESSED"},
            "updated_at": {"S": f"2030-01-01T00:00:{i % 60:02d}.{i:06d}+00:00"},
            "output": {"S": f"s3://{processed}/{output}"}, "output_etag": {"S": etag},
            "location": {"S": done}, "etag": {"S": '"source"'}}

    with ThreadPoolExecutor(8) as pool:
        seeded = list(pool.map(one, range(rows)))
    items = [item for _, item in seeded]
    for first in range(0, len(items), 25):
        ddb.batch_write_item(RequestItems={names.results_table: [
            {"PutRequest": {"Item": item}} for item in items[first:first + 25]]})
    made = [m for m, _ in seeded]
    s3.delete_object(Bucket=processed, Key=made[0][1])
    s3.put_object(Bucket=raw, Key="completed/bench/stray.csv", Body=b"x\n")
    return made


def naive(aws: Aws, names: Names, made: list[tuple[str, str, str]]) -> int:
    s3, ddb = aws.client("s3"), aws.client("dynamodb")
    missing = 0
    for key, output, _ in made:
        try:
            s3.head_object(Bucket=names.bucket("processed"), Key=output)
        except s3.exceptions.ClientError:
            missing += 1
        ddb.get_item(TableName=names.results_table, Key={"object_key": {"S": key}})
    return missing


def count_calls(aws: Aws) -> Counter:
    calls: Counter = Counter()
    for service in SERVICES:
        aws.client(service).meta.events.register(
            "before-call", lambda model, **_: calls.update([model.name]))
    return calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--naive-rows", type=int, default=1_000)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    atomic_dynamodb()
    lifecycle_size_filters()
    with scratch_pipeline("pipectl-bench-reconcile-") as (endpoint, scratch):
        cfg = config_module.load(scratch / "pipeline.yaml")
        aws = Aws.for_target(cfg.target("local"), endpoint_url=endpoint)
        engine.apply(aws, engine.build_plan(aws, cfg))
        names = Names(cfg, aws.account, aws.region)
        started = time.monotonic()
        made = seed(aws, names, args.rows)
        print(f"seeded {args.rows:,} rows, outputs and originals in "
              f"{time.monotonic() - started:.0f} s")

        calls = count_calls(aws)
        started = time.monotonic()
        report = reconcile(aws, names)
        ours = time.monotonic() - started
        ours_calls = sum(calls.values())
        print(f"pipectl reconcile: {report.rows:,} rows in {ours:.1f} s, {ours_calls} API "
              f"calls ({ours_calls / report.rows:.3f} per row), "
              f"{len(report.differences)} differences: "
              + ", ".join(sorted(d.problem for d in report.differences)))

        calls.clear()
        sample = made[1:args.naive_rows + 1]
        started = time.monotonic()
        naive(aws, names, sample)
        theirs = (time.monotonic() - started) / len(sample) * report.rows
        print(f"one call per row (HeadObject + GetItem), {len(sample):,} rows timed: "
              f"{sum(calls.values()) / len(sample):.0f} calls per row, "
              f"{theirs:.1f} s projected for {report.rows:,} rows")
        print(f"ratio: reconcile takes {ours / theirs:.2f}x the time and "
              f"{ours_calls / (2 * report.rows):.3f}x the calls")


if __name__ == "__main__":
    main()
