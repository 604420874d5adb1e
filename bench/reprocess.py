"""`pipectl reprocess` on the embedded default: a backfill of N processed files.

    python bench/reprocess.py [--files 1000] [--rate 50] [--rate-files 300]

A moto server prepared as pipectl's emulator prepares it (tests/conftest.py does the
same), this repository's pipeline deployed into it from a scratch copy, N small CSV files
uploaded and processed (`pipectl run --until-idle`). Then:

1. a new processor version (a module it imports changed) is deployed and
   `pipectl reprocess --not-current --yes` sends all N: messages per SendMessageBatch
   call, send time; then `pipectl run --until-idle` drains them: the time to reprocess N,
   beside the time the same N took as fresh uploads (the same server, the same depth);
2. another version, and `reprocess --not-current --max M --rate R`: the rate held;
3. `pipectl reconcile` and the rows: N PROCESSED (M by the third version, the rest by the
   second), N outputs.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scratch_pipeline import scratch_pipeline  # noqa: E402 - bench/ is not a package

from pipectl.local.emulator import prepare_moto  # noqa: E402

RAW = "pipectl-demo-dev-raw-123456789012"
PROCESSED = "pipectl-demo-dev-processed-123456789012"
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
       "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
       "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


class Pipeline:
    def __init__(self, endpoint: str, directory: Path):
        self.endpoint, self.directory = endpoint, directory
        self.env = {**{k: v for k, v in os.environ.items()
                       if not k.startswith(("AWS_", "PIPECTL_"))}, **ENV}

    def pipectl(self, *args: str) -> tuple[float, str]:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pipectl", "--endpoint-url",
                               self.endpoint, *args], cwd=self.directory, env=self.env,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise SystemExit(f"pipectl {' '.join(args)} failed ({done.returncode}):\n"
                             f"{done.stderr}")
        return time.perf_counter() - started, done.stdout

    def new_version(self, label: str) -> None:
        normalize = self.directory / "handlers" / "processing" / "normalize.py"
        normalize.write_text(normalize.read_text() + f"\n# {label}\n")
        self.pipectl("deploy", "--yes")

    def drain(self) -> float:
        return self.pipectl("run", "--until-idle", "--timeout", "1800")[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--rate-files", type=int, default=300)
    args = parser.parse_args()
    n = args.files

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    prepare_moto()
    with scratch_pipeline("pipectl-bench-reprocess-") as (endpoint, scratch):
        p = Pipeline(endpoint, scratch)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        p.pipectl("deploy", "--yes")
        print(f"moto server {endpoint.removeprefix('http://')}; uploading {n} files")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: s3.put_object(Bucket=RAW, Key=f"incoming/b/{i:05d}.csv",
                                                  Body=f"id,name\n{i},file {i}\n".encode()),
                          range(n)))
        fresh = p.drain()
        print(f"0. {n} fresh uploads processed in {fresh:.1f} s ({n / fresh:.1f} files/s)")

        p.new_version("version 2")
        seconds, out = p.pipectl("-o", "json", "reprocess", "--not-current", "--yes")
        sent = json.loads(out)
        drained = p.drain()
        total = seconds + drained
        print(f"1. reprocess --not-current: sent {sent['sent']} in {sent['calls']} "
              f"SendMessageBatch calls ({sent['sent'] / sent['calls']:.2f} messages per call) "
              f"in {sent['seconds']:.2f} s ({seconds:.1f} s with selection and start-up)")
        print(f"   drained in {drained:.1f} s: {n} files reprocessed in {total:.1f} s "
              f"({n / total:.1f} files/s; fresh uploads: {n / fresh:.1f} files/s, "
              f"ratio {fresh / total:.2f})")

        p.new_version("version 3")
        m = min(args.rate_files, n)
        _, out = p.pipectl("-o", "json", "reprocess", "--not-current", "--max", str(m),
                           "--rate", str(args.rate), "--yes")
        paced = json.loads(out)
        # The first batch goes at once and each later one when the ones before it have had
        # their time, so the rate held is what was sent before the last batch over the time
        # until that batch went (the run's average also counts the first batch's burst).
        batch = min(10, max(1, int(args.rate)), m)
        held = (paced["sent"] - batch) / paced["seconds"]
        print(f"2. --rate {args.rate:g} --max {m}: sent {paced['sent']} in {paced['calls']} "
              f"calls over {paced['seconds']:.2f} s: {held:.1f} messages/s held "
              f"({held / args.rate:.0%} of the rate asked; run average "
              f"{paced['sent'] / paced['seconds']:.1f}/s with the first batch's burst)")
        p.drain()

        _, out = p.pipectl("-o", "json", "reconcile")
        checked = json.loads(out)
        _, out = p.pipectl("-o", "json", "results", "-n", str(n + 10))
        rows = json.loads(out)["results"]
        versions: dict[str, int] = {}
        for r in rows:
            version = r["details"].get("processor_version")
            versions[version] = versions.get(version, 0) + 1
        listed = sum(page.get("KeyCount", 0) for page in s3.get_paginator(
            "list_objects_v2").paginate(Bucket=PROCESSED, Prefix="processed/"))
        print(f"3. reconcile consistent={checked['consistent']}: {checked['rows']} rows, "
              f"{checked['outputs']} outputs; {len(rows)} rows all "
              f"{sorted({r['status'] for r in rows})}, rows per version "
              f"{sorted(versions.values())} (--max {m} took {m} to the third); "
              f"{listed} objects under processed/")


if __name__ == "__main__":
    main()
