"""What exists now, read back from AWS into the same models as the desired state.

Read-only calls only. Only the settings pipectl manages are read, and only the
parts of shared settings (policy statements, lifecycle rules, notification rules)
that carry pipectl's identifiers, so other people's additions never show as drift.
"""

from __future__ import annotations

import json

from pipectl.aws import buckets, dynamodb, sqs
from pipectl.aws.session import Aws
from pipectl.deploy.desired import canonical
from pipectl.deploy.models import Bucket, Notification, Queue, Resource, Table


def observe(aws: Aws, desired: Resource) -> Resource | None:
    """The observed counterpart of a desired resource, or None if it does not exist."""
    if isinstance(desired, Bucket):
        return _bucket(aws.client("s3"), desired)
    if isinstance(desired, Queue):
        return _queue(aws.client("sqs"), desired)
    if isinstance(desired, Table):
        return _table(aws.client("dynamodb"), desired)
    if isinstance(desired, Notification):
        return _notification(aws.client("s3"), desired)
    raise TypeError(f"no observer for {type(desired).__name__}")


def _bucket(s3, desired: Bucket) -> Bucket | None:
    name = desired.name
    if not buckets.exists(s3, name):
        return None
    policy = buckets.policy(s3, name) or {}
    statements = {s.get("Sid"): s for s in policy.get("Statement", [])
                  if s.get("Sid") in desired.policy_statements}
    rules = {r.get("ID"): r for r in buckets.lifecycle_rules(s3, name)
             if r.get("ID") in desired.lifecycle_rules}
    return Bucket(
        role=desired.role, name=name,
        versioning=buckets.versioning(s3, name) or "Disabled",
        encryption=buckets.encryption(s3, name) or "none",
        block_public_access=buckets.public_access_blocked(s3, name),
        ownership=buckets.ownership(s3, name) or "none",
        policy_statements={sid: _comparable_statement(s, desired.policy_statements[sid])
                           for sid, s in statements.items()},
        lifecycle_rules={rid: _comparable_rule(r) for rid, r in rules.items()},
    )


def _comparable_statement(observed: dict, desired: dict) -> dict:
    # IAM may return a one-element list as a plain string and vice versa.
    def norm(value):
        return sorted(value) if isinstance(value, list) else [value]

    return {k: (desired[k] if k in desired and k in ("Resource", "Action")
                and norm(v) == norm(desired[k]) else v) for k, v in observed.items()}


def _comparable_rule(rule: dict) -> dict:
    rule = dict(rule)
    # AWS returns an empty prefix filter and defaults in shapes of its own choosing.
    rule.pop("Prefix", None)
    return rule


def _queue(client, desired: Queue) -> Queue | None:
    url = sqs.queue_url(client, desired.name)
    if url is None:
        return None
    found = sqs.attributes(client, url)
    observed = {}
    for key in desired.attributes:
        value = found.get(key)
        if value is None:
            continue
        if key == "RedrivePolicy":
            policy = json.loads(value)
            policy["maxReceiveCount"] = int(policy["maxReceiveCount"])
            value = canonical(policy)
        elif key == "Policy":
            value = canonical(json.loads(value))
        observed[key] = value
    return Queue(role=desired.role, name=desired.name, attributes=observed)


def _table(ddb, desired: Table) -> Table | None:
    found = dynamodb.describe_table(ddb, desired.name)
    if found is None:
        return None
    key = next(k["AttributeName"] for k in found["KeySchema"] if k["KeyType"] == "HASH")
    indexes = {}
    for index in found.get("GlobalSecondaryIndexes", []):
        schema = {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
        indexes[index["IndexName"]] = (schema.get("HASH"), schema.get("RANGE"))
    billing = found.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    return Table(name=desired.name, partition_key=key, indexes=indexes, billing_mode=billing,
                 point_in_time_recovery=dynamodb.point_in_time_recovery(ddb, desired.name))


def _notification(s3, desired: Notification) -> Notification | None:
    if not buckets.exists(s3, desired.name):
        return None
    configuration = buckets.notifications(s3, desired.name)
    ours = {rule["Id"]: _comparable_queue_rule(rule)
            for rule in configuration.get("QueueConfigurations", [])
            if rule.get("Id") in desired.queue_rules}
    return Notification(name=desired.name, queue_rules=ours)


def _comparable_queue_rule(rule: dict) -> dict:
    rule = dict(rule)
    filters = rule.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    # S3 takes "prefix"/"suffix" but reads them back as "Prefix"/"Suffix", in any order.
    rule["Filter"] = {"Key": {"FilterRules": sorted(
        ({"Name": f["Name"].lower(), "Value": f["Value"]} for f in filters),
        key=lambda f: f["Name"])}}
    return rule
