"""One contract between pipectl and the handlers: handlers/common/contract.py.

Handlers never import pipectl, and pipectl reads the names both sides share from that
one module (pipectl/contract.py loads it by its path). These tests check each side
against it: the environment deploy gives each function and the variables the handlers
read, the results table's schema and statuses, the record schema types, the archiver's
summary. That neither side spells one of those names on its own is
test_contract_spelling.py's part.
"""

import ast
import dataclasses
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from common import contract, row_access
from common import results as handler_results
from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl import naming
from pipectl.contract import contract as loaded_contract
from tests.helpers import ACCOUNT

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ROOT / "handlers"
CONTRACT = HANDLERS / "common" / "contract.py"


def test_results_schema_matches_between_pipectl_and_the_handlers():
    assert handler_results.RESULTS_PARTITION_KEY == naming.RESULTS_PARTITION_KEY
    assert handler_results.STATUS_INDEX == naming.STATUS_INDEX
    assert tuple(handler_results.STATUS_INDEX_KEYS) == naming.STATUS_INDEX_KEYS
    assert tuple(handler_results.RESULT_STATUSES) == naming.RESULT_STATUSES
    assert handler_results.COUNTERS_KEY == naming.COUNTERS_KEY
    assert tuple(handler_results.TALLIES) == naming.TALLIES
    assert handler_results.VERSION_VARIABLE == naming.PROCESSOR_VERSION_VARIABLE
    assert (handler_results.VERSION, handler_results.PREVIOUS_VERSION) == (
        naming.VERSION_FIELD, naming.PREVIOUS_VERSION_FIELD)


def test_the_reprocess_marker_is_spelled_alike_by_pipectl_and_the_handlers():
    from common import invocation, s3_event

    assert s3_event.REPROCESS_MARKER == naming.REPROCESS_MARKER
    assert (invocation.BATCH_RUN_ARGUMENT, invocation.BATCH_VERSION_ARGUMENT) == (
        naming.BATCH_RUN_ARGUMENT, naming.BATCH_VERSION_ARGUMENT)


@given(bucket=st.from_regex(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", fullmatch=True),
       key=st.text(min_size=1, max_size=200))
@settings(max_examples=50, deadline=None)
def test_rows_are_keyed_alike_by_pipectl_and_the_handlers(bucket, key):
    # pipectl reads the rows the handlers write, by the same bucket-and-key partition key
    assert handler_results.row_key(bucket, key) == naming.row_key(bucket, key)
    assert row_access.identity(naming.row_key(bucket, key)) == {"bucket": bucket,
                                                                 "key": key}


def test_configured_limits_are_the_ones_the_processor_reads():
    from processing import transform

    from pipectl.function_settings import Limits

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


# --- the contract module itself ----------------------------------------------------

def test_the_contract_needs_only_the_standard_library():
    # pipectl loads it by path in its own process, and every function's zip carries it
    tree = ast.parse(CONTRACT.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom)}
    assert imported and imported <= set(sys.stdlib_module_names) | {"__future__"}


def test_pipectl_loads_the_handlers_contract_file():
    assert Path(loaded_contract.__file__).resolve() == CONTRACT.resolve()
    names = [n for n in dir(contract) if n.isupper()]
    assert len(names) > 40
    for name in names:
        assert getattr(loaded_contract, name) == getattr(contract, name), name


def test_every_environment_name_is_its_own_value():
    # a constant spelled differently from its value reads some other variable
    for name in contract.environment_names():
        assert getattr(contract, name) == name


# --- environment variables ---------------------------------------------------------

def _config(with_optional: bool):
    from pipectl import config as config_module
    from pipectl.output_format import Output
    from pipectl.record_schemas import RecordSchema

    cfg = config_module.load(HANDLERS.parent / "pipeline.yaml")
    if with_optional:
        cfg = dataclasses.replace(cfg, schemas=(RecordSchema(suffix=".csv", required=("id",)),),
                                  sink=config_module.Sink(table="records"),
                                  output=Output(format="parquet"))
    else:
        cfg = dataclasses.replace(cfg, schemas=(), sink=None)
    return cfg, naming.Names(cfg, ACCOUNT, "us-east-1")


@pytest.mark.parametrize("with_optional", [True, False])
def test_deploy_sets_exactly_the_variables_the_contract_names(with_optional):
    from pipectl.deploy.desired import function_environment

    cfg, names = _config(with_optional)
    for kind in naming.FUNCTIONS:
        expected = set(contract.FUNCTION_ENVIRONMENT[kind])
        if not with_optional:
            expected -= set(contract.WHEN_CONFIGURED)
        assert set(function_environment(cfg, names, kind)) == expected, kind
    assert set(naming.FUNCTIONS) == set(contract.FUNCTION_ENVIRONMENT)


def test_the_processor_limits_are_the_contract_limit_variables():
    from processing import limits

    assert tuple(limits.LIMIT_DEFAULTS) == contract.LIMIT_VARIABLES
    # Limits.from_env reads each field's name in capitals
    assert tuple(f.name.upper() for f in dataclasses.fields(limits.Limits)) == \
        contract.LIMIT_VARIABLES


# --- statuses ----------------------------------------------------------------------

def test_statuses_and_outcomes_agree():
    from common.attempt import Outcome

    assert handler_results.RESULT_STATUSES == naming.RESULT_STATUSES == \
        tuple(s.value for s in contract.Status)
    # an attempt that ends PROCESSED or FAILED logs the row's status
    assert Outcome.PROCESSED == contract.Status.PROCESSED
    assert Outcome.FAILED == contract.Status.FAILED
    assert f"{contract.Status.FAILED}" == "FAILED" == str(loaded_contract.Status.FAILED)


# --- record schemas ----------------------------------------------------------------

def test_record_schema_types_and_rules_agree():
    from processing import schema

    from pipectl import record_schemas

    assert record_schemas.SCHEMA_TYPES == schema.TYPES == contract.SCHEMA_TYPES
    assert record_schemas.SCHEMA_RULES == schema.RULES == contract.SCHEMA_RULES
    # every type pipectl validate accepts is one the processor can check
    for kind in contract.SCHEMA_TYPES:
        for strings in (True, False):
            ok, _ = schema._typed(kind, strings)("x")
            assert ok in (True, False)


# --- the archiver's summary and run item -------------------------------------------

def test_pipectl_reads_the_archivers_summary_by_the_contract_keys(monkeypatch):
    import archiver
    from archiving.layout import Settings

    from pipectl.ops import archive as archive_ops

    # given one object old enough, as ListObjectsV2 lists it (Contents entries:
    # docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html)
    listed = {"Key": "processed/2024/05/01/a.csv.jsonl", "Size": 3, "ETag": '"0cc175b9"',
              "StorageClass": "STANDARD",
              "LastModified": datetime(2024, 5, 1, tzinfo=timezone.utc)}
    monkeypatch.setattr(archiver, "candidates", lambda s, request: iter([listed]))
    settings_ = Settings(processed_bucket="p", archive_bucket="a", results_table="t")
    request = archiver.Request.from_event({"dry_run": True, "older_than_days": 1}, settings_)

    # when the archiver plans the run, and pipectl adds its invocations up
    summary = archiver.archive(settings_, request)
    run = archive_ops.combine([summary], where="local")

    # then the summary has the contract's keys, and pipectl read it
    assert tuple(summary) == contract.ARCHIVER_SUMMARY_KEYS
    assert [tuple(g) for g in summary["groups"]] == [contract.ARCHIVER_GROUP_KEYS]
    assert (run.to_move, run.bytes_to_move, run.run_id) == (1, 3, request.run_id)


def test_pipectl_reads_the_archivers_run_item_by_the_contract_keys(monkeypatch):
    import archiver
    from archiving.layout import Settings

    from pipectl.ops import results as results_ops

    written = []

    class Table:  # the boto3 Table method record_run calls on a run's first invocation
        def put_item(self, Item):
            written.append(Item)

    monkeypatch.setattr(archiver, "results_table", lambda name: Table())
    settings_ = Settings(processed_bucket="p", archive_bucket="a", results_table="t")
    request = archiver.Request.from_event({}, settings_)
    summary = {"started_at": "2024-05-01T00:00:00+00:00", "remaining": 0,
               "skipped_glacier": 1, "moved": 2, "bytes": 30, "errors": 0, "duration_ms": 5}
    archiver.record_run(settings_, request, summary)
    (item,) = written
    assert set(item) == {contract.RESULTS_PARTITION_KEY, *contract.ARCHIVER_RUN_KEYS}
    assert item[contract.RESULTS_PARTITION_KEY] == contract.ARCHIVER_KEY == naming.ARCHIVER_KEY

    monkeypatch.setattr(results_ops.dynamodb, "get_item", lambda ddb, table, key: item)
    _, names = _config(False)
    read = results_ops.last_archiver_run(None, names)
    assert read == {"last_run_at": "2024-05-01T00:00:00+00:00", "moved": 2, "bytes": 30,
                    "errors": 0}
    assert set(read) <= set(contract.ARCHIVER_RUN_KEYS)
