"""One contract between pipectl and the handlers: handlers/common/contract.py.

Handlers never import pipectl, and pipectl reads the names both sides share from that
one module (pipectl/contract.py loads it by its path). These tests check each side
against it: the environment deploy gives each function and the variables the handlers
read, the results table's schema and statuses, the record schema types, the archiver's
summary; and that neither side spells one of those names on its own.
"""

import ast
import dataclasses
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from common import contract
from common import results as handler_results
from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl import naming
from pipectl.contract import contract as loaded_contract
from tests.helpers import ACCOUNT

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ROOT / "handlers"
PIPECTL = ROOT / "pipectl"
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
    assert handler_results._identity(naming.row_key(bucket, key)) == {"bucket": bucket,
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


def _handler_sources() -> Iterator[tuple[Path, ast.AST]]:
    for path in sorted(HANDLERS.rglob("*.py")):
        if path != CONTRACT:
            yield path, ast.parse(path.read_text())


def _contract_aliases(tree: ast.AST) -> tuple[set[str], list[str]]:
    """Names bound to the contract module, and names imported from it directly."""
    aliases, imported = set(), []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "common":
            aliases |= {a.asname or a.name for a in node.names if a.name == "contract"}
        elif isinstance(node, ast.ImportFrom) and node.module == "common.contract":
            imported += [a.name for a in node.names]
    return aliases, imported


def _is_environ(node: ast.AST) -> bool:
    text = ast.unparse(node)
    return "environ" in text or text in ("env", "get", "os.getenv")


def environment_lookups(tree: ast.AST) -> Iterator[tuple[int, ast.AST]]:
    """(line, the name's expression) of each os.environ lookup: environ.get(X),
    environ[X], os.getenv(X), and get(X) where get = os.environ.get."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if (isinstance(func, ast.Attribute) and func.attr in ("get", "pop", "setdefault")
                    and _is_environ(func.value)) or \
                    (isinstance(func, ast.Name) and func.id == "get") or \
                    ast.unparse(func) == "os.getenv":
                yield node.lineno, node.args[0]
        elif isinstance(node, ast.Subscript) and _is_environ(node.value) and \
                isinstance(node.ctx, ast.Load):
            yield node.lineno, node.slice


def unknown_environment_names(tree: ast.AST, where: str) -> list[str]:
    """Lookups that spell a name themselves, or use one the contract does not list."""
    aliases, _ = _contract_aliases(tree)
    imported = dict.fromkeys(_contract_aliases(tree)[1])
    known = contract.environment_names()
    bad = []
    for line, name in environment_lookups(tree):
        if isinstance(name, ast.Constant):
            bad.append(f"{where}:{line}: {name.value!r} spelled out (use common.contract)")
        elif isinstance(name, ast.Attribute) and isinstance(name.value, ast.Name) \
                and name.value.id in aliases:
            if getattr(contract, name.attr, None) not in known:
                bad.append(f"{where}:{line}: contract.{name.attr} is no variable it lists")
        elif isinstance(name, ast.Name) and name.id in imported:
            if getattr(contract, name.id, None) not in known:
                bad.append(f"{where}:{line}: {name.id} is no variable the contract lists")
    return bad


def test_the_scan_finds_a_misspelled_or_unlisted_variable():
    # the scan itself can fail: a literal, and a contract name that is not a variable
    tree = ast.parse("import os\nfrom common import contract as env\n"
                     "a = os.environ.get('RAW_BUCKT')\nb = os.environ[env.STATUS_INDEX]\n"
                     "get = os.environ.get\nc = get(env.RAW_BUCKET)\n")
    assert [line.split(":")[1] for line in unknown_environment_names(tree, "x")] == ["3", "4"]


def test_the_handlers_read_only_variables_the_contract_names():
    bad, lookups = [], 0
    for path, tree in _handler_sources():
        where = str(path.relative_to(HANDLERS))
        lookups += len(list(environment_lookups(tree)))
        bad += unknown_environment_names(tree, where)
        # and every contract name a handler uses exists (an AttributeError only at run time)
        aliases, imported = _contract_aliases(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.value.id in aliases and not hasattr(contract, node.attr):
                bad.append(f"{where}:{node.lineno}: contract.{node.attr} is not defined")
        bad += [f"{where}: {n} is not in the contract" for n in imported
                if not hasattr(contract, n)]
    assert bad == []
    assert lookups > 30   # the scan saw the handlers' settings, not nothing


# --- statuses ----------------------------------------------------------------------

def _is_status(node: ast.AST, bare: bool) -> bool:
    """row.status, row["status"], row.get("status"), and with bare a variable `status`
    (pipectl has variables of that name for AWS statuses: a task's, a table's backups)."""
    if isinstance(node, ast.Attribute):
        return node.attr == "status"
    if isinstance(node, ast.Name):
        return bare and node.id == "status"
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == "status"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
            and node.func.attr == "get" and node.args:
        return isinstance(node.args[0], ast.Constant) and node.args[0].value == "status"
    return False


def _capitals(node: ast.AST) -> list[str]:
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant)
            and isinstance(n.value, str) and n.value.isupper() and n.value.isidentifier()]


def status_literals(tree: ast.AST, bare: bool = True) -> Iterator[tuple[int, str, str]]:
    """Statuses spelled as strings: (line, the string, how): compared with a status
    ("compare"), queried as ("status", S) ("query"), or passed as status= ("keyword")."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            if any(_is_status(side, bare) for side in sides):
                for side in sides:
                    yield from ((node.lineno, v, "compare") for v in _capitals(side))
        elif isinstance(node, ast.keyword) and node.arg == "status" \
                and isinstance(node.value, ast.Constant):
            yield from ((node.value.lineno, v, "keyword") for v in _capitals(node.value))
        elif isinstance(node, ast.Tuple) and len(node.elts) == 2 \
                and isinstance(node.elts[0], ast.Constant) and node.elts[0].value == "status":
            yield from ((node.lineno, v, "query") for v in _capitals(node.elts[1]))


def test_the_handlers_spell_no_status_themselves():
    # given the statuses, which the handlers use as contract.Status members
    statuses = set(contract.RESULT_STATUSES)
    bad = []
    for path, tree in _handler_sources():
        where = str(path.relative_to(HANDLERS))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and node.value in statuses:
                bad.append(f"{where}:{node.lineno}: {node.value!r}")
        # nor compare a row's status with any other string (log lines' statuses such as
        # RETRY go to status= only)
        bad += [f"{where}:{line}: {value!r}" for line, value, how in status_literals(tree)
                if how != "keyword"]
    assert bad == []


# Log-line statuses pipectl reads from the archiver's output (ops/archive.py, _Progress),
# which are not results rows' statuses.
ARCHIVER_LOG_STATUSES = {"COPIED", "ERROR"}


def test_pipectl_spells_only_statuses_the_contract_defines():
    checked, bad = 0, []
    for path in sorted(PIPECTL.rglob("*.py")):
        if "template" in path.parts:
            continue
        for line, value, _ in status_literals(ast.parse(path.read_text()), bare=False):
            checked += 1
            if value not in set(contract.RESULT_STATUSES) | ARCHIVER_LOG_STATUSES:
                bad.append(f"{path.relative_to(PIPECTL)}:{line}: {value!r}")
    assert bad == []
    assert checked >= 5


def test_the_scans_find_a_misspelled_status():
    tree = ast.parse("if row.get('status') == 'PROCESED': pass\n"
                     "q = ('status', 'FAILD')\nlist_results(status='ARCHIVD')\n")
    assert sorted((v, how) for _, v, how in status_literals(tree)) == [
        ("ARCHIVD", "keyword"), ("FAILD", "query"), ("PROCESED", "compare")]


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
