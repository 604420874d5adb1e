"""The variant fixture runs a test on plain moto and on patched moto; ddb and sqs are
clients on a fresh mock of each."""

from __future__ import annotations

import boto3
import pytest
from moto import mock_aws

from tests.functional.moto_patches.variants import make_tables, use


@pytest.fixture(params=["plain", "patched"])
def variant(request, monkeypatch):
    use(request.param, monkeypatch)
    return request.param


@pytest.fixture
def ddb(variant):
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        make_tables(client)
        yield client


@pytest.fixture
def sqs(variant):
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")
