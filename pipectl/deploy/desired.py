"""pipeline.yaml + deterministic names -> the resources that should exist."""

from __future__ import annotations

import json

from pipectl.config import PipelineConfig
from pipectl.deploy.models import Bucket, Notification, Queue, Resource, Table
from pipectl.naming import (
    BUCKET_ROLES,
    RESULTS_PARTITION_KEY,
    STATUS_INDEX,
    STATUS_INDEX_KEYS,
    Names,
)

TLS_STATEMENT = "DenyInsecureTransport"
ARCHIVE_LIFECYCLE_RULE = "pipectl-archive-tiering"
# A message's age is kept when it moves to the DLQ, so the DLQ must retain for
# longer than the source queue or dead letters expire early: 4 days vs 14 (the maximum).
QUEUE_RETENTION = 4 * 24 * 3600
DLQ_RETENTION = 14 * 24 * 3600


def resources(config: PipelineConfig, names: Names, *, tls_only: bool) -> list[Resource]:
    """Everything deploy manages, in the order it must be created.

    tls_only: whether buckets get the "deny unless aws:SecureTransport" statement.
    It is False only for plain-http endpoints, where it would lock out every caller.
    """
    found: list[Resource] = [dead_letter_queue(names), processing_queue(config, names)]
    found += [bucket(config, names, role, tls_only=tls_only) for role in BUCKET_ROLES]
    found.append(notification(config, names))
    found.append(results_table(names))
    return found


def bucket(config: PipelineConfig, names: Names, role: str, *, tls_only: bool) -> Bucket:
    arn = names.bucket_arn(role)
    statements = {}
    if tls_only:
        statements[TLS_STATEMENT] = {
            "Sid": TLS_STATEMENT, "Effect": "Deny", "Principal": "*", "Action": "s3:*",
            "Resource": [arn, f"{arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    lifecycle = {}
    if role == "archive":
        a = config.archiver
        lifecycle[ARCHIVE_LIFECYCLE_RULE] = {
            "ID": ARCHIVE_LIFECYCLE_RULE, "Status": "Enabled",
            "Filter": {"Prefix": config.prefixes.archive},
            "Transitions": [{"Days": a.glacier_after_days, "StorageClass": "GLACIER"}],
            "Expiration": {"Days": a.expire_after_days},
            # Versioning keeps the old copies the expiry creates; age those out too.
            "NoncurrentVersionExpiration": {"NoncurrentDays": 30},
        }
    return Bucket(role=role, name=names.bucket(role), policy_statements=statements,
                  lifecycle_rules=lifecycle)


def dead_letter_queue(names: Names) -> Queue:
    return Queue(role="dlq", name=names.dlq, attributes={
        "MessageRetentionPeriod": str(DLQ_RETENTION),
        "SqsManagedSseEnabled": "true",
    })


def processing_queue(config: PipelineConfig, names: Names) -> Queue:
    raw_arn = names.bucket_arn("raw")
    queue_arn = names.queue_arn(names.queue)
    policy = {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowRawBucketNotifications",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            # Both conditions: SourceArn alone would trust a same-named bucket
            # recreated in another account after ours was deleted.
            "Condition": {"ArnEquals": {"aws:SourceArn": raw_arn},
                          "StringEquals": {"aws:SourceAccount": names.account}},
        }],
    }
    redrive = {"deadLetterTargetArn": names.queue_arn(names.dlq),
               "maxReceiveCount": config.processor.max_receive_count}
    return Queue(role="processing", name=names.queue, attributes={
        "VisibilityTimeout": str(config.processor.visibility_timeout),
        "MessageRetentionPeriod": str(QUEUE_RETENTION),
        "RedrivePolicy": canonical(redrive),
        "Policy": canonical(policy),
        "SqsManagedSseEnabled": "true",
    })


def notification(config: PipelineConfig, names: Names) -> Notification:
    rules = {}
    for suffix in config.processor.suffixes:
        rule_id = names.notification_id(suffix)
        rules[rule_id] = {
            "Id": rule_id,
            "QueueArn": names.queue_arn(names.queue),
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [
                {"Name": "prefix", "Value": config.prefixes.incoming},
                {"Name": "suffix", "Value": suffix}]}},
        }
    return Notification(name=names.bucket("raw"), queue_rules=rules)


def results_table(names: Names) -> Table:
    return Table(name=names.results_table, partition_key=RESULTS_PARTITION_KEY,
                 indexes={STATUS_INDEX: STATUS_INDEX_KEYS})


def function_environment(config: PipelineConfig, names: Names) -> dict[str, str]:
    """The processor's environment: the same on Lambda and in the local runtime."""
    p = config.prefixes
    return {
        "PIPELINE": config.name,
        "ENVIRONMENT": config.environment,
        "RAW_BUCKET": names.bucket("raw"),
        "PROCESSED_BUCKET": names.bucket("processed"),
        "ARCHIVE_BUCKET": names.bucket("archive"),
        "RESULTS_TABLE": names.results_table,
        "INCOMING_PREFIX": p.incoming,
        "COMPLETED_PREFIX": p.completed,
        "FAILED_PREFIX": p.failed,
        "PROCESSED_PREFIX": p.processed,
    }


def canonical(document: dict) -> str:
    """One spelling for a JSON document, so desired and observed compare equal."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))
