"""`pipectl upload` vs `aws s3 cp --recursive` against one moto server, side by side.

    python bench/upload.py [--files 1000] [--size-kib 4] [--big-mb 500] [--rounds 3]

Both run as the real commands (subprocesses) against the same moto server, which runs in
its own process; rounds alternate pipectl and aws so neither gets a warmer server. Each
round uploads to a fresh prefix (nothing is skipped as unchanged) and the objects are
deleted afterwards so moto's memory stays flat. Printed per workload: files/s and the
client's CPU seconds (user + system of the command's process, start-up included), the moto
server's CPU seconds meanwhile, median over the rounds, and the ratios pipectl / aws.

The baseline is the AWS CLI v1 (`pip install awscli`): the `aws` on PATH if there is one,
otherwise one installed into bench/.awscli-venv on first use.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from dataclasses import dataclass
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from burst import cpu_seconds  # noqa: E402 - bench/ is not a package

BUCKET = "bench-upload"
AWSCLI_VENV = ROOT / "bench" / ".awscli-venv"


@dataclass
class Run:
    files: int
    seconds: float
    cpu: float
    server_cpu: float = 0.0

    @property
    def rate(self) -> float:
        return self.files / self.seconds


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_moto() -> tuple[subprocess.Popen, str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1",
                               "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, endpoint
        except OSError:
            time.sleep(0.05)
    server.kill()
    raise SystemExit("moto server did not start")


def aws_command() -> list[str]:
    found = shutil.which("aws")
    if found:
        return [found]
    python = AWSCLI_VENV / "bin" / "python"
    if not python.exists():
        print(f"installing awscli into {AWSCLI_VENV} (baseline only)")
        venv.create(AWSCLI_VENV, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "awscli"], check=True)
    return [str(python), "-m", "awscli"]


def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPECTL_"))}
    clean.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                 AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull,
                 AWS_SHARED_CREDENTIALS_FILE=os.devnull)
    return clean


def timed(command: list[str], files: int, server: subprocess.Popen) -> Run:
    """Wall time, the child's own CPU (wait4 reports that process alone) and the moto
    server's CPU meanwhile: when the server's CPU is about the wall time, the server is
    what limits files/s, for both tools alike."""
    server_before = cpu_seconds(server.pid)
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env(), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, cwd=ROOT)
    stderr = child.stderr.read() if child.stderr else b""
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command[:4])}... failed ({child.returncode}): "
                         f"{stderr.decode(errors='replace')[-2000:]}")
    return Run(files, seconds, usage.ru_utime + usage.ru_stime,
               cpu_seconds(server.pid) - server_before)


def pipectl(endpoint: str, source: Path, prefix: str) -> list[str]:
    return [sys.executable, "-m", "pipectl", "--config", str(ROOT / "pipeline.yaml"),
            "--endpoint-url", endpoint, "upload", f"{source}/", "--to",
            f"s3://{BUCKET}/{prefix}/", "--quiet"]


def aws(endpoint: str, source: Path, prefix: str, base: list[str]) -> list[str]:
    return [*base, "s3", "cp", "--recursive", "--quiet", "--endpoint-url", endpoint,
            str(source), f"s3://{BUCKET}/{prefix}/"]


def empty(s3, prefix: str, expected: int) -> None:
    """Check the upload landed whole, then delete it (moto keeps every object in memory)."""
    keys = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=prefix + "/") for o in page.get("Contents", [])]
    if len(keys) != expected:
        raise SystemExit(f"{prefix}: {len(keys)} objects, expected {expected}")
    for first in range(0, len(keys), 1000):
        s3.delete_objects(Bucket=BUCKET, Delete={
            "Objects": [{"Key": k} for k in keys[first:first + 1000]], "Quiet": True})


def workload(name: str, slug: str, source: Path, files: int, rounds: int, endpoint: str, s3,
             aws_base: list[str], server: subprocess.Popen) -> None:
    runs: dict[str, list[Run]] = {"pipectl": [], "aws": []}
    for n in range(rounds):
        for tool in ("pipectl", "aws") if n % 2 == 0 else ("aws", "pipectl"):
            prefix = f"{slug}-{tool}-{n}"
            command = (pipectl(endpoint, source, prefix) if tool == "pipectl"
                       else aws(endpoint, source, prefix, aws_base))
            runs[tool].append(timed(command, files, server))
            empty(s3, prefix, files)
    print(f"{name}:")
    median = {}
    for tool, results in runs.items():
        rate = statistics.median(r.rate for r in results)
        cpu = statistics.median(r.cpu for r in results)
        server_cpu = statistics.median(r.server_cpu for r in results)
        median[tool] = (rate, cpu)
        seconds = statistics.median(r.seconds for r in results)
        each = ", ".join(f"{r.seconds:.1f}" for r in results)
        print(f"  {tool:<8} {rate:8.2f} files/s  {seconds:6.1f} s  {cpu:6.2f} s client CPU  "
              f"{server_cpu:6.2f} s moto CPU   (seconds per round: {each})")
    (p_rate, p_cpu), (a_rate, a_cpu) = median["pipectl"], median["aws"]
    print(f"  pipectl / aws: {p_rate / a_rate:.2f}x files/s at {p_cpu / a_cpu:.2f}x client CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000, help="small files (default 1000)")
    parser.add_argument("--size-kib", type=int, default=4, help="size of each (default 4)")
    parser.add_argument("--big-mb", type=int, default=500,
                        help="the one large file in MB (default 500; 0 skips it)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per tool (default 3)")
    args = parser.parse_args()

    aws_base = aws_command()
    server, endpoint = start_moto()
    work = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    try:
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
        s3.create_bucket(Bucket=BUCKET)
        small = work / "small"
        small.mkdir()
        for i in range(args.files):
            (small / f"f{i:05d}.csv").write_bytes(os.urandom(args.size_kib * 1024))
        version = subprocess.run([*aws_base, "--version"], capture_output=True, text=True)
        print(f"moto server {endpoint}; baseline {(version.stdout or version.stderr).strip()}")
        workload(f"{args.files} x {args.size_kib} KiB", "small", small, args.files, args.rounds,
                 endpoint, s3, aws_base, server)
        if args.big_mb:
            big = work / "big"
            big.mkdir()
            with open(big / "one.bin", "wb") as f:
                for _ in range(args.big_mb):
                    f.write(os.urandom(1_000_000))
            workload(f"1 x {args.big_mb} MB", "big", big, 1, args.rounds, endpoint, s3, aws_base,
                     server)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
