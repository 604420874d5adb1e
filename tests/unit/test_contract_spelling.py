"""Neither side spells a name of handlers/common/contract.py on its own: the handlers read
only the environment variables the contract lists, and by its names; neither side writes a
results status as a string of its own. Each scan is shown to catch a misspelling as well.
(test_contract.py checks that the values both sides use agree.)"""

import ast
from collections.abc import Iterator
from pathlib import Path

from common import contract

ROOT = Path(__file__).resolve().parents[2]
HANDLERS = ROOT / "handlers"
PIPECTL = ROOT / "pipectl"
CONTRACT = HANDLERS / "common" / "contract.py"


# --- environment variables ---------------------------------------------------------

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
