"""Remove what deploy made, in reverse dependency order.

Buckets that still hold objects are kept unless purge is asked for: deleting data
is never a side effect. Shared documents (notification rules) lose only pipectl's
own entries.
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


def build_destroy_plan(aws: Aws, config: PipelineConfig, *, purge: bool) -> DeployPlan:
    names = Names(config, aws.account, aws.region)
    steps = []
    for desired in reversed(resources(config, names, tls_only=True, local_runtime=False,
                                      cache_dir=None)):
        observed = observe(aws, desired)
        if observed is None:
            continue
        if isinstance(desired, Bucket) and not buckets.is_empty(aws.client("s3"), desired.name):
            if not purge:
                steps.append(Step("noop", desired.kind, desired.name,
                                  "kept: holds objects (pass --purge to delete them and every "
                                  "version)", desired=observed))
                continue
            steps.append(Step("delete", desired.kind, desired.name,
                              "holds objects: --purge deletes them and every version",
                              desired=observed))
            continue
        if isinstance(desired, Notification) and not observed.queue_rules:
            continue
        steps.append(Step("delete", desired.kind, desired.name, "deployed by pipectl",
                          desired=observed))
    return DeployPlan(target=aws.target.name, steps=tuple(steps))


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
        s3 = aws.client("s3")
        configuration = buckets.notifications(s3, r.name)
        configuration["QueueConfigurations"] = [
            q for q in configuration.get("QueueConfigurations", [])
            if q.get("Id") not in r.queue_rules]
        buckets.put_notifications(s3, r.name, configuration)
    elif isinstance(r, Bucket):
        s3 = aws.client("s3")
        buckets.purge(s3, r.name)
        buckets.delete(s3, r.name)
    elif isinstance(r, Queue):
        client = aws.client("sqs")
        sqs.delete_queue(client, sqs.require_queue_url(client, r.name))
    else:
        raise TypeError(f"no destroyer for {type(r).__name__}")
