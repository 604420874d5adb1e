"""A burst on the embedded emulator: N small files uploaded at once, then drained.

    python bench/burst.py [--files 10000] [--reference 100] [--baseline-files 500]
                          [--no-baseline] [--concurrency C] [--runtime-log DIR]

Each run starts pipectl's emulator (pipectl/local/emulator.py) in its own process, deploys
this repository's pipeline into it, uploads the files to incoming/ (8 threads, the
notifications fill the queue as on AWS), then runs `pipectl run --until-idle` and watches
the queue drain. Printed per run: files/s per window of 500 as the backlog drains, API
calls per file (every request the emulator served during the drain, the bench's own
polling subtracted), moto CPU per file, moto's and the runtime's peak RSS, and whether
the counts reconcile exactly (N PROCESSED rows, N outputs, N originals in completed/,
incoming/ and both queues empty).

Runs, side by side on the same machine: the emulator patched (pipectl/local/
moto_patches/) with --reference files and with --files files waiting; then plain moto
(PIPECTL_MOTO_PATCHES=0) with --reference and --baseline-files files (plain moto needs
hours for 10,000). The goal: patched files/s with N waiting within 25% of files/s with
the reference waiting, >= 25 files/s, moto's RSS bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
WINDOW = 500
POLL_SECONDS = 1.0
RUNTIME_LOG: Path | None = None     # --runtime-log
NAMES = {"raw": "pipectl-demo-dev-raw-123456789012",
         "processed": "pipectl-demo-dev-processed-123456789012",
         "queue": "pipectl-demo-dev-processing", "dlq": "pipectl-demo-dev-processing-dlq",
         "table": "pipectl-demo-dev-results"}
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
       "AWS_DEFAULT_REGION": "us-east-1", "AWS_CONFIG_FILE": os.devnull,
       "AWS_SHARED_CREDENTIALS_FILE": os.devnull}


# --- the emulator process ------------------------------------------------------------------

def serve_emulator() -> None:
    """Child mode: pipectl's emulator, counting the requests it serves; prints its endpoint,
    then a JSON count of requests per line read from stdin; stops at EOF."""
    from moto.core.responses import BaseResponse
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    sys.path.insert(0, str(ROOT))
    from pipectl.local.emulator import Emulator

    served: Counter = Counter()
    call_action = BaseResponse.call_action

    def counted(self):
        served[f"{type(self).__name__.removesuffix('Response')}.{self._get_action()}"] += 1
        return call_action(self)

    BaseResponse.call_action = counted
    # S3's responses do not go through call_action: what the count there misses is S3.
    dispatch = DomainDispatcherApplication.__call__

    def every_request(self, environ, start_response):
        served["all"] += 1
        return dispatch(self, environ, start_response)

    DomainDispatcherApplication.__call__ = every_request
    with Emulator(port=0, notice=lambda line: print(f"warning: {line}", file=sys.stderr)) as e:
        print(json.dumps({"endpoint": e.endpoint, "patched": e.patched}), flush=True)
        for _ in sys.stdin:
            print(json.dumps(served), flush=True)


class EmulatorProcess:
    def __init__(self, patched: bool):
        env = {**os.environ, **ENV, "PIPECTL_MOTO_PATCHES": "1" if patched else "0"}
        self.proc = subprocess.Popen([sys.executable, __file__, "--serve-emulator"], env=env,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        started = json.loads(self.proc.stdout.readline())
        self.endpoint, self.patched = started["endpoint"], started["patched"]

    def served(self) -> Counter:
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return Counter(json.loads(self.proc.stdout.readline()))

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.proc.pid)

    def peak_rss_mb(self) -> float:
        return _status_kb(self.proc.pid, "VmHWM") / 1024

    def stop(self) -> None:
        self.proc.stdin.close()
        try:
            # plain moto, still computing, can take minutes to wind down on a busy machine
            self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def _status_kb(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def process_tree(pid: int) -> list[int]:
    """A process and all its descendants (the runtime and its warm workers)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                todo += [int(c) for c in task.read_text().split()]
            except FileNotFoundError:
                pass
    return found


def tree_rss_kb(pid: int) -> int:
    return sum(_status_kb(p, "VmRSS") for p in process_tree(pid))


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of one process, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of a process and each of its descendants, by pid."""
    found = {}
    for current in process_tree(pid):
        try:
            found[current] = cpu_seconds(current)
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def machine_idle() -> tuple[float, float]:
    """(idle, total) jiffies of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return values[3] + values[4], sum(values)


# --- one run -------------------------------------------------------------------------------

@dataclass
class Run:
    label: str
    files: int
    windows: list[tuple[int, float]] = field(default_factory=list)  # (waiting at start, files/s)
    files_per_s: float = 0.0
    calls_per_file: float = 0.0
    calls: Counter = field(default_factory=Counter)
    moto_cpu_ms_per_file: float = 0.0
    moto_peak_mb: float = 0.0
    runtime_peak_mb: float = 0.0
    runtime_cpu_ms_per_file: float = 0.0   # the runtime and its workers, sampled each poll
    machine_busy: float = 0.0              # share of all cores busy during the drain
    reconciled: dict[str, int] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        n = self.files
        return self.reconciled == {"processed_rows": n, "outputs": n, "completed": n,
                                   "incoming": 0, "queue": 0, "dlq": 0}


def clients(endpoint: str):
    def make(service):
        return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    return make("s3"), make("sqs"), make("dynamodb")


def pipectl(endpoint: str, cwd: Path, *args: str, **popen) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipectl", "--endpoint-url", endpoint,
                             *args], cwd=cwd, env={**os.environ, **ENV},
                            stdin=subprocess.DEVNULL, **popen)


def upload(s3, files: int) -> None:
    def put(i: int) -> None:
        s3.put_object(Bucket=NAMES["raw"], Key=f"incoming/burst/file-{i:05d}.csv",
                      Body=f"id,name,amount\n{i},item {i},{i % 97}.5\n".encode())

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, range(files)))


def in_queue(sqs, url: str) -> int:
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(got["ApproximateNumberOfMessages"]) + int(
        got["ApproximateNumberOfMessagesNotVisible"])


def count_keys(s3, bucket: str, prefix: str) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sum(page.get("KeyCount", 0) for page in pages)


def processed_rows(ddb) -> int:
    pages = ddb.get_paginator("scan").paginate(
        TableName=NAMES["table"], Select="COUNT", FilterExpression="#s = :p",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":p": {"S": "PROCESSED"}})
    return sum(page["Count"] for page in pages)


def windows_from(samples: list[tuple[float, int]], files: int) -> list[tuple[int, float]]:
    """files/s per window of WINDOW files done, from (time, done) samples, interpolated."""
    def crossing(target: int) -> float:
        for (t0, d0), (t1, d1) in zip(samples, samples[1:], strict=False):
            if d1 >= target:
                return t0 + (t1 - t0) * (target - d0) / max(d1 - d0, 1)
        return samples[-1][0]

    bounds = list(range(0, files, WINDOW)) + [files]
    times = [crossing(b) for b in bounds]
    return [(files - start, (end - start) / max(t1 - t0, 1e-9))
            for start, end, t0, t1 in zip(bounds, bounds[1:], times, times[1:], strict=False)]


def one_run(label: str, files: int, patched: bool, concurrency: int | None) -> Run:
    run = Run(label, files)
    emulator = EmulatorProcess(patched)
    work = Path(tempfile.mkdtemp(prefix="burst-"))
    try:
        if emulator.patched != patched:
            raise SystemExit(f"the emulator did not run {'patched' if patched else 'plain'}")
        shutil.copyfile(ROOT / "pipeline.yaml", work / "pipeline.yaml")
        shutil.copytree(ROOT / "handlers", work / "handlers",
                        ignore=shutil.ignore_patterns("__pycache__"))
        deploy = pipectl(emulator.endpoint, work, "deploy", "--yes", stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        if deploy.wait(timeout=300) != 0:
            raise SystemExit("deploy failed")
        s3, sqs, ddb = clients(emulator.endpoint)
        url = sqs.get_queue_url(QueueName=NAMES["queue"])["QueueUrl"]
        sqs.purge_queue(QueueUrl=url)  # the s3:TestEvent deploy's notification set sends
        started = time.perf_counter()
        upload(s3, files)
        print(f"  {label}: {files} uploaded in {time.perf_counter() - started:.0f} s",
              flush=True)

        polls: Counter = Counter()
        sqs.meta.events.register("before-call", lambda model, **_: polls.update([model.name]))
        served_before, cpu_before = emulator.served(), emulator.cpu_seconds()
        log = (open(RUNTIME_LOG / f"{label.replace(' ', '_').replace(',', '')}.log", "w")
               if RUNTIME_LOG else subprocess.DEVNULL)
        runner = pipectl(emulator.endpoint, work, "run", "--until-idle",
                         *(["--concurrency", str(concurrency)] if concurrency else []),
                         stdout=log, stderr=subprocess.STDOUT)
        started, samples, peak_kb = time.perf_counter(), [(0.0, 0)], 0
        runtime_cpu: dict[int, float] = {}
        idle_before = machine_idle()
        while runner.poll() is None:
            time.sleep(POLL_SECONDS)
            peak_kb = max(peak_kb, tree_rss_kb(runner.pid))
            runtime_cpu.update(tree_cpu_seconds(runner.pid))
            samples.append((time.perf_counter() - started, files - in_queue(sqs, url)))
        seconds = time.perf_counter() - started
        samples.append((seconds, files - in_queue(sqs, url)))
        served = emulator.served() - served_before
        served["SQS.GetQueueAttributes"] -= polls["GetQueueAttributes"]
        served["all"] -= polls["GetQueueAttributes"]
        served["S3 (any)"] = served.pop("all") - sum(served.values())
        run.calls = +served
        run.calls_per_file = sum(run.calls.values()) / files
        run.moto_cpu_ms_per_file = (emulator.cpu_seconds() - cpu_before) * 1000 / files
        run.runtime_cpu_ms_per_file = sum(runtime_cpu.values()) * 1000 / files
        idle_after = machine_idle()
        run.machine_busy = 1 - (idle_after[0] - idle_before[0]) / max(
            idle_after[1] - idle_before[1], 1)
        run.files_per_s = files / seconds
        run.windows = windows_from(samples, files)
        run.runtime_peak_mb = peak_kb / 1024
        run.moto_peak_mb = emulator.peak_rss_mb()
        run.reconciled = {
            "processed_rows": processed_rows(ddb),
            "outputs": count_keys(s3, NAMES["processed"], "processed/"),
            "completed": count_keys(s3, NAMES["raw"], "completed/"),
            "incoming": count_keys(s3, NAMES["raw"], "incoming/"),
            "queue": in_queue(sqs, url),
            "dlq": in_queue(sqs, sqs.get_queue_url(QueueName=NAMES["dlq"])["QueueUrl"])}
        if runner.returncode != 0:
            print(f"  {label}: pipectl run exited {runner.returncode}")
    finally:
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)
    report(run)
    return run


def report(run: Run) -> None:
    print(f"  {run.label}: {run.files} files, {run.files_per_s:.1f} files/s overall, "
          f"{run.calls_per_file:.2f} calls/file, moto CPU {run.moto_cpu_ms_per_file:.1f} "
          f"ms/file, runtime CPU {run.runtime_cpu_ms_per_file:.1f} ms/file, machine "
          f"{run.machine_busy:.0%} busy, peak RSS moto {run.moto_peak_mb:.0f} MB, runtime "
          f"{run.runtime_peak_mb:.0f} MB, counts {'exact' if run.exact else 'WRONG'} "
          f"{run.reconciled}")
    print("    files/s per window of 500, by files waiting at its start: " + ", ".join(
        f"{waiting}: {rate:.1f}" for waiting, rate in run.windows))
    top = ", ".join(f"{name} {count / run.files:.2f}"
                    for name, count in run.calls.most_common(8))
    print(f"    calls per file: {top}", flush=True)


def main() -> None:
    if sys.argv[1:] == ["--serve-emulator"]:
        return serve_emulator()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--reference", type=int, default=100,
                        help="the small burst the big one is compared with")
    parser.add_argument("--baseline-files", type=int, default=500,
                        help="files in plain moto's big run (it slows with depth)")
    parser.add_argument("--no-baseline", action="store_true", help="skip plain moto")
    parser.add_argument("--runtime-log", type=Path, default=None,
                        help="keep each run's `pipectl run` output in this directory")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="pipectl run --concurrency (default: pipectl's)")
    args = parser.parse_args()
    global RUNTIME_LOG
    RUNTIME_LOG = args.runtime_log
    if RUNTIME_LOG:
        RUNTIME_LOG.mkdir(parents=True, exist_ok=True)

    print(f"burst bench: {args.files} files vs {args.reference}, os.cpu_count()="
          f"{os.cpu_count()}", flush=True)
    small = one_run(f"patched, {args.reference} waiting", args.reference, True,
                    args.concurrency)
    big = one_run(f"patched, {args.files} waiting", args.files, True, args.concurrency)
    first = big.windows[0][1]
    print(f"patched: files/s with {args.files} waiting {first:.1f} vs {small.files_per_s:.1f} "
          f"with {args.reference}: {first / small.files_per_s:.2f}x (goal >= 0.75x, "
          f">= 25 files/s)")
    if args.no_baseline:
        return
    plain_small = one_run(f"plain moto, {args.reference} waiting", args.reference, False,
                          args.concurrency)
    plain_big = one_run(f"plain moto, {args.baseline_files} waiting", args.baseline_files,
                        False, args.concurrency)
    first_plain = plain_big.windows[0][1]
    print(f"plain moto: files/s with {args.baseline_files} waiting {first_plain:.1f} vs "
          f"{plain_small.files_per_s:.1f} with {args.reference}: "
          f"{first_plain / plain_small.files_per_s:.2f}x")
    print(f"patched / plain, overall files/s at {args.reference} waiting: "
          f"{small.files_per_s / plain_small.files_per_s:.2f}x; moto CPU per file "
          f"{big.moto_cpu_ms_per_file:.1f} vs {plain_big.moto_cpu_ms_per_file:.1f} ms")


if __name__ == "__main__":
    main()
