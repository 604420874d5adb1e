"""Deploy timings against one moto server: first deploy, then a no-op redeploy.

Prints wall time and API calls (all, and mutating) for each, side by side in one run:
the redeploy must make no mutating call, and its read-only calls are the cost of
observing 19 resources with no state file.

    python bench/deploy.py [--runs 3]
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
import urllib.request
from pathlib import Path

from moto.server import ThreadedMotoServer

from pipectl import config as config_module
from pipectl.aws.session import Aws
from pipectl.deploy import engine

ROOT = Path(__file__).resolve().parents[1]
READ_ONLY = ("Get", "List", "Describe", "Head")
SERVICES = ("s3", "sqs", "dynamodb", "sts", "iam", "lambda", "logs", "events", "cloudwatch",
            "sns")


def counted(aws: Aws) -> list[str]:
    calls: list[str] = []
    for service in SERVICES:
        aws.client(service).meta.events.register(
            "before-call", lambda model, **_: calls.append(model.name))
    return calls


def one_run(endpoint: str, cfg) -> dict[str, tuple[float, int, int]]:
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset",
                                                  method="POST")).read()
    figures = {}
    for label in ("first deploy", "no-op redeploy"):
        aws = Aws.for_target(cfg.target("local"), endpoint_url=endpoint)
        calls = counted(aws)
        started = time.perf_counter()
        engine.apply(aws, engine.build_plan(aws, cfg))
        elapsed = time.perf_counter() - started
        mutating = sum(1 for c in calls if not c.startswith(READ_ONLY))
        figures[label] = (elapsed, len(calls), mutating)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copyfile(ROOT / "pipeline.yaml", Path(tmp) / "pipeline.yaml")
        shutil.copytree(ROOT / "handlers", Path(tmp) / "handlers",
                        ignore=shutil.ignore_patterns("__pycache__"))
        cfg = config_module.load(Path(tmp) / "pipeline.yaml")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            runs = [one_run(f"http://{host}:{port}", cfg) for _ in range(args.runs)]
        finally:
            server.stop()
    print(f"{'':16} {'seconds (median)':>17} {'API calls':>10} {'mutating':>9}")
    for label in runs[0]:
        seconds = sorted(r[label][0] for r in runs)[len(runs) // 2]
        _, calls, mutating = runs[-1][label]
        print(f"{label:16} {seconds:17.2f} {calls:10d} {mutating:9d}")
    first = sorted(r["first deploy"][0] for r in runs)[len(runs) // 2]
    again = sorted(r["no-op redeploy"][0] for r in runs)[len(runs) // 2]
    print(f"no-op redeploy / first deploy: {again / first:.2f}")


if __name__ == "__main__":
    main()
