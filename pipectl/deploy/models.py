"""The resources a pipeline is made of, as plain data.

The desired state and the observed state are both built from these types, so a
plan is a field-by-field comparison. Every type has a `kind`, a deterministic
`name`, and comparable settings; fields marked `_NOT_COMPARED` carry what apply
needs (the zip itself) but are not part of the diff.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["create", "update", "delete", "noop"]


_NOT_COMPARED = {"compare": False}


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
    tags: dict[str, str] = field(default_factory=dict)  # the ownership tags
    kind: str = field(default="bucket", init=False)


@dataclass(frozen=True)
class Queue:
    role: str  # processing | dlq
    name: str
    attributes: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)  # the ownership tags
    kind: str = field(default="queue", init=False)


@dataclass(frozen=True)
class Table:
    name: str
    partition_key: str
    indexes: dict[str, tuple[str, str]] = field(default_factory=dict)
    billing_mode: str = "PAY_PER_REQUEST"
    point_in_time_recovery: bool = True
    tags: dict[str, str] = field(default_factory=dict)  # the ownership tags
    kind: str = field(default="table", init=False)


@dataclass(frozen=True)
class Notification:
    """pipectl's S3 -> queue rules on one bucket, by rule Id (other rules are not ours)."""

    name: str  # the bucket
    queue_rules: dict[str, dict] = field(default_factory=dict)
    # Ids starting with these are pipectl's for this pipeline, wanted or not: a rule for a
    # suffix taken out of processor.suffixes is read back and removed.
    owned_prefixes: tuple[str, ...] = field(default=(), metadata=_NOT_COMPARED)
    kind: str = field(default="notification", init=False)


@dataclass(frozen=True)
class LogGroup:
    name: str
    retention_days: int
    tags: dict[str, str] = field(default_factory=dict)  # the ownership tags
    kind: str = field(default="log_group", init=False)


@dataclass(frozen=True)
class Role:
    name: str
    trust_policy: dict
    inline_policies: dict[str, dict] = field(default_factory=dict)  # by policy name
    tags: dict[str, str] = field(default_factory=dict)  # the ownership tags
    kind: str = field(default="role", init=False)


@dataclass(frozen=True)
class Function:
    name: str
    role: str  # the role's name; apply resolves its ARN
    handler: str
    runtime: str
    architecture: str
    memory: int
    timeout: int
    environment: dict[str, str]
    tracing: str  # Active | PassThrough
    code_sha256: str
    # package.source_digest of what the zip was built from; observed from SOURCE_TAG, and
    # only while CODE_TAG still names the deployed code (else "": not known).
    source_sha256: str = ""
    # Why Lambda cannot run it ("" when it can): State=Failed or a failed last update,
    # with Lambda's reason. Desired is ""; a failed function is planned as an update.
    failure: str = ""
    tags: dict[str, str] = field(default_factory=dict)  # the ownership tags
    zip_bytes: bytes = field(default=b"", repr=False, metadata=_NOT_COMPARED)
    # The artifacts bucket the zip is staged in, for a zip past the direct-upload quota.
    code_bucket: str = field(default="", metadata=_NOT_COMPARED)
    kind: str = field(default="function", init=False)


# Deploy tags each function with what its code was built from and that code's hash, so
# `status` can tell drift from the sources alone; CODE_TAG shows whether anyone changed
# the code since (an upload outside pipectl leaves the tags behind).
SOURCE_TAG, CODE_TAG = "pipectl:source-sha256", "pipectl:code-sha256"
# Everything deploy creates carries these (pipectl:pipeline and pipectl:environment name
# whose it is), so a later deploy can find what it made and no longer wants; a resource
# without them is never swept, whatever its name.
MANAGED_TAG, PIPELINE_TAG, ENVIRONMENT_TAG = "managed-by", "pipectl:pipeline", "pipectl:environment"
OWNER_TAGS = (MANAGED_TAG, PIPELINE_TAG, ENVIRONMENT_TAG)


def owner_tags(pipeline: str, environment: str) -> dict[str, str]:
    return {MANAGED_TAG: "pipectl", PIPELINE_TAG: pipeline, ENVIRONMENT_TAG: environment}


def ownership(tags: dict[str, str]) -> dict[str, str]:
    """The ownership tags among a resource's tags (others' tags are not pipectl's)."""
    return {k: v for k, v in tags.items() if k in OWNER_TAGS}


@dataclass(frozen=True)
class EventSourceMapping:
    name: str  # "<queue> -> <function>"; AWS names mappings by UUID only
    function: str
    queue_arn: str
    batch_size: int
    batching_window: int
    max_concurrency: int
    report_batch_item_failures: bool = True
    # False where pipectl's local runtime serves the queue instead of Lambda (the emulator).
    enabled: bool = True
    tags: dict[str, str] = field(default_factory=dict)  # the ownership tags
    uuid: str = field(default="", metadata=_NOT_COMPARED)
    kind: str = field(default="mapping", init=False)


@dataclass(frozen=True)
class Schedule:
    name: str  # the EventBridge rule
    expression: str
    function: str
    function_arn: str
    enabled: bool = True
    # Lambda resource policy statement letting only this rule invoke the function.
    invoke_permission: bool = True
    tags: dict[str, str] = field(default_factory=dict)  # the ownership tags
    kind: str = field(default="schedule", init=False)


@dataclass(frozen=True)
class Topic:
    name: str
    arn: str
    email: str | None
    tags: dict[str, str] = field(default_factory=dict)  # the ownership tags
    kind: str = field(default="topic", init=False)


@dataclass(frozen=True)
class Alarm:
    name: str
    description: str
    namespace: str
    metric: str
    dimensions: dict[str, str]
    statistic: str
    period: int
    evaluation_periods: int
    threshold: float
    comparison: str
    treat_missing_data: str = "notBreaching"
    actions: tuple[str, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)  # the ownership tags
    kind: str = field(default="alarm", init=False)


@dataclass(frozen=True)
class Stray:
    """A resource deploy made for this pipeline (its ownership tags say so) that the
    desired set no longer holds: a sink taken out of pipeline.yaml, a renamed table."""

    kind: str
    name: str
    # What AWS deletes it by when that is not its name: a topic's or an alarm's ARN.
    ref: str = ""


Resource = (Bucket | Queue | Table | Notification | LogGroup | Role | Function
            | EventSourceMapping | Schedule | Topic | Alarm | Stray)


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
