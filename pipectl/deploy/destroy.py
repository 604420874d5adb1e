"""Remove what deploy made, in reverse dependency order.

Whatever holds data is kept unless purge is asked for: buckets with objects, tables
with rows (the results' history, the sink's records) and queues with messages (dead
letters above all). Deleting data is never a side effect. Shared documents
(notification rules) lose only pipectl's own entries. Something already gone when its
turn comes (deleted by hand, or still finishing an earlier delete) counts as deleted.
"""

from __future__ import annotations

from collections.abc import Callable

from pipectl.aws import awslambda, buckets, cloudwatch, dynamodb, events, iam, logs, sns, sqs
from pipectl.aws.session import Aws
from pipectl.config import PipelineConfig
from pipectl.deploy.desired import resources
from pipectl.deploy.models import (
    Alarm,
    Bucket,
    DeployPlan,
    EventSourceMapping,
    Function,
    LogGroup,
    Notification,
    Queue,
    Role,
    Schedule,
    Step,
    Table,
    Topic,
)
from pipectl.deploy.observe import observe
from pipectl.naming import Names

# Counting rows is a Scan; past this many the plan says "more than".
_COUNT_AT_MOST = 100_000


def build_destroy_plan(aws: Aws, config: PipelineConfig, *, purge: bool) -> DeployPlan:
    names = Names(config, aws.account, aws.region)
    steps = []
    for desired in reversed(resources(config, names, tls_only=True, local_runtime=False,
                                      cache_dir=None)):
        observed = observe(aws, desired)
        if observed is None:
            continue
        if isinstance(observed, Notification) and not observed.queue_rules:
            continue
        held = _holds(aws, desired)
        if held and not purge:
            steps.append(Step("noop", desired.kind, desired.name,
                              f"kept: holds {held} (pass --purge to delete them)",
                              desired=observed))
        elif held:
            steps.append(Step("delete", desired.kind, desired.name,
                              f"holds {held}: --purge deletes them", desired=observed))
        else:
            steps.append(Step("delete", desired.kind, desired.name, "deployed by pipectl",
                              desired=observed))
    return DeployPlan(target=aws.target.name, steps=tuple(steps))


def _holds(aws: Aws, r) -> str | None:
    """What data the resource holds ("303 rows"), None when it holds none."""
    if isinstance(r, Bucket):
        return None if buckets.is_empty(aws.client("s3"), r.name) else \
            "objects and their versions"
    if isinstance(r, Table):
        rows = dynamodb.count_items(aws.client("dynamodb"), r.name, at_most=_COUNT_AT_MOST)
        if rows > _COUNT_AT_MOST:
            return f"more than {_COUNT_AT_MOST:,} rows"
        return _plural(rows, "row") if rows else None
    if isinstance(r, Queue):
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
        _delete(aws, step.desired)


def _delete(aws: Aws, r) -> None:
    if isinstance(r, Alarm):
        cloudwatch.delete_alarms(aws.client("cloudwatch"), [r.name])
    elif isinstance(r, Topic):
        sns.delete_topic(aws.client("sns"), r.arn)
    elif isinstance(r, Schedule):
        events.delete_rule(aws.client("events"), r.name)
    elif isinstance(r, EventSourceMapping):
        awslambda.delete_mapping(aws.client("lambda"), r.uuid)
    elif isinstance(r, Function):
        awslambda.delete_function(aws.client("lambda"), r.name)
    elif isinstance(r, Role):
        iam.delete_role(aws.client("iam"), r.name)
    elif isinstance(r, LogGroup):
        logs.delete_group(aws.client("logs"), r.name)
    elif isinstance(r, Table):
        dynamodb.delete_table(aws.client("dynamodb"), r.name)
    elif isinstance(r, Notification):
        buckets.remove_queue_rules(aws.client("s3"), r.name, set(r.queue_rules))
    elif isinstance(r, Bucket):
        s3 = aws.client("s3")
        buckets.purge(s3, r.name)
        buckets.delete(s3, r.name)
    elif isinstance(r, Queue):
        client = aws.client("sqs")
        url = sqs.queue_url(client, r.name)
        if url is not None:
            sqs.delete_queue(client, url)
    else:
        raise TypeError(f"no destroyer for {type(r).__name__}")
