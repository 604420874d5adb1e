"""Handlers never import pipectl, so the results schema is written twice: keep it in step."""

import ast
from pathlib import Path

from common import results as handler_results
from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl import naming
from tests.helpers import ACCOUNT

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"


def test_results_schema_matches_between_pipectl_and_the_handlers():
    assert handler_results.RESULTS_PARTITION_KEY == naming.RESULTS_PARTITION_KEY
    assert handler_results.STATUS_INDEX == naming.STATUS_INDEX
    assert tuple(handler_results.STATUS_INDEX_KEYS) == naming.STATUS_INDEX_KEYS
    assert tuple(handler_results.RESULT_STATUSES) == naming.RESULT_STATUSES
    assert handler_results.COUNTERS_KEY == naming.COUNTERS_KEY
    assert tuple(handler_results.TALLIES) == naming.TALLIES


@given(bucket=st.from_regex(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", fullmatch=True),
       key=st.text(min_size=1, max_size=200))
@settings(max_examples=50, deadline=None)
def test_rows_are_keyed_alike_by_pipectl_and_the_handlers(bucket, key):
    # pipectl reads the rows the handlers write, by the same bucket-and-key partition key
    assert handler_results.row_key(bucket, key) == naming.row_key(bucket, key)
    assert handler_results._identity(naming.row_key(bucket, key)) == {"bucket": bucket,
                                                                       "key": key}


def test_configured_limits_are_the_ones_the_processor_reads():
    from processing import transform

    from pipectl.config import Limits

    assert set(Limits().environment()) == set(transform.LIMIT_DEFAULTS)
    assert {k: int(v) for k, v in Limits().environment().items()} == transform.LIMIT_DEFAULTS


def test_every_handler_requirement_is_a_pipectl_dependency():
    """The local runtime imports the handlers in pipectl's own environment."""
    import re

    import tomllib

    project = tomllib.loads((HANDLERS.parent / "pyproject.toml").read_text())["project"]
    installed = {re.split(r"[<>=\[ ]", d)[0].lower() for d in project["dependencies"]}
    lines = (line.split("#", 1)[0].strip() for line in
             (HANDLERS / "requirements.txt").read_text().splitlines())
    needed = {re.split(r"[<>=\[ ]", line)[0].lower() for line in lines if line}
    assert needed and needed <= installed


def test_handlers_never_import_pipectl():
    # the zip holds handlers/ and its packages only: an import of pipectl fails on Lambda
    checked = []
    for path in sorted(HANDLERS.rglob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.Import) for alias in node.names}
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)}
        assert "pipectl" not in imported, path.relative_to(HANDLERS)
        checked.append(path.relative_to(HANDLERS).parts[0])
    # every package is walked, not only the entry modules at the top
    assert {"processor.py", "archiver.py", "fetcher.py", "common", "processing", "archiving",
            "fetching"} <= set(checked)


def test_each_function_finds_every_setting_in_its_own_environment(monkeypatch):
    # given a pipeline whose prefixes, limits and function settings all differ from the
    # handlers' built-in defaults, so a variable left out of an environment shows
    import dataclasses

    import archiver
    import fetcher
    import processor

    from pipectl import config as config_module
    from pipectl.deploy.desired import function_environment
    from pipectl.naming import FUNCTIONS, Names

    cfg = config_module.load(HANDLERS.parent / "pipeline.yaml")
    cfg = dataclasses.replace(
        cfg, environment="qa",
        prefixes=config_module.Prefixes(*(f"custom-{f.name}/" for f in
                                          dataclasses.fields(config_module.Prefixes))),
        archiver=dataclasses.replace(cfg.archiver, retention_days=7, storage_class="GLACIER_IR"),
        fetcher=dataclasses.replace(cfg.fetcher, allow_private=True, request_timeout=3,
                                    max_bytes=1024, max_attempts=5),
        limits=dataclasses.replace(cfg.limits, **{
            f.name: getattr(cfg.limits, f.name) + 1 for f in dataclasses.fields(cfg.limits)}))
    names = Names(cfg, ACCOUNT, "us-east-1")
    environments = {kind: function_environment(cfg, names, kind) for kind in FUNCTIONS}
    every = {k: v for env in environments.values() for k, v in env.items()}
    loaders = {"processor": processor.Settings.from_env, "archiver": archiver.Settings.from_env,
               "fetcher": fetcher.Settings.from_env}

    def settings(kind: str, env: dict):
        for name in every:
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return loaders[kind]()

    for kind in FUNCTIONS:
        # when the handler reads only its own environment
        own = settings(kind, environments[kind])

        # then it has every setting it would have had with all of them, none defaulted
        assert own == settings(kind, every), kind
        assert own != settings(kind, {}), kind
