"""Tests write nothing to the user's home: deploy's dependency cache is the run's own."""

from __future__ import annotations

import os
from pathlib import Path

from pipectl import config as config_module
from pipectl.deploy.engine import cache_dir
from tests.server.conftest import pipectl_env

ROOT = Path(__file__).resolve().parents[2]


def test_deploy_caches_lambda_dependencies_in_the_sessions_directory(pipectl_cache_dir):
    config = config_module.load(ROOT / "pipeline.yaml")

    used = cache_dir(config)

    assert used == pipectl_cache_dir
    assert not used.resolve().is_relative_to(Path.home().resolve() / ".cache")


def test_pipectl_subprocesses_get_the_same_cache(pipectl_cache_dir):
    assert pipectl_env()["PIPECTL_CACHE_DIR"] == str(pipectl_cache_dir)
    assert os.environ["PIPECTL_CACHE_DIR"] == str(pipectl_cache_dir)
