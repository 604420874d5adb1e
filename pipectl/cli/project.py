"""pipectl init / validate."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import typer

from pipectl import output
from pipectl.cli import context
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
    config = app.config  # raises ConfigError with every problem
    if app.json:
        output.print_json({"valid": True, "path": str(config.path), "pipeline": config.name,
                           "environment": config.environment,
                           "targets": {n: asdict(t) for n, t in config.targets.items()}})
        return
    output.info(f"{config.path}: valid (pipeline '{config.name}', environment "
                f"'{config.environment}', targets: {', '.join(sorted(config.targets))})")


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(validate)
