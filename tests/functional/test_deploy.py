"""Deploy against moto (mock_aws): everything read back matches pipeline.yaml; twice is a no-op."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from pipectl import config as config_module
from pipectl.aws.session import Aws
from pipectl.deploy import engine
from pipectl.deploy.desired import TLS_STATEMENT
from pipectl.naming import Names

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
READ_ONLY = ("Get", "List", "Describe", "Head")


@pytest.fixture
def cfg():
    text = (ROOT / "pipeline.yaml").read_text().replace("default_target: local",
                                                        "default_target: aws")
    text = text.replace("targets:\n", "targets:\n  aws:\n    region: us-east-1\n", 1)
    return config_module.parse(text, ROOT / "pipeline.yaml")


@pytest.fixture
def aws(cfg):
    with mock_aws():
        yield Aws.for_target(cfg.target("aws"))


@pytest.fixture
def names(cfg, aws):
    return Names(cfg, ACCOUNT, "us-east-1")


def deploy(aws, cfg):
    plan = engine.build_plan(aws, cfg)
    engine.apply(aws, plan)
    return plan


def count_mutations(aws) -> list[str]:
    """Record every mutating API call made through this Aws's clients."""
    calls: list[str] = []
    for service in ("s3", "sqs", "dynamodb", "sts"):
        aws.client(service).meta.events.register(
            "before-call", lambda model, **_: calls.append(model.name)
            if not model.name.startswith(READ_ONLY) else None)
    return calls


def test_first_deploy_creates_everything_hardened(aws, cfg, names):
    plan = deploy(aws, cfg)
    assert [s.action for s in plan.steps] == ["create"] * 7

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

    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=names.bucket("archive"))["Rules"]
    assert lifecycle[0]["Transitions"][0] == {"Days": 90, "StorageClass": "GLACIER"}
    assert lifecycle[0]["Expiration"]["Days"] == 365


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
    assert len(rules) == len(cfg.processor.suffixes)
    for suffix in cfg.processor.suffixes:
        filters = {f["Name"].lower(): f["Value"] for f in
                   rules[names.notification_id(suffix)]["Filter"]["Key"]["FilterRules"]}
        assert filters == {"prefix": "incoming/", "suffix": suffix}


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
    changed = config_module.parse(cfg.path.read_text().replace("default_target: local",
                                                               "default_target: aws")
                                  .replace("targets:\n", "targets:\n  aws:\n    region: "
                                           "us-east-1\n", 1)
                                  .replace("timeout: 60", "timeout: 30"), cfg.path)
    plan = engine.build_plan(aws, changed)
    updates = [s for s in plan.steps if s.action != "noop"]
    assert len(updates) == 1
    assert updates[0].kind == "queue"
    assert [(c.field, c.before, c.after) for c in updates[0].changes] == [
        ("attributes.VisibilityTimeout", "360", "180")]
    engine.apply(aws, plan)
    assert not engine.build_plan(aws, changed).has_changes


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
