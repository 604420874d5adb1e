"""Conformance tier: the server-tier scenarios again, on LocalStack (with DynamoDB on a moto
server), through the real `pipectl` command, so each behaviour holds on two emulators.

LocalStack runs from a Python of its own (PIPECTL_LOCALSTACK_PYTHON; `.ci/run` installs
it). In CI the tier must run: without LocalStack it fails, loudly. A developer without it
gets a skip that says how to get it.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import boto3
import pytest

from pipectl.local.localstack import LocalStack
from tests.server.conftest import Result

PYTHON_VARIABLE = "PIPECTL_LOCALSTACK_PYTHON"
HOW = ("LocalStack is not installed: `.ci/run` shows how (localstack-core under Python "
       f"3.13 in a venv of its own), then set {PYTHON_VARIABLE} to that venv's python")
_ENVIRONMENTS = itertools.count(1)



def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/conformance/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.conformance)


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def localstack(tmp_path_factory):
    python = os.environ.get(PYTHON_VARIABLE)
    if not python:
        if in_ci():
            pytest.fail(f"the conformance tier must run in CI: {HOW}", pytrace=False)
        pytest.skip(HOW)
    server = LocalStack(python, tmp_path_factory.mktemp("localstack"))
    try:
        server.start()
    except Exception as exc:  # a broken install is a failure, in CI and on a laptop alike
        pytest.fail(f"LocalStack ({python}) did not start: {exc} "
                    f"(log: {server.log_file})", pytrace=False)
    yield server.endpoint
    server.stop()


@pytest.fixture
def endpoints(localstack, moto_server) -> dict[str, str]:
    """The SDKs' standard variables: LocalStack for everything, DynamoDB on moto."""
    return {"AWS_ENDPOINT_URL": localstack, "AWS_ENDPOINT_URL_DYNAMODB": moto_server}


@pytest.fixture
def environment() -> str:
    """A fresh `environment:` per test: LocalStack keeps its state for the session, and
    every physical name derives from it, so tests never see each other's resources."""
    return f"c{next(_ENVIRONMENTS)}-{os.getpid()}"


@pytest.fixture
def pipeline(pipeline_dir, environment):
    path = pipeline_dir / "pipeline.yaml"
    text = path.read_text().replace("environment: dev ", f"environment: {environment} ", 1)
    assert f"environment: {environment}" in text
    path.write_text(text)
    return pipeline_dir


@pytest.fixture
def pipectl(pipeline, endpoints):
    """Run `pipectl ARGS...` with no --endpoint-url: the standard variables decide."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPECTL_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull, COLUMNS="200",
               PIPECTL_CACHE_DIR=os.environ["PIPECTL_CACHE_DIR"], **endpoints)

    def run(*args: str, timeout: float = 180) -> Result:
        done = subprocess.run([sys.executable, "-m", "pipectl", *args], cwd=pipeline,
                              env=env, capture_output=True,
                              text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        return Result(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def client(endpoints):
    def make(service: str):
        url = endpoints["AWS_ENDPOINT_URL_DYNAMODB" if service == "dynamodb"
                        else "AWS_ENDPOINT_URL"]
        return boto3.client(service, endpoint_url=url, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    return make


@pytest.fixture
def names(client, environment):
    account = client("sts").get_caller_identity()["Account"]
    prefix = f"pipectl-demo-{environment}"
    return {"raw": f"{prefix}-raw-{account}", "processed": f"{prefix}-processed-{account}",
            "archive": f"{prefix}-archive-{account}", "queue": f"{prefix}-processing",
            "dlq": f"{prefix}-processing-dlq", "table": f"{prefix}-results",
            "processor": f"{prefix}-processor", "account": account}
