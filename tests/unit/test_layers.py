"""Layers run one way: aws/ at the bottom, local/ (the runtime) on it, deploy/ and ops/ above,
orchestration/ and cli/ on top. Checked by reading every module's imports with ast, function
bodies and TYPE_CHECKING blocks included, so a late import cannot hide a dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pipectl

ROOT = Path(pipectl.__file__).resolve().parent
# What each package may import from pipectl (itself always).
MAY_IMPORT = {
    "aws": {"config", "errors", "naming"},
    "local": {"aws", "config", "errors", "naming"},
}
# SDK packages only aws/ talks to: everything above it goes through aws/'s functions.
SDK = {"boto3", "botocore", "s3transfer"}
NO_SDK = ("ops", "deploy", "orchestration", "cli")


def imports(source: str, module: str) -> set[str]:
    """Every module name `source` imports: `from a.b import c` gives a.b and a.b.c (c may
    be a module), relative imports resolved against `module` (dotted, e.g. pipectl.ops.x)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[:-node.level]
                base = ".".join([*package, base] if base else package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def package_of(name: str) -> str | None:
    """pipectl.ops.replay -> ops; pipectl.errors -> errors; pipectl or outside -> None."""
    parts = name.split(".")
    return parts[1] if parts[0] == "pipectl" and len(parts) > 1 else None


def violations(package: str, source: str, module: str) -> list[str]:
    found = imports(source, module)
    problems = []
    if package in MAY_IMPORT:
        allowed = MAY_IMPORT[package] | {package}
        problems += [f"{module} imports {name}" for name in sorted(found)
                     if package_of(name) not in (None, *allowed)]
    if package in NO_SDK:
        problems += [f"{module} imports {name}" for name in sorted(found)
                     if name.split(".")[0] in SDK]
    return problems


def modules(package: str) -> list[tuple[str, str]]:
    """(dotted name, source) of every module in pipectl/<package>/."""
    return [(".".join(("pipectl", package, *path.relative_to(ROOT / package)
                       .with_suffix("").parts)), path.read_text())
            for path in sorted((ROOT / package).rglob("*.py"))]


@pytest.mark.parametrize("package", sorted({*MAY_IMPORT, *NO_SDK}))
def test_a_package_imports_only_the_layers_below_it(package):
    # given every module of the package
    found = modules(package)
    assert len(found) >= 3, f"pipectl/{package}/ has {len(found)} modules: the walk found nothing"
    assert any(package_of(name) for _, source in found
               for name in imports(source, "pipectl.x")), "no pipectl import read"

    # then none reaches up a layer, or past aws/ to the SDK
    problems = [p for name, source in found for p in violations(package, source, name)]
    assert problems == []


def test_the_packages_depend_on_each_other_without_a_cycle():
    # given which package imports which
    packages = [p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()]
    edges = {package: {package_of(name) for _, source in modules(package)
                       for name in imports(source, f"pipectl.{package}.x")} - {package, None}
             for package in packages}
    assert edges["cli"] >= {"ops", "deploy", "orchestration"}, edges["cli"]

    # then following the imports never comes back to where it started
    def cycle_from(start: str, path: tuple[str, ...]) -> tuple[str, ...] | None:
        for nxt in sorted(edges.get(path[-1], ())):
            if nxt == start:
                return (*path, nxt)
            if nxt not in path and (found := cycle_from(start, (*path, nxt))):
                return found
        return None

    assert [c for p in packages if (c := cycle_from(p, (p,)))] == []


@pytest.mark.parametrize(("package", "source", "expected"), [
    ("local", "from pipectl.ops import transfer\n", ["pipectl.x imports pipectl.ops",
                                                       "pipectl.x imports pipectl.ops.transfer"]),
    ("local", "def f():\n    from pipectl.deploy.engine import apply\n",
     ["pipectl.x imports pipectl.deploy.engine", "pipectl.x imports pipectl.deploy.engine.apply"]),
    ("local", "from pipectl import cli\n", ["pipectl.x imports pipectl.cli"]),
    ("aws", "from pipectl.local.emulator import Emulator\n",
     ["pipectl.x imports pipectl.local.emulator",
      "pipectl.x imports pipectl.local.emulator.Emulator"]),
    ("ops", "import botocore.exceptions\n", ["pipectl.x imports botocore.exceptions"]),
    ("ops", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import boto3\n",
     ["pipectl.x imports boto3"]),
    ("ops", "from boto3.s3.transfer import TransferConfig\n",
     ["pipectl.x imports boto3.s3.transfer", "pipectl.x imports boto3.s3.transfer.TransferConfig"]),
    ("local", "from pipectl.aws import sqs\nfrom pipectl.errors import NotFound\n"
              "import boto3\n", []),
    ("ops", "from pipectl.aws.session import Aws\nfrom pipectl.deploy import desired\n", []),
])
def test_the_check_sees_a_dependency_wherever_it_is_written(package, source, expected):
    assert violations(package, source, "pipectl.x") == expected


def test_relative_imports_resolve_to_the_package_they_name():
    assert imports("from ..ops import replay\n", "pipectl.local.runtime") >= {
        "pipectl.ops", "pipectl.ops.replay"}
    assert imports("from . import sqs\n", "pipectl.aws.s3") >= {"pipectl.aws.sqs"}
