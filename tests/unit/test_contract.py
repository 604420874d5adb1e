"""Handlers never import pipectl, so the results schema is written twice: keep it in step."""

import ast
from pathlib import Path

import results as handler_results

from pipectl import naming

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"


def test_results_schema_matches_between_pipectl_and_the_handlers():
    assert handler_results.RESULTS_PARTITION_KEY == naming.RESULTS_PARTITION_KEY
    assert handler_results.STATUS_INDEX == naming.STATUS_INDEX
    assert tuple(handler_results.STATUS_INDEX_KEYS) == naming.STATUS_INDEX_KEYS
    assert tuple(handler_results.RESULT_STATUSES) == naming.RESULT_STATUSES
    assert handler_results.COUNTERS_KEY == naming.COUNTERS_KEY


def test_configured_limits_are_the_ones_the_processor_reads():
    import transform

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
    for path in HANDLERS.glob("*.py"):
        tree = ast.parse(path.read_text())
        imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                    if isinstance(node, ast.Import) for alias in node.names}
        imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                     if isinstance(node, ast.ImportFrom)}
        assert "pipectl" not in imported, path.name
