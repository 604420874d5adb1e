"""The change loop in the local runtime (issue 20), through the real `pipectl`: an edited
handler is served without a restart, by `pipectl dev` itself and after another shell's
`pipectl deploy`; the stream shows one short line per event."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time

import boto3
import pytest

from pipectl.local.emulator import free_port

pytestmark = pytest.mark.server

RAW = "pipectl-demo-dev-raw-123456789012"
TABLE = "pipectl-demo-dev-results"
# The edit (to processing/settings.py, which only the processor's zip holds) changes what the
# processor writes as its version, so a row says which code ran:
# the version deploy derived (12 hex digits) before, "edited:" and the new one after.
OLD = "version=get(env.PROCESSOR_VERSION) or results.UNVERSIONED,"
NEW = 'version="edited:" + (get(env.PROCESSOR_VERSION) or results.UNVERSIONED),'


def original(version: str) -> bool:
    return re.fullmatch(r"[0-9a-f]{12}", version) is not None


def edited(version: str) -> bool:
    return version.startswith("edited:") and original(version.removeprefix("edited:"))


class Running:
    """A long-running pipectl command whose stderr is read as it comes."""

    def __init__(self, args: list[str], cwd, env):
        self.proc = subprocess.Popen([sys.executable, "-m", "pipectl", *args], cwd=cwd, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.lines.append("<exited>")
            self._changed.notify_all()

    def wait_for(self, pattern: str, timeout: float = 120) -> str:
        """The first stderr line matching pattern (a regex), waiting for it to come."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((line for line in self.lines if re.search(pattern, line)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                assert left > 0 and "<exited>" not in self.lines, \
                    f"no line matching {pattern!r} in:\n" + "\n".join(self.lines)
                self._changed.wait(left)

    def interrupt(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=90)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()


def clients(endpoint: str):
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                            region_name="us-east-1")
    return session.client("s3", endpoint_url=endpoint), session.client("dynamodb",
                                                                       endpoint_url=endpoint)


def processed_by(ddb, key: str, timeout: float = 90) -> str:
    """The processor_version of the row for key once it is PROCESSED."""
    return processed_row(ddb, key, timeout)["processor_version"]["S"]


def processed_row(ddb, key: str, timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        item = ddb.get_item(TableName=TABLE, Key={"object_key": {"S": f"s3://{RAW}/{key}"}},
                            ConsistentRead=True).get("Item")
        if item and item["status"]["S"] == "PROCESSED":
            return item
        time.sleep(0.2)  # polling the emulator for the outcome, bounded by the deadline
    raise AssertionError(f"{key} was not processed within {timeout} s")


def edit_handler(pipeline_dir) -> None:
    handler = pipeline_dir / "handlers" / "processing" / "settings.py"
    source = handler.read_text()
    assert OLD in source
    handler.write_text(source.replace(OLD, NEW))


def test_dev_serves_an_edited_handler_to_the_next_file_without_a_restart(pipeline_dir,
                                                                          subprocess_env):
    # given pipectl dev serving the pipeline, which has processed one file
    port = free_port()
    dev = Running(["dev", "--port", str(port)], pipeline_dir, subprocess_env)
    try:
        dev.wait_for("emulator at")
        s3, ddb = clients(f"http://127.0.0.1:{port}")
        s3.put_object(Bucket=RAW, Key="incoming/before.csv", Body=b"a,b\n1,2\n")
        assert original(processed_by(ddb, "incoming/before.csv"))

        # when the processor's handler is edited and saved
        edit_handler(pipeline_dir)

        # then dev redeploys exactly that function (one plan line) and replaces its workers
        reloaded = dev.wait_for(r"^reloaded \(")
        assert reloaded == ("reloaded (handlers/processing/settings.py changed): ~ function "
                            "pipectl-demo-dev-processor")
        dev.wait_for("^pipectl-demo-dev-processor: deployed code or settings changed")
        # and a file uploaded after the edit is processed by the new code
        s3.put_object(Bucket=RAW, Key="incoming/after.csv", Body=b"a,b\n3,4\n")
        assert edited(processed_by(ddb, "incoming/after.csv"))
        # the stream: one short line per event, no EMF blob, no runtime lines
        dev.wait_for(r"^\d\d:\d\d:\d\d processor incoming/after\.csv PROCESSED \d+ ms  ")
        assert not [line for line in dev.lines if "_aws" in line or "RequestId" in line]
        assert not [line for line in dev.lines if "archiver: deployed" in line
                    or "fetcher: deployed" in line]

        # a broken pipeline.yaml keeps what is served, says why, and its fix is deployed
        config = pipeline_dir / "pipeline.yaml"
        good = config.read_text()
        config.write_text(good.replace("environment: dev", "environment: [dev"))
        dev.wait_for(r"^warning: not reloaded, still serving what was deployed: .*pipeline\.yaml")
        config.write_text(good.replace("batch_size: 10", "batch_size: 5"))
        assert dev.wait_for(r"^reloaded \(pipeline\.yaml") == (
            "reloaded (pipeline.yaml changed): ~ mapping pipectl-demo-dev-processing -> "
            "pipectl-demo-dev-processor")
    finally:
        code = dev.interrupt()
    assert code == 130, "\n".join(dev.lines)


def test_pipectl_run_serves_what_another_shell_deployed(pipectl, pipeline_dir, moto_server,
                                                        subprocess_env):
    # given the pipeline deployed and `pipectl run` serving it
    assert pipectl("deploy", "--yes").code == 0
    run = Running(["--endpoint-url", moto_server, "run"], pipeline_dir, subprocess_env)
    try:
        run.wait_for("^serving ")
        s3, ddb = clients(moto_server)
        s3.put_object(Bucket=RAW, Key="incoming/before.csv", Body=b"a,b\n1,2\n")
        assert original(processed_by(ddb, "incoming/before.csv"))

        # when another shell deploys an edited handler while files keep arriving
        edit_handler(pipeline_dir)
        during = [f"incoming/during-{i}.csv" for i in range(8)]
        for key in during[:4]:
            s3.put_object(Bucket=RAW, Key=key, Body=b"a,b\n1,2\n")
        deployed = pipectl("deploy", "--yes")
        assert deployed.code == 0, deployed.err
        for key in during[4:]:
            s3.put_object(Bucket=RAW, Key=key, Body=b"a,b\n1,2\n")

        # then the runtime notices the new code digest and serves it to the next file
        run.wait_for("^pipectl-demo-dev-processor: deployed code or settings changed")
        s3.put_object(Bucket=RAW, Key="incoming/after.csv", Body=b"a,b\n3,4\n")
        assert edited(processed_by(ddb, "incoming/after.csv"))
        # and every file that came meanwhile was processed once, by one code or the other:
        # no batch was cut short by a worker being replaced under it
        rows = [processed_row(ddb, key) for key in during]
        assert {r["attempts"]["N"] for r in rows} == {"1"}
        assert all(original(r["processor_version"]["S"]) or edited(r["processor_version"]["S"])
                   for r in rows)
    finally:
        code = run.interrupt()
    assert code == 130, "\n".join(run.lines)


def test_dev_state_keeps_an_uploaded_file_and_its_row_across_a_restart(pipeline_dir,
                                                                      subprocess_env,
                                                                      tmp_path):
    state = tmp_path / "state"
    port = free_port()
    s3, ddb = clients(f"http://127.0.0.1:{port}")

    # given dev with --state, a file processed and an object no rule processes
    dev = Running(["dev", "--port", str(port), "--state", str(state)], pipeline_dir,
                  subprocess_env)
    try:
        dev.wait_for(f"^emulator starts clean; its state is saved in {state} when dev stops")
        dev.wait_for("emulator at")
        s3.put_object(Bucket=RAW, Key="incoming/kept.csv", Body=b"a,b\n1,2\n")
        s3.put_object(Bucket=RAW, Key="notes/readme.txt", Body=b"left alone")
        assert original(processed_by(ddb, "incoming/kept.csv"))
    finally:
        assert dev.interrupt() == 130, "\n".join(dev.lines)
    assert f"emulator stopped; its state is saved in {state}" in dev.lines

    # when dev starts again with the same directory
    again = Running(["dev", "--port", str(port), "--state", str(state)], pipeline_dir,
                    subprocess_env)
    try:
        again.wait_for(f"^emulator state restored from {state}/")
        again.wait_for("emulator at")
        # then the row, the moved original and the other object are all there
        assert original(processed_by(ddb, "incoming/kept.csv", timeout=5))
        body = s3.get_object(Bucket=RAW, Key="completed/kept.csv")["Body"].read()
        assert body == b"a,b\n1,2\n"
        assert s3.get_object(Bucket=RAW, Key="notes/readme.txt")["Body"].read() == b"left alone"
        assert "deployed 0 resources" in "\n".join(again.lines)
        # and the restored queues and notifications still carry new uploads to the processor
        s3.put_object(Bucket=RAW, Key="incoming/next.csv", Body=b"a,b\n3,4\n")
        assert original(processed_by(ddb, "incoming/next.csv"))
    finally:
        assert again.interrupt() == 130, "\n".join(again.lines)

    # and without --state dev starts clean, and says so
    clean = Running(["dev", "--port", str(port)], pipeline_dir, subprocess_env)
    try:
        clean.wait_for("^emulator starts clean, and what it holds is gone when dev stops")
        clean.wait_for("emulator at")
        assert ddb.get_item(TableName=TABLE, Key={"object_key": {
            "S": f"s3://{RAW}/incoming/kept.csv"}}).get("Item") is None
    finally:
        assert clean.interrupt() == 130, "\n".join(clean.lines)


def test_dev_refuses_a_state_file_it_cannot_read_in_one_line(pipectl, tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    (state / "emulator-state.pickle").write_bytes(b"not a pickle")
    result = pipectl("dev", "--port", str(free_port()), "--state", str(state), endpoint=False)
    assert result.code == 2
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: {state}/emulator-state.pickle: not emulator state pipectl can read ("), lines
    assert lines[0].endswith("move it away to start clean")
