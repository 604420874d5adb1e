"""Carry out a plan: for each create or update step, the calls that make it so.

Updates touch only the fields the plan found different. Shared documents (bucket
policy, lifecycle, notifications) are read, merged and written, never replaced
wholesale: a blind put wipes other people's triggers (aws-cli#1974, boto3#763).
"""

from __future__ import annotations

from collections.abc import Callable

from pipectl.aws import awslambda, buckets, cloudwatch, dynamodb, events, iam, logs, sns, sqs
from pipectl.aws.session import Aws
from pipectl.deploy import destroy
from pipectl.deploy.desired import SCHEDULE_PERMISSION
from pipectl.deploy.models import (
    CODE_TAG,
    SOURCE_TAG,
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
from pipectl.errors import PipectlError


def apply(aws: Aws, plan: DeployPlan, on_step: Callable[[Step], None] = lambda s: None) -> None:
    for step in plan.steps:
        if step.action == "noop":
            continue
        on_step(step)
        if step.action == "delete":  # swept: made by deploy, no longer desired
            assert step.desired is not None, "a delete step carries what it deletes"
            destroy.delete(aws, step.desired)
            continue
        create = step.action == "create"
        changed = {c.field.split(".", 1)[0] for c in step.changes}
        resource = step.desired
        if isinstance(resource, Bucket):
            _bucket(aws, resource, create, changed)
        elif isinstance(resource, Queue):
            _queue(aws.client("sqs"), resource, create, changed)
        elif isinstance(resource, Table):
            _table(aws.client("dynamodb"), resource, create, changed)
        elif isinstance(resource, Notification):
            _notification(aws.client("s3"), resource)
        elif isinstance(resource, LogGroup):
            _log_group(aws.client("logs"), resource, create, changed)
        elif isinstance(resource, Role):
            _role(aws.client("iam"), resource, create, changed)
        elif isinstance(resource, Function):
            _function(aws, resource, create, changed)
        elif isinstance(resource, EventSourceMapping):
            _mapping(aws.client("lambda"), resource, create, changed)
        elif isinstance(resource, Schedule):
            _schedule(aws, resource, create, changed)
        elif isinstance(resource, Topic):
            _topic(aws.client("sns"), resource, create, changed)
        elif isinstance(resource, Alarm):
            _alarm(aws.client("cloudwatch"), resource, create, changed)
        else:
            raise TypeError(f"no applier for {type(resource).__name__}")


def _bucket(aws: Aws, b: Bucket, create: bool, changed: set[str]) -> None:
    s3 = aws.client("s3")
    if create:
        buckets.create(s3, b.name, aws.region)
        changed = {"block_public_access", "ownership", "encryption", "versioning",
                   "policy_statements", "lifecycle_rules", "tags"}
    if "tags" in changed:
        buckets.add_tags(s3, b.name, b.tags)
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


def _queue(client, q: Queue, create: bool, changed: set[str]) -> None:
    if create:
        sqs.create(client, q.name, q.attributes, q.tags)
        return
    url = sqs.require_queue_url(client, q.name)
    if changed - {"tags"}:
        sqs.set_attributes(client, url, q.attributes)
    if "tags" in changed:
        sqs.tag(client, url, q.tags)


def _table(ddb, t: Table, create: bool, changed: set[str]) -> None:
    if create:
        dynamodb.create_table(ddb, t.name, partition_key=t.partition_key, indexes=t.indexes,
                              tags=t.tags)
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
    if "tags" in changed:
        dynamodb.tag(ddb, dynamodb.describe_table(ddb, t.name)["TableArn"], t.tags)  # type: ignore[index]


def _notification(s3, n: Notification) -> None:
    configuration = buckets.notifications(s3, n.name)
    # pipectl's rules no longer wanted (a suffix taken out) go; anyone else's stay.
    others = [r for r in configuration.get("QueueConfigurations", [])
              if r.get("Id") not in n.queue_rules
              and not r.get("Id", "").startswith(n.owned_prefixes)]
    configuration["QueueConfigurations"] = others + list(n.queue_rules.values())
    buckets.put_notifications(s3, n.name, configuration)


def _log_group(client, group: LogGroup, create: bool, changed: set[str]) -> None:
    if create:
        logs.create_group(client, group.name, group.tags)
    elif "tags" in changed:
        logs.tag(client, logs.group_arn(logs.log_group(client, group.name)), group.tags)  # type: ignore[arg-type]
    if create or "retention_days" in changed:
        logs.set_retention(client, group.name, group.retention_days)


def _role(client, role: Role, create: bool, changed: set[str]) -> None:
    if create:
        iam.create_role(client, role.name, role.trust_policy, role.tags)
        changed = {"inline_policies"}
    if "tags" in changed:
        iam.tag_role(client, role.name, role.tags)
    if "trust_policy" in changed:
        iam.update_trust(client, role.name, role.trust_policy)
    if "inline_policies" in changed:
        for name, document in role.inline_policies.items():
            iam.put_inline_policy(client, role.name, name, document)


def _function_settings(f: Function) -> dict:
    return {"Handler": f.handler, "Runtime": f.runtime,
            "MemorySize": f.memory, "Timeout": f.timeout,
            "Environment": {"Variables": f.environment},
            "TracingConfig": {"Mode": f.tracing}}


def _function(aws: Aws, f: Function, create: bool, changed: set[str]) -> None:
    client = aws.client("lambda")
    role = iam.get_role(aws.client("iam"), f.role)
    if role is None:
        raise PipectlError(f"role '{f.role}' for function '{f.name}' does not exist")
    settings = {"Role": role["Arn"], **_function_settings(f)}
    code_tags = {SOURCE_TAG: f.source_sha256, CODE_TAG: f.code_sha256}
    if create:
        awslambda.create_function(client, FunctionName=f.name, Code=_code(aws, f),
                                  Architectures=[f.architecture], Tags={**f.tags, **code_tags},
                                  **settings)
        return
    # A failed function (State=Failed) gets its code again, which has Lambda retry it.
    code = {"code_sha256", "architecture", "failure"}
    if changed & code:
        awslambda.update_code(client, f.name, _code(aws, f), f.architecture)
    if changed & {*code, "source_sha256", "tags"}:
        awslambda.tag_function(client, f.name, {**f.tags, **code_tags})
    if changed - {*code, "source_sha256", "tags"}:
        awslambda.update_configuration(client, f.name, **settings)


def _code(aws: Aws, f: Function) -> dict:
    """Code= for CreateFunction / UpdateFunctionCode: the zip itself, or, past Lambda's
    50 MB direct-upload quota, where it was staged in the artifacts bucket. Lambda still
    reports the zip's own CodeSha256, so the plan compares it as before."""
    if not f.code_bucket:
        return {"ZipFile": f.zip_bytes}
    key = f"{f.name}/{f.code_sha256.replace('/', '_').replace('+', '-')}.zip"
    s3 = aws.client("s3")
    s3.put_object(Bucket=f.code_bucket, Key=key, Body=f.zip_bytes,
                  ContentType="application/zip")
    return {"S3Bucket": f.code_bucket, "S3Key": key}


def _mapping(client, m: EventSourceMapping, create: bool, changed: set[str]) -> None:
    settings = {"BatchSize": m.batch_size, "MaximumBatchingWindowInSeconds": m.batching_window,
                "ScalingConfig": {"MaximumConcurrency": m.max_concurrency},
                "FunctionResponseTypes": ["ReportBatchItemFailures"]
                if m.report_batch_item_failures else [],
                "Enabled": m.enabled}
    if create:
        awslambda.create_mapping(client, FunctionName=m.function, EventSourceArn=m.queue_arn,
                                 Tags=m.tags, **settings)
        return
    found = awslambda.mappings(client, m.function, m.queue_arn)[0]
    if changed - {"tags"}:
        awslambda.update_mapping(client, found["UUID"], **settings)
    if "tags" in changed:
        awslambda.tag(client, awslambda.mapping_arn(found), m.tags)


def _schedule(aws: Aws, s: Schedule, create: bool, changed: set[str]) -> None:
    client = aws.client("events")
    rule_arn = events.put_schedule(client, s.name, s.expression, s.enabled,
                                   f"pipectl: runs {s.function} on schedule")
    if create or "tags" in changed:
        events.tag(client, rule_arn, s.tags)
    events.put_target(client, s.name, "archiver", s.function_arn)
    # Only this rule may invoke the archiver (aws:SourceArn), not any EventBridge rule.
    awslambda.allow_invoke(aws.client("lambda"), s.function, SCHEDULE_PERMISSION,
                           "events.amazonaws.com", rule_arn)


def _topic(client, t: Topic, create: bool, changed: set[str]) -> None:
    arn = sns.create_topic(client, t.name)
    if create or "tags" in changed:
        sns.tag(client, arn, t.tags)
    if t.email and t.email not in sns.email_subscriptions(client, arn):
        sns.subscribe_email(client, arn, t.email)


def _alarm(client, a: Alarm, create: bool, changed: set[str]) -> None:
    if not create and changed == {"tags"}:
        cloudwatch.tag(client, cloudwatch.alarms(client, [a.name])[a.name]["AlarmArn"], a.tags)
        return
    cloudwatch.put_alarm(
        client, AlarmName=a.name, AlarmDescription=a.description, Namespace=a.namespace,
        MetricName=a.metric, Dimensions=[{"Name": k, "Value": v} for k, v in a.dimensions.items()],
        Statistic=a.statistic, Period=a.period, EvaluationPeriods=a.evaluation_periods,
        Threshold=a.threshold, ComparisonOperator=a.comparison,
        TreatMissingData=a.treat_missing_data, AlarmActions=list(a.actions),
        ActionsEnabled=bool(a.actions), Tags=[{"Key": k, "Value": v} for k, v in a.tags.items()])
    if not create and "tags" in changed:  # PutMetricAlarm ignores Tags on an update
        cloudwatch.tag(client, cloudwatch.alarms(client, [a.name])[a.name]["AlarmArn"], a.tags)
