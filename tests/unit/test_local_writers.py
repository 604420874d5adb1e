"""The local runtime imports the handlers: a processor deployed for Parquet needs pyarrow in
pipectl's own environment, and says how to get it (one usage line, exit 2)."""

from __future__ import annotations

import importlib.util

import pytest

from pipectl.errors import UsageError
from pipectl.local.deployment import DeployedFunction, Deployment, Mapping
from pipectl.orchestration import session


def deployment(env: dict[str, str]) -> Deployment:
    function = DeployedFunction(name="demo-dev-processor", handler="processor.lambda_handler",
                                timeout=60, memory=512, environment=env)
    return Deployment(mappings=[Mapping(function=function, queue_url="http://q", queue_arn="arn",
                                        batch_size=10, visibility_timeout=360)], schedules=[])


def test_parquet_without_pyarrow_is_a_usage_error_naming_the_extra(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyarrow" else real(name, *a))
    with pytest.raises(UsageError, match=r"pip install 'pipectl\[parquet\]'"):
        session.require_writers(deployment({"OUTPUT_FORMAT": "parquet"}))
    session.require_writers(deployment({}))                    # JSON Lines needs nothing
    session.require_writers(deployment({"OUTPUT_FORMAT": "jsonl.gz"}))


def test_parquet_with_pyarrow_installed_starts():
    session.require_writers(deployment({"OUTPUT_FORMAT": "parquet"}))
