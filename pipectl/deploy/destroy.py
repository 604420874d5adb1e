"""Remove what deploy made, in reverse dependency order.

Whatever holds data is kept unless purge is asked for: buckets with objects, tables
with rows (the results' history, the sink's records) and queues with messages (dead
letters above all). Deleting data is never a side effect. Shared documents
(notification rules) lose only pipectl's own entries. Something already gone when its
turn comes (deleted by hand, or still finishing an earlier delete) counts as deleted.
The role `reprocess --engine s3-batch` made goes first: nothing deploy made refers to it.
"""

from __future__ import annotations

from collections.abc import Callable

from pipectl.aws import awslambda, buckets, cloudwatch, dynamodb, events, iam, logs, sns, sqs
from pipectl.aws.session import Aws
from pipectl.config import CONFIG_FILE, PipelineConfig
from pipectl.deploy import sweep
from pipectl.deploy.desired import resources
from pipectl.deploy.models import (
    DeployPlan,
    EventSourceMapping,
    Notification,
    Resource,
    Role,
    Step,
    Stray,
)
from pipectl.deploy.observe import observe
from pipectl.naming import REPROCESS_BATCH_ROLE, Names

# Counting rows is a Scan; past this many the plan says "more than".
_COUNT_AT_MOST = 100_000
BATCH_ROLE_REASON = "made by `pipectl reprocess --engine s3-batch`"


def build_destroy_plan(aws: Aws, config: PipelineConfig, *, purge: bool) -> DeployPlan:
    names = Names(config, aws.account, aws.region)
    steps = []
    if (batch := batch_role(aws, names)) is not None:
        steps.append(removal(aws, batch, purge=purge, reason=BATCH_ROLE_REASON))
    made = resources(config, names, tls_only=True, local_runtime=False, cache_dir=None)
    for desired in reversed(made):
        observed = observe(aws, desired)
        if observed is None:
            continue
        if isinstance(observed, Notification) and not observed.queue_rules:
            continue
        steps.append(removal(aws, observed, purge=purge, reason="deployed by pipectl"))
    # What an earlier pipeline.yaml had deploy make (a sink since taken out) goes too.
    steps += [removal(aws, stray, purge=purge, reason="deployed by pipectl, no longer in "
                      f"{CONFIG_FILE}") for stray in sweep.strays(aws, names, made)]
    return DeployPlan(target=aws.target.name, steps=tuple(steps))


def batch_role(aws: Aws, names: Names) -> Role | None:
    """The role `reprocess --engine s3-batch` makes for S3 Batch Operations. deploy never
    makes it, so it is not among the resources: it is found by its deterministic name."""
    name = names.role(REPROCESS_BATCH_ROLE)
    found = iam.get_role(aws.client("iam"), name)
    return None if found is None else Role(name=name,
                                           trust_policy=found["AssumeRolePolicyDocument"])


def removal(aws: Aws, r: Resource, *, purge: bool, reason: str) -> Step:
    """The step that deletes r, or keeps it (a noop saying why) when it holds data and
    purge was not asked for."""
    held = holds(aws, r)
    if held and not purge:
        return Step("noop", r.kind, r.name, f"kept: holds {held} (pass --purge to delete them)",
                    desired=r)
    if held:
        return Step("delete", r.kind, r.name, f"holds {held}: --purge deletes them", desired=r)
    return Step("delete", r.kind, r.name, reason, desired=r)


def holds(aws: Aws, r: Resource) -> str | None:
    """What data the resource holds ("303 rows"), None when it holds none."""
    if r.kind == "bucket":
        return None if buckets.is_empty(aws.client("s3"), r.name) else \
            "objects and their versions"
    if r.kind == "table":
        rows = dynamodb.count_items(aws.client("dynamodb"), r.name, at_most=_COUNT_AT_MOST)
        if rows > _COUNT_AT_MOST:
            return f"more than {_COUNT_AT_MOST:,} rows"
        return _plural(rows, "row") if rows else None
    if r.kind == "queue":
        client = aws.client("sqs")
        url = sqs.queue_url(client, r.name)
        # Approximate counts (SQS is distributed), visible, in flight and delayed alike.
        messages = sqs.depth(client, url).total if url else 0
        return _plural(messages, "message") if messages else None
    return None


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def apply_destroy(aws: Aws, plan: DeployPlan,
                  on_step: Callable[[Step], None] = lambda s: None) -> None:
    for step in plan.steps:
        if step.action != "delete":
            continue
        on_step(step)
        assert step.desired is not None, "a delete step carries what it deletes"
        delete(aws, step.desired)


def delete(aws: Aws, r: Resource) -> None:
    """Delete one resource, by kind: an observed one, or a Stray found by its tags."""
    kind = r.kind
    if kind == "alarm":
        cloudwatch.delete_alarms(aws.client("cloudwatch"), [r.name])
    elif kind == "topic":
        sns.delete_topic(aws.client("sns"), r.ref if isinstance(r, Stray) else r.arn)  # type: ignore[union-attr]
    elif kind == "schedule":
        events.delete_rule(aws.client("events"), r.name)
    elif isinstance(r, EventSourceMapping):
        awslambda.delete_mapping(aws.client("lambda"), r.uuid)
    elif kind == "function":
        awslambda.delete_function(aws.client("lambda"), r.name)
    elif kind == "role":
        iam.delete_role(aws.client("iam"), r.name)
    elif kind == "log_group":
        logs.delete_group(aws.client("logs"), r.name)
    elif kind == "table":
        dynamodb.delete_table(aws.client("dynamodb"), r.name)
    elif isinstance(r, Notification):
        buckets.remove_queue_rules(aws.client("s3"), r.name, set(r.queue_rules))
    elif kind == "bucket":
        s3 = aws.client("s3")
        buckets.purge(s3, r.name)
        buckets.delete(s3, r.name)
    elif kind == "queue":
        client = aws.client("sqs")
        url = sqs.queue_url(client, r.name)
        if url is not None:
            sqs.delete_queue(client, url)
    else:
        raise TypeError(f"no destroyer for {type(r).__name__}")
