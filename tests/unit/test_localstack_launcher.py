"""The LocalStack launcher's own failures are one clear line, never a hang or a traceback."""

from __future__ import annotations

import sys

import pytest

from pipectl.errors import PipectlError
from pipectl.local import localstack
from pipectl.local.localstack import LocalStack


def test_a_python_without_localstack_fails_at_once_with_its_error(tmp_path):
    # given a Python that has no LocalStack (this one)
    server = LocalStack(sys.executable, tmp_path)
    # when starting it, then the error says it exited and quotes the import error
    with pytest.raises(PipectlError, match=r"LocalStack exited with status 1 before it was "
                                           r"ready: .*No module named 'localstack'"):
        server.start()
    assert server.port is not None and server._proc is None  # nothing left running


def test_a_localstack_that_never_becomes_ready_is_stopped_after_the_wait(tmp_path,
                                                                         monkeypatch):
    # given a "LocalStack" that starts and never answers its health check
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexec sleep 60\n")
    fake.chmod(0o755)
    monkeypatch.setattr(localstack, "READY_SECONDS", 1)
    server = LocalStack(str(fake), tmp_path / "root")
    with pytest.raises(PipectlError, match="LocalStack was not ready after 1 s"):
        server.start()
    assert server._proc is None


def test_the_store_only_executor_is_declared_in_localstacks_plugin_namespace(tmp_path):
    # LocalStack finds executors by entry point; the launcher writes one beside the module
    environment = LocalStack(sys.executable, tmp_path)._environment(4599)
    plugin = tmp_path / "plugin"
    assert environment["PYTHONPATH"] == str(plugin)
    assert environment["LAMBDA_RUNTIME_EXECUTOR"] == "pipectl-store-only"
    assert (plugin / "localstack_plugin.py").read_text() == localstack.PLUGIN.read_text()
    points = next(plugin.glob("*.dist-info")) / "entry_points.txt"
    assert points.read_text().splitlines() == [
        "[localstack.lambda.runtime_executor]",
        "pipectl-store-only = localstack_plugin:StoreOnlyExecutorPlugin"]
    assert not any(k.startswith("AWS_") for k in environment)
