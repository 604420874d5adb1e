"""CLI tier: pipectl.cli.app.run in-process, asserting exit codes, exact messages and JSON."""

from __future__ import annotations

import pytest

from pipectl.cli.app import run
from tests.helpers import ACCOUNT

# mock_aws intercepts boto3 without an endpoint, so CLI tests use a plain AWS target.
AWS_CONFIG = """\
pipeline: demo
environment: dev
default_target: aws
targets:
  aws:
    region: us-east-1
"""


@pytest.fixture
def pipectl(pipeline_dir, capsys, monkeypatch):
    """Run pipectl with this pipeline; returns (exit code, stdout, stderr)."""
    monkeypatch.chdir(pipeline_dir)

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = run(["--config", str(pipeline_dir / "pipeline.yaml"), *args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def aws_pipeline(pipeline_dir):
    """The pipeline directory with a plain AWS target (for mock_aws) as its default."""
    (pipeline_dir / "pipeline.yaml").write_text(AWS_CONFIG)
    return pipeline_dir


RAW = f"demo-dev-raw-{ACCOUNT}"  # the raw bucket of AWS_CONFIG's pipeline


@pytest.fixture
def s3(aws_pipeline):
    """mock_aws with the pipeline's raw bucket only; yields an S3 client."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=RAW)
        yield client


@pytest.fixture
def names(aws_pipeline):
    from pipectl import config as config_module
    from pipectl.naming import Names

    return Names(config_module.load(aws_pipeline / "pipeline.yaml"), ACCOUNT,
                 "us-east-1")


@pytest.fixture
def deployed(names, pipectl):
    """The whole pipeline deployed under mock_aws by `pipectl deploy --yes`; yields its names."""
    import boto3
    from moto import mock_aws

    with mock_aws():
        code, _, err = pipectl("deploy", "--yes")
        assert code == 0, err
        # moto applies the TLS-only Deny without its aws:SecureTransport condition and would
        # refuse the tests' own https writes; AWS would not.
        s3 = boto3.client("s3", region_name="us-east-1")
        for bucket in names.bucket_roles().values():
            s3.delete_bucket_policy(Bucket=bucket)
        yield names
