"""Shared fixtures: fake credentials everywhere, and a moto server on 127.0.0.1 for server tests."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EVENTS = Path(__file__).resolve().parent / "events"
# Handlers are imported the way the local runtime and Lambda import them: from handlers/.
sys.path.insert(0, str(ROOT / "handlers"))


@pytest.fixture(scope="session", autouse=True)
def pipectl_cache_dir(tmp_path_factory):
    """Where deploy keeps the dependency sets it pip-installs for Lambda zips: a directory of
    this run, never the user's ~/.cache/pipectl. One for the whole session, so each set is
    installed once per run; pipectl subprocesses get it too (tests/server/conftest.py)."""
    path = tmp_path_factory.mktemp("pipectl-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PIPECTL_CACHE_DIR", str(path))
        yield path


@pytest.fixture(autouse=True)
def aws_credentials(monkeypatch):
    """Tests never touch real AWS: fake keys, no profile, no endpoint from the developer's shell."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "PIPECTL_CONFIG", "PIPECTL_TARGET"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)


@pytest.fixture(scope="session")
def moto_endpoint():
    """One moto server for the session; tests reset its state through moto's API. Its
    DynamoDB is made atomic and the burst patches applied as in pipectl's own emulator
    (AWS's guarantees, not shortcuts)."""
    from moto.server import ThreadedMotoServer

    from pipectl.local.emulator import prepare_moto

    prepare_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_server(moto_endpoint):
    import urllib.request

    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset",
                                                  method="POST")).read()
    return moto_endpoint


@pytest.fixture
def pipeline_dir(tmp_path):
    """A copy of this repository's pipeline (pipeline.yaml + handlers/) in a scratch directory."""
    shutil.copyfile(ROOT / "pipeline.yaml", tmp_path / "pipeline.yaml")
    shutil.copytree(ROOT / "handlers", tmp_path / "handlers",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path
