"""LocalStack as a second, independent emulator, started without Docker.

pipectl's conformance tests run the same scenarios on LocalStack as on moto, so a
behaviour is proven on two implementations. What it takes to run LocalStack here, all in
one place (the README's emulator facts say the same):

- localstack-core[runtime] imports under Python 3.13 (not 3.11), so it lives in a venv of
  its own and is started from that venv's python (`python -m localstack.runtime.main`);
- host mode: OVERRIDE_IN_DOCKER=0 (it takes a container for Docker and writes to
  /var/lib/localstack otherwise), a FILESYSTEM_ROOT of its own, no DNS server, no
  telemetry, no certificate download (the network reaches no LocalStack host);
- its DynamoDB needs a Java download, so DynamoDB is not started: callers point
  AWS_ENDPOINT_URL_DYNAMODB at a moto server;
- its Lambda prepares every function in Docker and, without it, leaves the function
  State=Failed; the store-only runtime executor in localstack_plugin.py, selected through
  LocalStack's own plugin namespace and LAMBDA_RUNTIME_EXECUTOR, prepares nothing, so
  CreateFunction reaches State=Active and pipectl's local runtime does the running.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from pipectl.errors import PipectlError
from pipectl.local.emulator import HOST, ensure_free, free_port

SERVICES = ("s3", "sqs", "iam", "sts", "logs", "events", "cloudwatch", "lambda", "sns")
READY_SECONDS = 180
STOP_SECONDS = 10
PLUGIN = Path(__file__).with_name("localstack_plugin.py")
# The plugin's entry point, as an installed distribution would declare it: plux (LocalStack's
# plugin loader) finds entry points through importlib.metadata on sys.path.
_DIST_INFO = "pipectl_localstack_executor-1.0.dist-info"
_ENTRY_POINTS = ("[localstack.lambda.runtime_executor]\n"
                 "{name} = localstack_plugin:StoreOnlyExecutorPlugin\n")


class LocalStack:
    """A LocalStack process on 127.0.0.1. Use as a context manager: nothing outlives it."""

    def __init__(self, python: str, root: Path, port: int = 0):
        self.python, self.root, self.requested_port = python, Path(root), port
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise PipectlError("LocalStack is not running")
        return f"http://{HOST}:{self.port}"

    @property
    def log_file(self) -> Path:
        return self.root / "localstack.log"

    def start(self) -> LocalStack:
        port = self.requested_port or free_port()
        ensure_free(port)
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.log_file, "wb") as log:
            self._proc = subprocess.Popen(
                [self.python, "-m", "localstack.runtime.main"], env=self._environment(port),
                cwd=self.root, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        self.port = port
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._proc is None:
            return
        if self._proc.poll() is None:
            os.killpg(self._proc.pid, signal.SIGTERM)
            try:
                self._proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait()
        self._proc = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _environment(self, port: int) -> dict[str, str]:
        plugin = self.root / "plugin"
        (plugin / _DIST_INFO).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(PLUGIN, plugin / "localstack_plugin.py")
        (plugin / _DIST_INFO / "METADATA").write_text(
            "Metadata-Version: 2.1\nName: pipectl-localstack-executor\nVersion: 1.0\n")
        (plugin / _DIST_INFO / "entry_points.txt").write_text(
            _ENTRY_POINTS.format(name="pipectl-store-only"))
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "PYTHON", "VIRTUAL_ENV"))}
        env.update(
            GATEWAY_LISTEN=f"{HOST}:{port}", SERVICES=",".join(SERVICES),
            EAGER_SERVICE_LOADING="1", OVERRIDE_IN_DOCKER="0",
            FILESYSTEM_ROOT=str(self.root / "fs"), DNS_ADDRESS="0", DISABLE_EVENTS="1",
            SKIP_SSL_CERT_DOWNLOAD="1", LAMBDA_RUNTIME_EXECUTOR="pipectl-store-only",
            PYTHONPATH=str(plugin), HOME=str(self.root))
        return env

    def _wait_ready(self) -> None:
        proc = self._proc
        assert proc is not None, "_wait_ready() follows the Popen in start()"
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise PipectlError(f"LocalStack exited with status {proc.returncode} "
                                   f"before it was ready: {self._last_line()}")
            if self._services_ready():
                return
            time.sleep(0.5)
        raise PipectlError(f"LocalStack was not ready after {READY_SECONDS} s: "
                           f"{self._last_line()}")

    def _services_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint}/_localstack/health",
                                        timeout=5) as response:
                states = json.load(response).get("services", {})
        except (OSError, urllib.error.URLError, ValueError):
            return False
        return all(states.get(s) in ("running", "available") for s in SERVICES)

    def _last_line(self) -> str:
        try:
            lines = self.log_file.read_text(errors="replace").strip().splitlines()
        except OSError:
            return "no log"
        errors = [line for line in lines if "ERROR" in line or "Error" in line]
        return (errors or lines or ["no output"])[-1].strip()
