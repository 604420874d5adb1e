"""The resources a pipeline is made of, as plain data.

The desired state and the observed state are both built from these types, so a
plan is a field-by-field comparison. Functions, roles, event source mappings,
schedules and alarms join this list as further resource types with the same shape:
a `kind`, a deterministic `name`, and comparable settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["create", "update", "noop"]


@dataclass(frozen=True)
class Bucket:
    role: str  # raw | processed | archive
    name: str
    versioning: str = "Enabled"
    encryption: str = "AES256"
    block_public_access: bool = True
    ownership: str = "BucketOwnerEnforced"
    # pipectl's own statements by Sid; statements others added are left alone.
    policy_statements: dict[str, dict] = field(default_factory=dict)
    # pipectl's own lifecycle rules by ID; rules others added are left alone.
    lifecycle_rules: dict[str, dict] = field(default_factory=dict)
    kind: str = field(default="bucket", init=False)


@dataclass(frozen=True)
class Queue:
    role: str  # processing | dlq
    name: str
    attributes: dict[str, str] = field(default_factory=dict)
    kind: str = field(default="queue", init=False)


@dataclass(frozen=True)
class Table:
    name: str
    partition_key: str
    indexes: dict[str, tuple[str, str]] = field(default_factory=dict)
    billing_mode: str = "PAY_PER_REQUEST"
    point_in_time_recovery: bool = True
    kind: str = field(default="table", init=False)


@dataclass(frozen=True)
class Notification:
    """pipectl's S3 -> queue rules on one bucket, by rule Id (other rules are not ours)."""

    name: str  # the bucket
    queue_rules: dict[str, dict] = field(default_factory=dict)
    kind: str = field(default="notification", init=False)


Resource = Bucket | Queue | Table | Notification


@dataclass(frozen=True)
class Change:
    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class Step:
    action: Action
    kind: str
    name: str
    reason: str
    changes: tuple[Change, ...] = ()
    desired: Resource | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class DeployPlan:
    target: str
    steps: tuple[Step, ...]
    notes: tuple[str, ...] = ()

    @property
    def has_changes(self) -> bool:
        return any(step.action != "noop" for step in self.steps)

    def count(self, action: Action) -> int:
        return sum(1 for step in self.steps if step.action == action)
