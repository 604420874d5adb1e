"""pipectl deploy: show the plan, then apply it."""

from __future__ import annotations

import sys

import typer

from pipectl import output
from pipectl.cli import context
from pipectl.deploy import engine
from pipectl.deploy.models import DeployPlan, Step
from pipectl.errors import ExitStatus, UsageError

_SYMBOL = {"create": "[green]+[/]", "update": "[yellow]~[/]", "noop": " "}


def deploy(
    ctx: typer.Context,
    dry_run: bool = typer.Option(False, "--dry-run", help="show the plan, change nothing"),
    yes: bool = typer.Option(False, "--yes", "-y", help="apply without asking"),
) -> None:
    """Create or update the pipeline's resources so they match pipeline.yaml."""
    app = context.get(ctx)
    plan = engine.build_plan(app.aws, app.config)
    if app.json and (dry_run or not plan.has_changes):
        output.print_json(plan_as_data(plan, applied=False))
        return
    if not app.json:
        render_plan(plan)
    if dry_run or not plan.has_changes:
        return
    confirm(f"Apply these changes to {app.aws.describe()}?", yes)
    engine.apply(app.aws, plan, on_step=lambda s: output.info(f"{s.action} {s.kind} {s.name}"))
    if app.json:
        output.print_json(plan_as_data(plan, applied=True))
    else:
        output.info(f"Applied: {plan.count('create')} created, {plan.count('update')} updated.")


def confirm(question: str, yes: bool) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise UsageError("refusing to change anything without confirmation: pass --yes")
    if not typer.confirm(question, default=False, err=True):
        raise typer.Exit(ExitStatus.FAILURE)


def render_plan(plan: DeployPlan) -> None:
    for note in plan.notes:
        output.warn(note)
    for step in plan.steps:
        output.stdout.print(f"{_SYMBOL[step.action]} {step.kind:<13}{step.name}  "
                            f"[dim]{step.reason}[/]", highlight=False)
        for change in step.changes:
            output.stdout.print(f"      {change.field}: {_short(change.before)} -> "
                                f"{_short(change.after)}", highlight=False, markup=False)
    output.stdout.print(
        f"Plan: {plan.count('create')} to create, {plan.count('update')} to update, "
        f"{plan.count('noop')} unchanged.", highlight=False)


def plan_as_data(plan: DeployPlan, *, applied: bool) -> dict:
    return {
        "target": plan.target,
        "changes": plan.has_changes,
        "applied": applied,
        "summary": {a: plan.count(a) for a in ("create", "update", "noop")},
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
