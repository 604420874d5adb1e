"""Carry out a plan: for each create or update step, the calls that make it so.

Updates touch only the fields the plan found different. Shared documents (bucket
policy, lifecycle, notifications) are read, merged and written, never replaced
wholesale: a blind put wipes other people's triggers (aws-cli#1974, boto3#763).
"""

from __future__ import annotations

from collections.abc import Callable

from pipectl.aws import buckets, dynamodb, sqs
from pipectl.aws.session import Aws
from pipectl.deploy.models import Bucket, DeployPlan, Notification, Queue, Step, Table
from pipectl.errors import PipectlError


def apply(aws: Aws, plan: DeployPlan, on_step: Callable[[Step], None] = lambda s: None) -> None:
    for step in plan.steps:
        if step.action == "noop":
            continue
        on_step(step)
        changed = {c.field.split(".", 1)[0] for c in step.changes}
        resource = step.desired
        if isinstance(resource, Bucket):
            _bucket(aws, resource, step.action == "create", changed)
        elif isinstance(resource, Queue):
            _queue(aws.client("sqs"), resource, step.action == "create")
        elif isinstance(resource, Table):
            _table(aws.client("dynamodb"), resource, step.action == "create", changed)
        elif isinstance(resource, Notification):
            _notification(aws.client("s3"), resource)
        else:
            raise TypeError(f"no applier for {type(resource).__name__}")


def _bucket(aws: Aws, b: Bucket, create: bool, changed: set[str]) -> None:
    s3 = aws.client("s3")
    if create:
        buckets.create(s3, b.name, aws.region)
        changed = {"block_public_access", "ownership", "encryption", "versioning",
                   "policy_statements", "lifecycle_rules"}
    if "block_public_access" in changed:
        buckets.block_public_access(s3, b.name)
    if "ownership" in changed:
        buckets.put_ownership(s3, b.name, b.ownership)
    if "encryption" in changed:
        buckets.put_encryption(s3, b.name, b.encryption)
    if "versioning" in changed:
        buckets.put_versioning(s3, b.name, b.versioning)
    if "policy_statements" in changed and b.policy_statements:
        current = buckets.policy(s3, b.name) or {"Version": "2012-10-17", "Statement": []}
        others = [s for s in current.get("Statement", [])
                  if s.get("Sid") not in b.policy_statements]
        buckets.put_policy(s3, b.name, {**current, "Statement": others +
                                        list(b.policy_statements.values())})
    if "lifecycle_rules" in changed and b.lifecycle_rules:
        others = [r for r in buckets.lifecycle_rules(s3, b.name)
                  if r.get("ID") not in b.lifecycle_rules]
        buckets.put_lifecycle_rules(s3, b.name, others + list(b.lifecycle_rules.values()))


def _queue(client, q: Queue, create: bool) -> None:
    if create:
        sqs.create(client, q.name, q.attributes)
        return
    sqs.set_attributes(client, sqs.require_queue_url(client, q.name), q.attributes)


def _table(ddb, t: Table, create: bool, changed: set[str]) -> None:
    if create:
        dynamodb.create_table(ddb, t.name, partition_key=t.partition_key, indexes=t.indexes,
                              tags={"managed-by": "pipectl"})
        changed = {"point_in_time_recovery"}
    if "partition_key" in changed or "billing_mode" in changed:
        raise PipectlError(f"table '{t.name}' has a different key schema or billing mode than "
                           "pipectl expects; DynamoDB cannot change that in place (delete or "
                           "rename the table)")
    if "indexes" in changed:
        existing = dynamodb.describe_table(ddb, t.name) or {}
        have = {i["IndexName"] for i in existing.get("GlobalSecondaryIndexes", [])}
        for index, (pk, sk) in t.indexes.items():
            if index not in have:
                dynamodb.add_index(ddb, t.name, index, pk, sk)
    if "point_in_time_recovery" in changed and t.point_in_time_recovery:
        dynamodb.enable_point_in_time_recovery(ddb, t.name)


def _notification(s3, n: Notification) -> None:
    configuration = buckets.notifications(s3, n.name)
    others = [r for r in configuration.get("QueueConfigurations", [])
              if r.get("Id") not in n.queue_rules]
    configuration["QueueConfigurations"] = others + list(n.queue_rules.values())
    buckets.put_notifications(s3, n.name, configuration)
