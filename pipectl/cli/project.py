"""pipectl init / validate."""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path

import typer

from pipectl import config as config_module
from pipectl import output
from pipectl.cli import context
from pipectl.errors import ConfigError
from pipectl.project import init_project


def init(
    ctx: typer.Context,
    directory: Path = typer.Argument(Path("."), help="where to write the pipeline"),
    force: bool = typer.Option(False, "--force", help="overwrite an existing pipeline.yaml"),
) -> None:
    """Write a commented pipeline.yaml and the default handlers."""
    app = context.get(ctx)
    report = init_project(directory, force=force)
    if app.json:
        output.print_json(report)
        return
    for path in report.written:
        output.info(f"wrote {path}")
    output.info("next: `pipectl validate`, then `pipectl dev` (local) or `pipectl deploy`")


def validate(ctx: typer.Context) -> None:
    """Check pipeline.yaml; every problem with its file, line and key path (exit 2)."""
    app = context.get(ctx)
    try:
        config = app.config  # raises ConfigError with every problem
    except ConfigError as exc:
        if not app.json:
            raise
        # As `terraform validate -json`: the verdict and every problem, on stdout.
        path = config_module.find_config(app.config_path)
        output.print_json({"valid": False,
                           "problems": [problem_data(p, path) for p in exc.problems]})
        raise typer.Exit(exc.exit_status) from None
    if app.json:
        output.print_json({"valid": True, "problems": [], "path": str(config.path),
                           "pipeline": config.name,
                           "environment": config.environment,
                           "targets": {n: asdict(t) for n, t in config.targets.items()}})
        return
    output.info(f"{config.path}: valid (pipeline '{config.name}', environment "
                f"'{config.environment}', targets: {', '.join(sorted(config.targets))})")


# How config_reader words a problem after its file: ":<line>: <key path>: <message>", the
# line and the key path left out when there is none.
_PROBLEM = re.compile(r"(?::(?P<line>\d+))?: (?:(?P<path>[^\s:]+): )?(?P<message>.*)", re.S)


def problem_data(text: str, file: Path) -> dict:
    """One problem as {"file", "line", "path", "message"}."""
    rest = text.removeprefix(str(file))
    match = _PROBLEM.fullmatch(rest) if rest != text else None
    if match is None:
        return {"file": str(file), "line": None, "path": None, "message": text}
    return {"file": str(file), "line": int(match["line"]) if match["line"] else None,
            "path": match["path"], "message": match["message"]}


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(validate)
