"""What exists now, read back from AWS into the same models as the desired state.

Read-only calls only. Only the settings pipectl manages are read, and only the
parts of shared settings (policy statements, lifecycle rules, notification rules)
that carry pipectl's identifiers, so other people's additions never show as drift.
"""

from __future__ import annotations

import json
from typing import Any

from pipectl.aws import awslambda, buckets, cloudwatch, dynamodb, events, iam, logs, sns, sqs
from pipectl.aws.session import Aws
from pipectl.deploy.desired import SCHEDULE_PERMISSION, canonical
from pipectl.deploy.models import (
    CODE_TAG,
    SOURCE_TAG,
    Alarm,
    Bucket,
    EventSourceMapping,
    Function,
    LogGroup,
    Notification,
    Queue,
    Resource,
    Role,
    Schedule,
    Table,
    Topic,
    ownership,
)


def observe(aws: Aws, desired: Resource) -> Resource | None:
    """The observed counterpart of a desired resource, or None if it does not exist."""
    # Dispatched on its type: each observer is given the kind it reads.
    kind: Any = desired
    observer = {
        Bucket: lambda: _bucket(aws.client("s3"), kind),
        Queue: lambda: _queue(aws.client("sqs"), kind),
        Table: lambda: _table(aws.client("dynamodb"), kind),
        Notification: lambda: _notification(aws.client("s3"), kind),
        LogGroup: lambda: _log_group(aws.client("logs"), kind),
        Role: lambda: _role(aws.client("iam"), kind),
        Function: lambda: _function(aws.client("lambda"), kind),
        EventSourceMapping: lambda: _mapping(aws.client("lambda"), kind),
        Schedule: lambda: _schedule(aws, kind),
        Topic: lambda: _topic(aws, kind),
        Alarm: lambda: _alarm(aws.client("cloudwatch"), kind),
    }.get(type(desired))
    if observer is None:
        raise TypeError(f"no observer for {type(desired).__name__}")
    return observer()


def _bucket(s3, desired: Bucket) -> Bucket | None:
    name = desired.name
    if not buckets.exists(s3, name):
        return None
    policy = buckets.policy(s3, name) or {}
    statements = {s.get("Sid"): s for s in policy.get("Statement", [])
                  if s.get("Sid") in desired.policy_statements}
    rules = {r["ID"]: r for r in buckets.lifecycle_rules(s3, name)
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
        tags=ownership(buckets.tags(s3, name)),
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
    return Queue(role=desired.role, name=desired.name, attributes=observed,
                 tags=ownership(sqs.tags(client, url)))


def _table(ddb, desired: Table) -> Table | None:
    found = dynamodb.describe_table(ddb, desired.name)
    if found is None:
        return None
    key = next(k["AttributeName"] for k in found["KeySchema"] if k["KeyType"] == "HASH")
    indexes: dict[str, Any] = {}
    for index in found.get("GlobalSecondaryIndexes", []):
        schema = {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
        indexes[index["IndexName"]] = (schema.get("HASH"), schema.get("RANGE"))
    billing = found.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    return Table(name=desired.name, partition_key=key, indexes=indexes, billing_mode=billing,
                 point_in_time_recovery=dynamodb.point_in_time_recovery(ddb, desired.name),
                 tags=ownership(dynamodb.tags(ddb, found["TableArn"])))


def _notification(s3, desired: Notification) -> Notification | None:
    if not buckets.exists(s3, desired.name):
        return None
    configuration = buckets.notifications(s3, desired.name)
    ours = {rule["Id"]: _comparable_queue_rule(rule)
            for rule in configuration.get("QueueConfigurations", [])
            if rule.get("Id") in desired.queue_rules
            or rule.get("Id", "").startswith(desired.owned_prefixes)}
    return Notification(name=desired.name, queue_rules=ours,
                        owned_prefixes=desired.owned_prefixes)


def _comparable_queue_rule(rule: dict) -> dict:
    rule = dict(rule)
    filters = rule.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    # S3 takes "prefix"/"suffix" but reads them back as "Prefix"/"Suffix", in any order.
    rule["Filter"] = {"Key": {"FilterRules": sorted(
        ({"Name": f["Name"].lower(), "Value": f["Value"]} for f in filters),
        key=lambda f: f["Name"])}}
    return rule


def _log_group(client, desired: LogGroup) -> LogGroup | None:
    found = logs.log_group(client, desired.name)
    if found is None:
        return None
    return LogGroup(desired.name, found.get("retentionInDays", 0),
                    tags=ownership(logs.tags(client, logs.group_arn(found))))


def _role(client, desired: Role) -> Role | None:
    found = iam.get_role(client, desired.name)
    if found is None:
        return None
    policies = iam.inline_policies(client, desired.name)
    return Role(name=desired.name, trust_policy=found["AssumeRolePolicyDocument"],
                inline_policies={n: d for n, d in policies.items()
                                 if n in desired.inline_policies},
                tags=ownership(iam.role_tags(client, desired.name)))


def _function(client, desired: Function) -> Function | None:
    tagged = awslambda.get_function_tagged(client, desired.name)
    if tagged is None:
        return None
    found, tags = tagged
    return Function(
        name=desired.name, role=found["Role"].rsplit("/", 1)[-1], handler=found["Handler"],
        runtime=found.get("Runtime", ""), architecture=(found.get("Architectures") or
                                                        ["x86_64"])[0],
        memory=found["MemorySize"], timeout=found["Timeout"],
        environment=found.get("Environment", {}).get("Variables", {}),
        tracing=found.get("TracingConfig", {}).get("Mode", "PassThrough"),
        code_sha256=found["CodeSha256"],
        source_sha256=tags.get(SOURCE_TAG, "") if tags.get(CODE_TAG) == found["CodeSha256"]
        else "",
        failure=awslambda.failure(found), tags=ownership(tags))


def _mapping(client, desired: EventSourceMapping) -> EventSourceMapping | None:
    found = awslambda.mappings(client, desired.function, desired.queue_arn)
    if not found:
        return None
    m = found[0]
    return EventSourceMapping(
        name=desired.name, function=desired.function, queue_arn=m["EventSourceArn"],
        batch_size=m["BatchSize"], batching_window=m.get("MaximumBatchingWindowInSeconds", 0),
        max_concurrency=m.get("ScalingConfig", {}).get("MaximumConcurrency", 0),
        report_batch_item_failures="ReportBatchItemFailures" in m.get("FunctionResponseTypes",
                                                                      []),
        # mappings() waited out the states on their way to another: Enabled or Disabled.
        enabled=m.get("State") == "Enabled", uuid=m["UUID"],
        tags=ownership(awslambda.tags(client, awslambda.mapping_arn(m))))


def _schedule(aws: Aws, desired: Schedule) -> Schedule | None:
    client = aws.client("events")
    found = events.get_rule(client, desired.name)
    if found is None:
        return None
    target = next((t["Arn"] for t in events.targets(client, desired.name)), "")
    statements = awslambda.policy_statements(aws.client("lambda"), desired.function)
    permitted = any(s.get("Sid") == SCHEDULE_PERMISSION and found["Arn"] in json.dumps(
        s.get("Condition", {})) for s in statements)
    return Schedule(name=desired.name, expression=found.get("ScheduleExpression", ""),
                    function=desired.function, function_arn=target,
                    enabled=found.get("State") == "ENABLED", invoke_permission=permitted,
                    tags=ownership(events.tags(client, found["Arn"])))


def _topic(aws: Aws, desired: Topic) -> Topic | None:
    client = aws.client("sns")
    if not sns.topic_exists(client, desired.arn):
        return None
    emails = sns.email_subscriptions(client, desired.arn)
    return Topic(desired.name, desired.arn, desired.email if desired.email in emails else None,
                 tags=ownership(sns.tags(client, desired.arn)))


def _alarm(client, desired: Alarm) -> Alarm | None:
    found = cloudwatch.alarms(client, [desired.name]).get(desired.name)
    if found is None:
        return None
    return Alarm(
        name=desired.name, description=found.get("AlarmDescription", ""),
        namespace=found.get("Namespace", ""), metric=found.get("MetricName", ""),
        dimensions={d["Name"]: d["Value"] for d in found.get("Dimensions", [])},
        statistic=found.get("Statistic", ""), period=found.get("Period", 0),
        evaluation_periods=found.get("EvaluationPeriods", 0),
        threshold=float(found.get("Threshold", 0)),
        comparison=found.get("ComparisonOperator", ""),
        treat_missing_data=found.get("TreatMissingData", "missing"),
        actions=tuple(found.get("AlarmActions", [])),
        tags=ownership(cloudwatch.tags(client, found["AlarmArn"])))
