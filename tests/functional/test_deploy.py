"""Deploy against moto (mock_aws): everything read back matches pipeline.yaml; twice is a no-op."""

from __future__ import annotations

import json
from pathlib import Path

import boto3

from pipectl import config as config_module
from pipectl.deploy import engine
from pipectl.deploy.desired import TLS_STATEMENT
from tests.helpers import ACCOUNT

ROOT = Path(__file__).resolve().parents[2]
READ_ONLY = ("Get", "List", "Describe", "Head")
SERVICES = ("s3", "sqs", "dynamodb", "sts", "iam", "lambda", "logs", "events", "cloudwatch",
            "sns")
FUNCTIONS = ("processor", "archiver", "fetcher")
KINDS = {"queue": 4, "bucket": 3, "notification": 1, "table": 1, "log_group": 3, "role": 3,
         "function": 3, "mapping": 2, "schedule": 1, "alarm": 6}


def deploy(aws, cfg):
    plan = engine.build_plan(aws, cfg)
    engine.apply(aws, plan)
    return plan


def count_mutations(aws) -> list[str]:
    """Record every mutating API call made through this Aws's clients."""
    calls: list[str] = []
    for service in SERVICES:
        aws.client(service).meta.events.register(
            "before-call", lambda model, **_: calls.append(model.name)
            if not model.name.startswith(READ_ONLY) else None)
    return calls


def test_first_deploy_creates_everything_hardened(aws, cfg, names):
    plan = deploy(aws, cfg)
    assert {s.action for s in plan.steps} == {"create"}
    assert {k: sum(1 for s in plan.steps if s.kind == k) for k in KINDS} == KINDS

    s3 = boto3.client("s3", region_name="us-east-1")
    for role in ("raw", "processed", "archive"):
        bucket = names.bucket(role)
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values()) and len(block) == 4
        owner = s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]
        assert owner["Rules"][0]["ObjectOwnership"] == "BucketOwnerEnforced"
        # mock_aws speaks https, so the TLS-only statement is there (moto does not enforce it).
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        tls = next(s for s in policy["Statement"] if s["Sid"] == TLS_STATEMENT)
        assert tls["Effect"] == "Deny"
        assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}

    lifecycle = {r["ID"]: r for r in
                 s3.get_bucket_lifecycle_configuration(Bucket=names.bucket("archive"))["Rules"]}
    tiering, expiry = lifecycle["pipectl-archive-tiering"], lifecycle["pipectl-archive-expiry"]
    assert tiering["Transitions"] == [{"Days": 90, "StorageClass": "GLACIER"}]
    # The size filter AWS documents: objects under 128 KiB stay in STANDARD_IA.
    assert tiering["Filter"] == {"And": {"Prefix": "archive/", "ObjectSizeGreaterThan": 131071}}
    assert "Expiration" not in tiering
    assert expiry["Filter"] == {"Prefix": "archive/"}
    assert expiry["Expiration"] == {"Days": 365}
    assert expiry["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}
    for role in ("raw", "processed"):
        rules = s3.get_bucket_lifecycle_configuration(Bucket=names.bucket(role))["Rules"]
        assert [(r["ID"], r["Status"], r["Filter"], r["NoncurrentVersionExpiration"])
                for r in rules] == [("pipectl-noncurrent-expiry", "Enabled", {"Prefix": ""},
                                     {"NoncurrentDays": 30})]
        assert rules[0]["Expiration"] == {"ExpiredObjectDeleteMarker": True}


def test_queue_redrive_and_policy_let_only_the_raw_bucket_send(aws, cfg, names):
    deploy(aws, cfg)
    sqs = boto3.client("sqs", region_name="us-east-1")
    url = sqs.get_queue_url(QueueName=names.queue)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["VisibilityTimeout"] == str(6 * cfg.processor.timeout)
    redrive = json.loads(attrs["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"].endswith(":" + names.dlq)
    assert int(redrive["maxReceiveCount"]) == 3
    statement = json.loads(attrs["Policy"])["Statement"][0]
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == names.bucket_arn("raw")
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT


def test_notification_filters_incoming_prefix_and_each_suffix(aws, cfg, names):
    deploy(aws, cfg)
    s3 = boto3.client("s3", region_name="us-east-1")
    found = s3.get_bucket_notification_configuration(Bucket=names.bucket("raw"))
    rules = {r["Id"]: r for r in found["QueueConfigurations"]}
    assert len(rules) == len(cfg.processor.suffixes) + 3
    for suffix in cfg.processor.suffixes:
        rule = rules[names.notification_id(suffix)]
        filters = {f["Name"].lower(): f["Value"] for f in rule["Filter"]["Key"]["FilterRules"]}
        assert filters == {"prefix": "incoming/", "suffix": suffix}
        assert rule["QueueArn"] == names.queue_arn(names.queue)
    for suffix in (".json", ".yaml", ".yml"):
        rule = rules[names.notification_id(suffix, "fetch")]
        filters = {f["Name"].lower(): f["Value"] for f in rule["Filter"]["Key"]["FilterRules"]}
        assert filters == {"prefix": "fetch/", "suffix": suffix}
        assert rule["QueueArn"] == names.queue_arn(names.fetch_queue)


def test_results_table_has_the_status_index(aws, cfg, names):
    deploy(aws, cfg)
    table = boto3.client("dynamodb", region_name="us-east-1").describe_table(
        TableName=names.results_table)["Table"]
    index = table["GlobalSecondaryIndexes"][0]
    assert index["IndexName"] == "by-status"
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["status", "updated_at"]


def test_second_deploy_plans_all_noop_and_makes_no_mutating_call(aws, cfg):
    deploy(aws, cfg)
    calls = count_mutations(aws)
    plan = deploy(aws, cfg)
    assert {s.action for s in plan.steps} == {"noop"}
    assert calls == []


def test_one_changed_setting_is_exactly_one_update(aws, cfg):
    deploy(aws, cfg)
    cfg.path.write_text(cfg.path.read_text().replace("memory: 512 ", "memory: 1024 "))
    plan = engine.build_plan(aws, config_module.load(cfg.path))
    assert [(s.kind, s.name, [(c.field, c.before, c.after) for c in s.changes])
            for s in plan.steps if s.action != "noop"] == [
        ("function", "pipectl-demo-dev-processor", [("memory", 512, 1024)])]


def test_one_changed_setting_updates_exactly_what_depends_on_it(aws, cfg):
    deploy(aws, cfg)
    cfg.path.write_text(cfg.path.read_text().replace("max_receive_count: 3",
                                                     "max_receive_count: 5"))
    changed = config_module.load(cfg.path)
    plan = engine.build_plan(aws, changed)
    updates = [s for s in plan.steps if s.action != "noop"]
    # max_receive_count drives both queues' redrive to their dead-letter queues.
    assert [(s.kind, s.name, [c.field for c in s.changes]) for s in updates] == [
        ("queue", "pipectl-demo-dev-processing", ["attributes.RedrivePolicy"]),
        ("queue", "pipectl-demo-dev-fetch", ["attributes.RedrivePolicy"])]
    engine.apply(aws, plan)
    assert not engine.build_plan(aws, changed).has_changes


def test_noncurrent_version_days_changes_the_lifecycle_of_every_bucket(aws, cfg, names):
    deploy(aws, cfg)
    cfg.path.write_text(cfg.path.read_text().replace("noncurrent_version_days: 30 ",
                                                     "noncurrent_version_days: 7 "))
    changed = config_module.load(cfg.path)
    plan = engine.build_plan(aws, changed)
    assert [(s.kind, s.name, [c.field for c in s.changes])
            for s in plan.steps if s.action != "noop"] == [
        ("bucket", names.bucket(role), [f"lifecycle_rules.{rule}"])
        for role, rule in (("raw", "pipectl-noncurrent-expiry"),
                           ("processed", "pipectl-noncurrent-expiry"),
                           ("archive", "pipectl-archive-expiry"))]
    engine.apply(aws, plan)
    s3 = boto3.client("s3", region_name="us-east-1")
    for role in ("raw", "processed", "archive"):
        rules = s3.get_bucket_lifecycle_configuration(Bucket=names.bucket(role))["Rules"]
        assert {r["NoncurrentVersionExpiration"]["NoncurrentDays"] for r in rules
                if "NoncurrentVersionExpiration" in r} == {7}
    assert not engine.build_plan(aws, changed).has_changes


def test_a_function_setting_changes_only_the_environment_of_the_function_that_reads_it(
        aws, cfg):
    deploy(aws, cfg)
    cfg.path.write_text(cfg.path.read_text().replace("max_bytes: 52428800 ",
                                                     "max_bytes: 1048576 "))
    plan = engine.build_plan(aws, config_module.load(cfg.path))
    assert [(s.kind, s.name, [c.field for c in s.changes])
            for s in plan.steps if s.action != "noop"] == [
        ("function", "pipectl-demo-dev-fetcher", ["environment.FETCH_MAX_BYTES"])]


def test_function_timeout_changes_the_function_and_the_visibility_timeout(aws, cfg):
    deploy(aws, cfg)
    cfg.path.write_text(cfg.path.read_text().replace("timeout: 60 ", "timeout: 30 "))
    plan = engine.build_plan(aws, config_module.load(cfg.path))
    updates = {(s.kind, s.name): [(c.field, c.before, c.after) for c in s.changes]
               for s in plan.steps if s.action != "noop"}
    assert updates == {
        ("queue", "pipectl-demo-dev-processing"): [("attributes.VisibilityTimeout", "360",
                                                    "180")],
        ("function", "pipectl-demo-dev-processor"): [("timeout", 60, 30)]}


def test_functions_read_back_match_pipeline_yaml_and_their_zips(aws, cfg, names):
    plan = deploy(aws, cfg)
    lam = boto3.client("lambda", region_name="us-east-1")
    for step in (s for s in plan.steps if s.kind == "function"):
        found = lam.get_function(FunctionName=step.name)["Configuration"]
        assert found["CodeSha256"] == step.desired.code_sha256
        assert found["Runtime"] == "python3.12" and found["Architectures"] == ["x86_64"]
        assert found["Role"] == names.role_arn(step.name.rsplit("-", 1)[-1])
    processor = lam.get_function(FunctionName=names.function("processor"))["Configuration"]
    assert (processor["Handler"], processor["MemorySize"], processor["Timeout"]) == (
        "processor.lambda_handler", 512, 60)
    env = processor["Environment"]["Variables"]
    assert env["PROCESSED_BUCKET"] == names.bucket("processed")
    assert env["RESULTS_TABLE"] == names.results_table
    archiver = lam.get_function(FunctionName=names.function("archiver"))["Configuration"]
    assert (archiver["MemorySize"], archiver["Timeout"]) == (256, 300)


def test_a_changed_handler_changes_only_the_functions_that_import_it(aws, cfg, pipeline_dir):
    deploy(aws, cfg)
    calls = count_mutations(aws)
    with (pipeline_dir / "handlers" / "archiver.py").open("a") as f:
        f.write("\n# a comment is a change too\n")
    plan = deploy(aws, cfg)
    updates = [(s.kind, s.name, [c.field for c in s.changes])
               for s in plan.steps if s.action != "noop"]
    assert updates == [("function", "pipectl-demo-dev-archiver",
                         ["code_sha256", "source_sha256"])]
    assert calls == ["UpdateFunctionCode", "TagResource"]


def test_mappings_on_aws_are_enabled_with_partial_batch_responses(aws, cfg, names):
    deploy(aws, cfg)
    lam = boto3.client("lambda", region_name="us-east-1")
    for kind, queue, batch in (("processor", names.queue, 10), ("fetcher", names.fetch_queue, 1)):
        mapping = lam.list_event_source_mappings(
            FunctionName=names.function(kind))["EventSourceMappings"][0]
        assert mapping["EventSourceArn"] == names.queue_arn(queue)
        assert mapping["State"] == "Enabled"
        assert mapping["BatchSize"] == batch
        assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        assert mapping["ScalingConfig"] == {"MaximumConcurrency": 5}


def test_schedule_invokes_the_archiver_and_only_that_rule_may(aws, cfg, names):
    deploy(aws, cfg)
    events = boto3.client("events", region_name="us-east-1")
    rule = events.describe_rule(Name=names.schedule_rule)
    assert rule["ScheduleExpression"] == "cron(0 2 * * ? *)" and rule["State"] == "ENABLED"
    targets = events.list_targets_by_rule(Rule=names.schedule_rule)["Targets"]
    assert [t["Arn"] for t in targets] == [names.function_arn("archiver")]
    policy = json.loads(boto3.client("lambda", region_name="us-east-1").get_policy(
        FunctionName=names.function("archiver"))["Policy"])
    statement = policy["Statement"][0]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["ArnLike"]["AWS:SourceArn"] == rule["Arn"]


def test_alarms_and_log_retention(aws, cfg, names):
    deploy(aws, cfg)
    alarms = {a["AlarmName"]: a for a in boto3.client(
        "cloudwatch", region_name="us-east-1").describe_alarms()["MetricAlarms"]}
    assert set(alarms) == {names.alarm(f"{k}-errors") for k in FUNCTIONS} | {
        names.alarm("processing-dlq-not-empty"), names.alarm("fetch-dlq-not-empty"),
        names.alarm("oldest-message")}
    dlq = alarms[names.alarm("processing-dlq-not-empty")]
    assert (dlq["MetricName"], dlq["Threshold"], dlq["ComparisonOperator"]) == (
        "ApproximateNumberOfMessagesVisible", 0.0, "GreaterThanThreshold")
    assert dlq["Dimensions"] == [{"Name": "QueueName", "Value": names.dlq}]
    assert alarms[names.alarm("oldest-message")]["Threshold"] == 900.0
    groups = boto3.client("logs", region_name="us-east-1").describe_log_groups(
        logGroupNamePrefix="/aws/lambda/")["logGroups"]
    assert {g["logGroupName"]: g["retentionInDays"] for g in groups} == {
        names.log_group(k): 30 for k in FUNCTIONS}


def test_alarm_email_adds_a_topic_that_every_alarm_notifies(aws, cfg, names):
    cfg.path.write_text(cfg.path.read_text().replace("alarm_email: ",
                                                     "alarm_email: ops@example.com "))
    deploy(aws, config_module.load(cfg.path))
    sns = boto3.client("sns", region_name="us-east-1")
    topic = names.topic_arn(names.alarm_topic)
    subscriptions = sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert [(s["Protocol"], s["Endpoint"]) for s in subscriptions] == [
        ("email", "ops@example.com")]
    alarms = boto3.client("cloudwatch", region_name="us-east-1").describe_alarms()["MetricAlarms"]
    assert alarms and all(a["AlarmActions"] == [topic] for a in alarms)
    assert not engine.build_plan(aws, config_module.load(cfg.path)).has_changes


def test_roles_trust_only_lambda_and_their_policies_pass_parliament(aws, cfg, names):
    import parliament

    deploy(aws, cfg)
    iam = boto3.client("iam", region_name="us-east-1")
    for kind in FUNCTIONS:
        role = iam.get_role(RoleName=names.role(kind))["Role"]
        trust = role["AssumeRolePolicyDocument"]["Statement"]
        assert trust == [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                          "Action": "sts:AssumeRole"}]
        for name in iam.list_role_policies(RoleName=names.role(kind))["PolicyNames"]:
            document = iam.get_role_policy(RoleName=names.role(kind),
                                           PolicyName=name)["PolicyDocument"]
            findings = parliament.analyze_policy_string(json.dumps(document)).findings
            assert [(f.issue, f.detail) for f in findings] == []
            for statement in document["Statement"]:
                resources = statement["Resource"]
                resources = resources if isinstance(resources, list) else [resources]
                assert "*" not in resources, statement
                assert all(not r.endswith(":::*") for r in resources), statement
    assert not any(iam.list_attached_role_policies(RoleName=names.role(k))["AttachedPolicies"]
                   for k in FUNCTIONS)


def test_destroy_keeps_buckets_with_data_unless_purged(aws, cfg, names):
    from pipectl.deploy import destroy

    deploy(aws, cfg)
    s3 = boto3.client("s3", region_name="us-east-1")
    # moto applies the TLS-only Deny without its aws:SecureTransport condition, refusing
    # even this https request; AWS would accept it. The policy is not what is tested here.
    s3.delete_bucket_policy(Bucket=names.bucket("raw"))
    s3.put_object(Bucket=names.bucket("raw"), Key="incoming/keep.csv", Body=b"a\n1\n")

    plan = destroy.build_destroy_plan(aws, cfg, purge=False)
    destroy.apply_destroy(aws, plan)

    # The queues hold S3's s3:TestEvent, sent when the notification was configured.
    assert [(s.kind, s.name) for s in plan.steps if s.action == "noop"] == [
        ("bucket", names.bucket("raw")), ("queue", names.fetch_queue), ("queue", names.queue)]
    left = engine.build_plan(aws, cfg)
    # Only what was kept is left (and the notification rules on it, gone, are an update).
    assert {(s.kind, s.name) for s in left.steps if s.action != "create"} == {
        ("bucket", names.bucket("raw")), ("notification", names.bucket("raw")),
        ("queue", names.fetch_queue), ("queue", names.queue)}
    assert s3.get_object(Bucket=names.bucket("raw"), Key="incoming/keep.csv")["Body"].read()

    purge = destroy.build_destroy_plan(aws, cfg, purge=True)
    destroy.apply_destroy(aws, purge)
    assert {s.action for s in engine.build_plan(aws, cfg).steps} == {"create"}


def test_notification_merge_keeps_rules_pipectl_does_not_own(aws, cfg, names):
    deploy(aws, cfg)
    s3 = boto3.client("s3", region_name="us-east-1")
    sqs = boto3.client("sqs", region_name="us-east-1")
    other = sqs.create_queue(QueueName="someone-elses")["QueueUrl"]
    other_arn = sqs.get_queue_attributes(QueueUrl=other, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    raw = names.bucket("raw")
    current = s3.get_bucket_notification_configuration(Bucket=raw)
    current.pop("ResponseMetadata")
    current["QueueConfigurations"].append({
        "Id": "audit-trail", "QueueArn": other_arn, "Events": ["s3:ObjectRemoved:*"]})
    s3.put_bucket_notification_configuration(Bucket=raw, NotificationConfiguration=current)
    # Drop one of ours so the next deploy must write the configuration.
    txt_rule = names.notification_id(".txt")
    ours = [r for r in current["QueueConfigurations"] if r["Id"] != txt_rule]
    s3.put_bucket_notification_configuration(
        Bucket=raw, NotificationConfiguration={"QueueConfigurations": ours})

    plan = deploy(aws, cfg)

    assert [s.action for s in plan.steps if s.kind == "notification"] == ["update"]
    ids = {r["Id"] for r in s3.get_bucket_notification_configuration(Bucket=raw)[
        "QueueConfigurations"]}
    assert "audit-trail" in ids
    assert names.notification_id(".txt") in ids


def test_handlers_may_read_and_delete_only_the_versions_they_move(cfg, names):
    # GetObject/CopyObject/DeleteObject with VersionId need the *Version actions; they are
    # granted where a handler takes originals from (incoming/, fetch/) and nowhere else.
    from pipectl.deploy import policies

    raw = f"arn:aws:s3:::{names.bucket('raw')}/"
    for policy, taken in ((policies.processor_policy(cfg, names), "incoming/"),
                          (policies.fetcher_policy(cfg, names), "fetch/")):
        granted = {}
        for statement in policy["Statement"]:
            actions = statement["Action"]
            for action in actions if isinstance(actions, list) else [actions]:
                resources = statement["Resource"]
                granted.setdefault(action, set()).update(
                    resources if isinstance(resources, list) else [resources])
        assert raw + taken + "*" in granted["s3:GetObjectVersion"]
        assert granted["s3:DeleteObjectVersion"] == {raw + taken + "*"}
