"""A local worker calls the endpoints pipectl itself calls: AWS_ENDPOINT_URL_<SERVICE> (the
SDKs' standard), AWS_ENDPOINT_URL and --endpoint-url reach the handler process unchanged."""

from __future__ import annotations

import os
import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl.aws.session import HANDLER_SERVICES, Aws
from pipectl.config import Target
from pipectl.local.worker import Worker

# The handler reports where each of its boto3 clients would send requests.
ENDPOINTS = """
import boto3

def lambda_handler(event, context):
    return {s: boto3.client(s).meta.endpoint_url for s in event["services"]}
"""
AWS_TARGET = Target(name="prod", emulator=False, region="eu-west-1")


def handler_endpoints(tmp_path, aws: Aws) -> dict[str, str]:
    (tmp_path / "fn.py").write_text(textwrap.dedent(ENDPOINTS))
    worker = Worker(tmp_path, "fn.lambda_handler", aws.worker_environment(), "fn", timeout=20,
                    memory_mb=128, on_log=lambda line: None)
    with worker:
        return worker.invoke({"services": list(HANDLER_SERVICES)})


def cli_endpoints(aws: Aws) -> dict[str, str]:
    return {s: aws.client(s).meta.endpoint_url for s in HANDLER_SERVICES}


@pytest.mark.parametrize("variables, endpoint_url", [
    # LocalStack for everything but DynamoDB, which stays on a moto server
    ({"AWS_ENDPOINT_URL": "http://127.0.0.1:4566",
      "AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:5000"}, None),
    # one service redirected, the rest on AWS
    ({"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9000"}, None),
    # --endpoint-url wins over every variable, for pipectl's clients and so for the worker's
    ({"AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:5000"}, "http://127.0.0.1:4566"),
    # nothing configured: AWS's own endpoints on both sides
    ({}, None),
])
def test_worker_calls_where_pipectl_calls(tmp_path, monkeypatch, variables, endpoint_url):
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    aws = Aws.for_target(AWS_TARGET, endpoint_url=endpoint_url)
    assert handler_endpoints(tmp_path, aws) == cli_endpoints(aws)


@settings(max_examples=25, deadline=None)
@given(ports=st.dictionaries(st.sampled_from(("S3", "DYNAMODB", "SQS", "CLOUDWATCH_LOGS",
                                              "CLOUDWATCH", "")),
                             st.integers(1024, 65535), max_size=4))
def test_every_mix_of_endpoint_variables_is_passed_on(ports):
    # given any mix of global and per-service endpoint variables (a worker process per
    # example would be slow: this checks the environment handed to it, which botocore
    # resolves the same way in the worker as here)
    variables = {f"AWS_ENDPOINT_URL{'_' + s if s else ''}": f"http://127.0.0.1:{p}"
                 for s, p in ports.items()}
    with pytest.MonkeyPatch.context() as patch:
        for name in list(os.environ):
            if name.startswith("AWS_ENDPOINT_URL"):
                patch.delenv(name)
        for name, value in variables.items():
            patch.setenv(name, value)
        aws = Aws.for_target(AWS_TARGET)
        env = aws.endpoint_environment()
        resolved = cli_endpoints(aws)
    # then each handler service's resolved endpoint is spelled out for the worker, and
    # a service left on AWS gets no variable
    for service, endpoint in resolved.items():
        name = "AWS_ENDPOINT_URL_" + aws.client(service).meta.service_model.service_id \
            .replace(" ", "_").upper()
        if endpoint.startswith("http://127.0.0.1:"):
            assert env[name] == endpoint
        else:
            assert name not in env and ".amazonaws.com" in endpoint
