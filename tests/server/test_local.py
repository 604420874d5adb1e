"""The embedded default: `pipectl demo` and `pipectl dev`, run as a user runs them."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from pipectl.local.emulator import free_port
from pipectl.naming import row_key
from tests.helpers import ACCOUNT

pytestmark = pytest.mark.server


def worker_processes() -> list[int]:
    """Local-runtime worker processes still alive anywhere on this machine."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"pipectl/local/bootstrap.py" in cmdline:
                found.append(int(entry.name))
    return found


def test_demo_runs_the_whole_pipeline_and_shows_the_bad_file_failed(pipectl):
    result = pipectl("demo", endpoint=False)
    assert result.code == 0, result.err
    assert "incoming/broken.json" in result.out and "FAILED" in result.out
    assert "incoming/customers.csv" in result.out
    assert "demo finished in" in result.err
    assert worker_processes() == []


def test_demo_outside_a_pipeline_directory_uses_the_bundled_pipeline(pipectl, tmp_path):
    empty = tmp_path / "elsewhere"
    empty.mkdir()
    result = pipectl("-o", "json", "demo", endpoint=False, cwd=empty)
    assert result.code == 0, result.err
    report = result.json()
    statuses = {r["key"]: r["status"] for r in report["results"]}
    assert statuses["incoming/broken.json"] == "FAILED"
    assert [s for k, s in statuses.items() if k != "incoming/broken.json"] == ["PROCESSED"] * 4
    assert report["problems"] == []
    target = report["status"]["target"]
    assert (target["name"], target["region"]) == ("local", "us-east-1")
    assert target["endpoint"].startswith("http://127.0.0.1:")


def test_dev_serves_uploads_and_stops_cleanly_on_ctrl_c(pipeline_dir, subprocess_env):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pipectl", "dev", "--port", str(port)],
                            cwd=pipeline_dir, env=subprocess_env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            lines.append(line)
            if "emulator at" in line or not line:
                break
        assert any("emulator at" in line for line in lines), "".join(lines)

        endpoint = f"http://127.0.0.1:{port}"
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                region_name="us-east-1")
        raw = f"pipectl-demo-dev-raw-{ACCOUNT}"
        session.client("s3", endpoint_url=endpoint).put_object(
            Bucket=raw, Key="incoming/hello.csv", Body=b"Hello World\n1\n")
        ddb = session.client("dynamodb", endpoint_url=endpoint)
        status = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and status != "PROCESSED":
            item = ddb.get_item(TableName="pipectl-demo-dev-results",
                                Key={"object_key": {"S": row_key(raw, "incoming/hello.csv")}}
                                ).get("Item")
            status = item["status"]["S"] if item else None
            time.sleep(0.2)  # polling the emulator for the outcome, bounded by the deadline
        assert status == "PROCESSED"
        assert worker_processes()

        proc.send_signal(signal.SIGINT)
        # 130 like every interrupted command; bounded, a loaded 2-core CI machine is slow.
        assert proc.wait(timeout=90) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "emulator stopped" in proc.stderr.read()
    left = worker_processes()
    assert left == [], [Path(f"/proc/{pid}/status").read_text()[:300] for pid in left]
    with socket.socket() as s, pytest.raises(ConnectionRefusedError):
        s.connect(("127.0.0.1", port))  # nothing listens on the port any more


def test_a_port_left_in_time_wait_is_not_busy_but_a_listener_is():
    from pipectl.errors import UsageError
    from pipectl.local.emulator import Emulator, ensure_free

    with Emulator(port=0) as emulator:
        port = emulator.port
        boto3.client("s3", endpoint_url=emulator.endpoint, region_name="us-east-1",
                     aws_access_key_id="t", aws_secret_access_key="t").list_buckets()
        with pytest.raises(UsageError):
            ensure_free(port)
    ensure_free(port)


def test_dev_on_a_taken_port_says_so_in_one_line(pipectl):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = pipectl("dev", "--port", str(port), endpoint=False)
    assert result.code == 2
    assert result.err.strip().splitlines() == [
        f"error: port {port} on 127.0.0.1 is already in use (is `pipectl dev` running? set "
        "targets.local.port in pipeline.yaml or pass --port)"]


def test_commands_against_a_stopped_emulator_say_how_to_start_it(pipectl):
    port = free_port()
    result = pipectl("--endpoint-url", f"http://127.0.0.1:{port}", "status", endpoint=False)
    assert result.code == 1
    assert result.err.strip() == f"error: cannot reach target 'local' (http://127.0.0.1:{port}) " \
                                 "(start it with `pipectl dev`)"
