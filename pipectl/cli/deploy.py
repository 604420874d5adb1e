"""pipectl deploy / destroy: show the plan, then apply it."""

from __future__ import annotations

import sys

import typer
from rich.text import Text

from pipectl import output
from pipectl.cli import context
from pipectl.deploy import destroy as destroyer
from pipectl.deploy import engine
from pipectl.deploy.models import DeployPlan, Step
from pipectl.errors import ExitStatus, UsageError

_SYMBOL = {"create": ("+", "green"), "update": ("~", "yellow"), "delete": ("-", "red"),
           "noop": ("=", "dim")}
# terraform plan -detailed-exitcode: 0 no changes, 1 error, 2 changes present.
CHANGES_PRESENT = 2


def deploy(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="show the plan, change nothing"),
    yes: bool = typer.Option(False, "--yes", "-y", help="apply without asking"),
    detailed_exitcode: bool = typer.Option(
        False, "--detailed-exitcode", help="exit 0 when nothing changes, 2 when something "
                                           "does (or would), 1 on errors"),
    purge: bool = typer.Option(False, "--purge", help="also delete what pipeline.yaml no "
                                                      "longer holds when it holds data (a "
                                                      "removed sink's table with rows)"),
) -> None:
    """Create or update the pipeline's resources so they match pipeline.yaml, and remove
    what deploy made that it no longer holds (kept while it holds data, unless --purge)."""
    app = context.get(ctx)
    plan = engine.build_plan(app.aws, app.config, on_phase=output.info, purge=purge)
    _show_and_apply(app, plan, dry_run=dry_run, yes=yes, question=(
        f"Apply these changes to {app.aws.describe()}?"),
        apply=lambda: engine.apply(app.aws, plan, on_step=_progress))
    if detailed_exitcode and plan.has_changes:
        raise typer.Exit(CHANGES_PRESENT)


def destroy(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="show what would go, change nothing"),
    yes: bool = typer.Option(False, "--yes", "-y", help="destroy without asking"),
    purge: bool = typer.Option(False, "--purge", help="also delete what holds data: buckets "
                                                      "with objects (every version), tables "
                                                      "with rows, queues with messages"),
) -> None:
    """Remove what deploy made; whatever holds data is kept unless --purge."""
    app = context.get(ctx)
    plan = destroyer.build_destroy_plan(app.aws, app.config, purge=purge)
    _show_and_apply(app, plan, dry_run=dry_run, yes=yes, question=(
        f"Destroy {plan.count('delete')} resources on {app.aws.describe()}?"),
        apply=lambda: destroyer.apply_destroy(app.aws, plan, on_step=_progress))


def _show_and_apply(app, plan: DeployPlan, *, dry_run: bool, yes: bool, question: str,
                    apply) -> None:
    if not app.json:
        render_plan(plan)
    if not dry_run and plan.has_changes:
        confirm(question, yes)
        apply()
        if not app.json:
            output.info(f"Applied: {plan.count('create')} created, {plan.count('update')} "
                        f"updated, {plan.count('delete')} deleted.")
    if app.json:
        output.print_json(plan_as_data(plan, applied=not dry_run and plan.has_changes)
                          | {"target": app.target_data()})


def _progress(step: Step) -> None:
    output.info(f"{step.action} {step.kind} {step.name}")


def confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError("refusing to change anything without confirmation: pass --yes")
    # Asked and read here rather than with click.confirm, whose input(" ") writes to stdout,
    # where data (and --output json) goes.
    output.stderr.print(Text(f"{output.plain(question)} [y/N]: "), end="", highlight=False)
    if sys.stdin.readline().strip().lower() not in ("y", "yes"):
        output.info("cancelled")
        raise typer.Exit(ExitStatus.FAILURE)


def render_plan(plan: DeployPlan) -> None:
    """Like terraform plan: what changes, line by line, then one summary line."""
    for note in plan.notes:
        output.warn(note)
    for step in plan.steps:
        if step.action == "noop" and step.reason == "up to date":
            continue
        # Text, never markup: names and reasons can quote what AWS holds.
        output.stdout.print(Text.assemble(_SYMBOL[step.action], f" {step.kind:<13}",
                                          output.plain(step.name), "  ",
                                          (output.plain(step.reason), "dim")), highlight=False)
        for change in step.changes:
            output.stdout.print(output.plain(f"      {change.field}: {_short(change.before)} -> "
                                             f"{_short(change.after)}"),
                                highlight=False, markup=False)
    unchanged = sum(1 for s in plan.steps if s.action == "noop")
    if not plan.has_changes:
        output.stdout.print(f"No changes: {unchanged} resources up to date.", highlight=False)
        return
    output.stdout.print(
        f"Plan: {plan.count('create')} to create, {plan.count('update')} to update, "
        f"{plan.count('delete')} to delete, {unchanged} unchanged.", highlight=False)


def plan_as_data(plan: DeployPlan, *, applied: bool) -> dict:
    return {
        "target": plan.target,
        "changes": plan.has_changes,
        "applied": applied,
        "summary": {a: plan.count(a) for a in ("create", "update", "delete", "noop")},
        "notes": list(plan.notes),
        "steps": [_step_data(s) for s in plan.steps],
    }


def _step_data(step: Step) -> dict:
    return {"action": step.action, "kind": step.kind, "name": step.name, "reason": step.reason,
            "changes": [{"field": c.field, "before": c.before, "after": c.after}
                        for c in step.changes]}


def _short(value) -> str:
    text = "(none)" if value is None else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def register(app: typer.Typer) -> None:
    app.command()(deploy)
    app.command()(destroy)
