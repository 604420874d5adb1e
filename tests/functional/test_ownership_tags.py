"""Ownership tags (issue 20) under mock_aws: every resource deploy creates carries them,
through each service's own tagging API; what an older deploy made untagged is tagged by
an update, and only what carries this pipeline's tags is ever swept."""

from __future__ import annotations

import boto3

from pipectl.deploy import engine
from pipectl.deploy.desired import resources
from pipectl.deploy.sweep import strays

OWNER = {"managed-by": "pipectl", "pipectl:pipeline": "pipectl-demo",
         "pipectl:environment": "dev"}


def tags_of_everything(names) -> dict[str, dict[str, str]]:
    """Each resource's tags, read back through its own service's API."""
    region = {"region_name": "us-east-1"}
    s3, sqs, ddb = (boto3.client(s, **region) for s in ("s3", "sqs", "dynamodb"))
    lam, iam, logs = (boto3.client(s, **region) for s in ("lambda", "iam", "logs"))
    events, cw = boto3.client("events", **region), boto3.client("cloudwatch", **region)
    found = {}
    for role in ("raw", "processed", "archive"):
        found[names.bucket(role)] = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(
            Bucket=names.bucket(role))["TagSet"]}
    for queue in (names.queue, names.dlq, names.fetch_queue, names.fetch_dlq):
        found[queue] = sqs.list_queue_tags(QueueUrl=sqs.get_queue_url(
            QueueName=queue)["QueueUrl"])["Tags"]
    table = ddb.describe_table(TableName=names.results_table)["Table"]["TableArn"]
    found[names.results_table] = {t["Key"]: t["Value"] for t in ddb.list_tags_of_resource(
        ResourceArn=table)["Tags"]}
    for kind in ("processor", "archiver", "fetcher"):
        function = lam.get_function(FunctionName=names.function(kind))
        found[names.function(kind)] = function["Tags"]
        found[names.role(kind)] = {t["Key"]: t["Value"] for t in iam.list_role_tags(
            RoleName=names.role(kind))["Tags"]}
        group = logs.describe_log_groups(logGroupNamePrefix=names.log_group(kind))["logGroups"][0]
        found[names.log_group(kind)] = logs.list_tags_for_resource(
            resourceArn=group["arn"].removesuffix(":*"))["tags"]
        for mapping in lam.list_event_source_mappings(
                FunctionName=names.function(kind))["EventSourceMappings"]:
            found[mapping["UUID"]] = lam.list_tags(
                Resource=mapping["EventSourceMappingArn"])["Tags"]
    rule = events.describe_rule(Name=names.schedule_rule)["Arn"]
    found[names.schedule_rule] = {t["Key"]: t["Value"] for t in events.list_tags_for_resource(
        ResourceARN=rule)["Tags"]}
    for alarm in cw.describe_alarms(AlarmNamePrefix=names.prefix)["MetricAlarms"]:
        found[alarm["AlarmName"]] = {t["Key"]: t["Value"] for t in cw.list_tags_for_resource(
            ResourceARN=alarm["AlarmArn"])["Tags"]}
    return found


def test_everything_deploy_creates_carries_the_ownership_tags(aws, cfg, names):
    engine.apply(aws, engine.build_plan(aws, cfg))
    found = tags_of_everything(names)
    assert len(found) == 3 + 4 + 1 + 3 * 3 + 2 + 1 + 6
    assert {name: {k: v for k, v in tags.items() if k in OWNER} for name, tags in found.items()
            } == {name: OWNER for name in found}


def test_resources_an_older_deploy_left_untagged_are_tagged_by_an_update(aws, cfg, names):
    # given a deployment whose table, queue and role lost (or never had) the tags
    engine.apply(aws, engine.build_plan(aws, cfg))
    ddb, sqs = boto3.client("dynamodb", region_name="us-east-1"), boto3.client(
        "sqs", region_name="us-east-1")
    table = ddb.describe_table(TableName=names.results_table)["Table"]["TableArn"]
    ddb.untag_resource(ResourceArn=table, TagKeys=list(OWNER))
    url = sqs.get_queue_url(QueueName=names.dlq)["QueueUrl"]
    sqs.untag_queue(QueueUrl=url, TagKeys=list(OWNER))
    boto3.client("iam").untag_role(RoleName=names.role("archiver"), TagKeys=list(OWNER))

    # when deploy plans again
    plan = engine.build_plan(aws, cfg)

    # then exactly those three are updated, for their tags alone, and then all is no-op
    updates = {(s.kind, s.name): {c.field for c in s.changes} for s in plan.steps
               if s.action != "noop"}
    assert updates == {(kind, name): {f"tags.{key}" for key in OWNER} for kind, name in (
        ("table", names.results_table), ("queue", names.dlq),
        ("role", names.role("archiver")))}
    # untagged, the table is not this pipeline's as far as a sweep can tell
    assert ("table", names.results_table) not in {(s.kind, s.name)
                                                  for s in strays(aws, names, [])}
    engine.apply(aws, plan)
    assert not engine.build_plan(aws, cfg).has_changes
    assert tags_of_everything(names)[names.dlq] == OWNER


def test_a_stray_is_only_what_carries_this_pipelines_tags(aws, cfg, names):
    engine.apply(aws, engine.build_plan(aws, cfg))
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    for name, tags in (("mine", OWNER), ("untagged", {}),
                       ("other-env", {**OWNER, "pipectl:environment": "prod"}),
                       ("other-pipeline", {**OWNER, "pipectl:pipeline": "another"}),
                       ("not-managed", {**OWNER, "managed-by": "terraform"})):
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                         **({"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
                            if tags else {}))
    desired = resources(cfg, names, tls_only=True, local_runtime=False, cache_dir=None)
    assert [(s.kind, s.name) for s in strays(aws, names, desired)] == [("table", "mine")]
    # a desired resource is never a stray, tagged as it is
    assert ("table", names.results_table) not in {(s.kind, s.name)
                                                  for s in strays(aws, names, desired)}
