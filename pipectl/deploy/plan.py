"""Desired vs observed -> a plan of create / update / noop steps. Pure: no AWS here."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from pipectl.deploy.models import Change, DeployPlan, Resource, Step

_IDENTITY = {"kind", "name", "role"}


def plan(target: str, pairs: list[tuple[Resource, Resource | None]],
         notes: tuple[str, ...] = ()) -> DeployPlan:
    return DeployPlan(target=target, steps=tuple(step(d, o) for d, o in pairs), notes=notes)


def step(desired: Resource, observed: Resource | None) -> Step:
    if observed is None:
        return Step("create", desired.kind, desired.name, "does not exist", desired=desired)
    changes = diff(desired, observed)
    if not changes:
        return Step("noop", desired.kind, desired.name, "up to date", desired=desired)
    reason = "differs: " + ", ".join(c.field for c in changes)
    return Step("update", desired.kind, desired.name, reason, tuple(changes), desired=desired)


def diff(desired: Resource, observed: Resource) -> list[Change]:
    changes: list[Change] = []
    for f in fields(desired):
        if f.name in _IDENTITY or not f.metadata.get("compare", True):
            continue
        want, have = getattr(desired, f.name), getattr(observed, f.name)
        if isinstance(want, dict) and isinstance(have, dict):
            changes += [Change(f"{f.name}.{key}", have.get(key), want.get(key))
                        for key in sorted(set(want) | set(have), key=str)
                        if _normal(want.get(key)) != _normal(have.get(key))]
        elif _normal(want) != _normal(have):
            changes.append(Change(f.name, have, want))
    return changes


def _normal(value: Any) -> Any:
    """Lists in AWS documents are unordered sets for comparison; tuples (key schemas) are not."""
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list):
        return sorted((_normal(v) for v in value), key=repr)
    if isinstance(value, tuple):
        return tuple(_normal(v) for v in value)
    return value
