"""Server tier: the real `pipectl` command, as a user or CI runs it, against a moto server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import boto3
import pytest

from tests.helpers import ACCOUNT


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)


def pipectl_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PIPECTL_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull,
               AWS_SHARED_CREDENTIALS_FILE=os.devnull, COLUMNS="200",
               PIPECTL_CACHE_DIR=os.environ["PIPECTL_CACHE_DIR"])  # tests/conftest.py's
    return env


@pytest.fixture
def pipectl(pipeline_dir, moto_server):
    """Run `pipectl --endpoint-url <moto> ARGS...` in a pipeline directory."""

    def run(*args: str, timeout: float = 120, endpoint: bool = True,
            env: dict[str, str] | None = None, cwd=None) -> Result:
        command = [sys.executable, "-m", "pipectl"]
        if endpoint:
            command += ["--endpoint-url", moto_server]
        done = subprocess.run(command + list(args), cwd=cwd or pipeline_dir,
                              env={**pipectl_env(), **(env or {})},
                              capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        return Result(done.returncode, done.stdout, done.stderr)

    return run


@pytest.fixture
def client(moto_server):
    def make(service: str):
        return boto3.client(service, endpoint_url=moto_server, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    return make


@pytest.fixture
def names():
    prefix = "pipectl-demo-dev"
    return {"raw": f"{prefix}-raw-{ACCOUNT}", "processed": f"{prefix}-processed-{ACCOUNT}",
            "archive": f"{prefix}-archive-{ACCOUNT}", "queue": f"{prefix}-processing",
            "dlq": f"{prefix}-processing-dlq", "table": f"{prefix}-results"}


@pytest.fixture
def subprocess_env() -> dict[str, str]:
    """The environment a pipectl subprocess gets: fake keys, nothing from the developer's shell."""
    return pipectl_env()


def deploy_and_process(pipectl, client, names, uploads: dict[str, bytes]):
    """The pipeline deployed, `uploads` put into the raw bucket and processed; the S3 client."""
    assert pipectl("deploy", "--yes").code == 0
    s3 = client("s3")
    for key, body in uploads.items():
        s3.put_object(Bucket=names["raw"], Key=key, Body=body)
    done = pipectl("run", "--until-idle", "--timeout", "90")
    assert done.code == 0, done.err
    return s3
