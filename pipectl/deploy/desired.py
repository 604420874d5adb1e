"""pipeline.yaml + deterministic names -> the resources that should exist."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

from pipectl.config import SINK_HASH_KEY, PipelineConfig
from pipectl.contract import contract
from pipectl.deploy import package
from pipectl.deploy.models import (
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
    owner_tags,
)
from pipectl.deploy.policies import ROLE_POLICIES, trust_policy
from pipectl.function_settings import Archiver, Fetcher, Processor
from pipectl.naming import (
    BUCKET_ROLES,
    FUNCTIONS,
    RESULTS_PARTITION_KEY,
    STATUS_INDEX,
    STATUS_INDEX_KEYS,
    Names,
)

TLS_STATEMENT = "DenyInsecureTransport"
ARCHIVE_LIFECYCLE_RULE = "pipectl-archive-tiering"
ARCHIVE_EXPIRY_RULE = "pipectl-archive-expiry"
VERSIONS_LIFECYCLE_RULE = "pipectl-noncurrent-expiry"
STAGED_CODE_RULE = "pipectl-staged-code-expiry"
# Lambda copies a zip from S3 into its own storage when it creates or updates a function
# (the default COPY storage mode: "you can delete the Amazon S3 object after Lambda
# creates the function"), and deploy stages every changed zip again, so a staged zip
# is needed only for the call that names it.
STAGED_CODE_DAYS = 7
# S3 bills an object in STANDARD_IA as at least 128 KiB and charges every lifecycle
# transition per object, so a small archived file costs more in Glacier than where it
# is: the tiering rule skips objects under 128 KiB (AWS's documented size filter).
GLACIER_MIN_BYTES = 128 * 1024
# A message's age is kept when it moves to the DLQ, so the DLQ must retain for
# longer than the source queue or dead letters expire early: 4 days vs 14 (the maximum).
QUEUE_RETENTION = 4 * 24 * 3600
DLQ_RETENTION = 14 * 24 * 3600


SCHEDULE_PERMISSION = "pipectl-schedule"
MAPPING_ENABLED_NOTE = ("event source mappings are created disabled: pipectl's local runtime "
                        "serves the queue on an emulator target (`pipectl run` / `pipectl dev`)")


def resources(config: PipelineConfig, names: Names, *, tls_only: bool, local_runtime: bool,
              cache_dir: Path | None) -> list[Resource]:
    """Everything deploy manages, in the order it must be created (destroy reverses it).

    tls_only: whether buckets get the "deny unless aws:SecureTransport" statement.
    It is False only for plain-http endpoints, where it would lock out every caller.
    local_runtime: pipectl's local runtime, not Lambda, consumes the queue (the
    emulator), so the mapping is deployed disabled and never consumes behind its back.
    cache_dir: None builds no code (destroy needs names, not zips).
    """
    found: list[Resource] = [
        dead_letter_queue(names.dlq),
        source_queue(names, names.queue, names.dlq, config.processor.visibility_timeout,
                     config.processor.max_receive_count),
        dead_letter_queue(names.fetch_dlq),
        source_queue(names, names.fetch_queue, names.fetch_dlq,
                     config.fetcher.visibility_timeout, config.processor.max_receive_count),
    ]
    found += [bucket(config, names, role, tls_only=tls_only) for role in BUCKET_ROLES]
    if stages_code(config):
        found.append(artifacts_bucket(config, names, tls_only=tls_only))
    found.append(notification(config, names))
    found.append(results_table(names))
    if config.sink is not None:
        found.append(sink_table(config))
    for kind in FUNCTIONS:
        found.append(LogGroup(names.log_group(kind), config.observability.log_retention_days))
        found.append(role(config, names, kind))
        found.append(function(config, names, kind, cache_dir))
    found += mappings(config, names, enabled=not local_runtime)
    found.append(schedule(config, names))
    if config.observability.alarm_email:
        found.append(Topic(names.alarm_topic, names.topic_arn(names.alarm_topic),
                           config.observability.alarm_email))
    found += alarms(config, names)
    tags = owner_tags(config.name, config.environment)
    return [replace(r, tags=tags) if hasattr(r, "tags") else r  # type: ignore[arg-type]
            for r in found]


def role(config: PipelineConfig, names: Names, kind: str) -> Role:
    return Role(name=names.role(kind), trust_policy=trust_policy(),
                inline_policies={f"{kind}-access": ROLE_POLICIES[kind](config, names)})


def function(config: PipelineConfig, names: Names, kind: str,
             cache_dir: Path | None) -> Function:
    by_kind: dict[str, Processor | Archiver | Fetcher] = {
        "processor": config.processor, "archiver": config.archiver, "fetcher": config.fetcher}
    settings = by_kind[kind]
    p = config.processor
    platform = {"runtime": p.runtime, "architecture": p.architecture}
    extras = package.extras_for(config, kind)
    built = (package.build(config.handlers_dir, kind, cache_dir=cache_dir, extras=extras,
                           **platform)
             if cache_dir is not None else package.Package(kind, b"", ()))
    package.check_lambda_quotas(built, can_stage=stages_code(config))
    return Function(
        name=names.function(kind), role=names.role(kind), handler=f"{kind}.lambda_handler",
        runtime=p.runtime, architecture=p.architecture, memory=settings.memory,
        timeout=settings.timeout, environment=function_environment(config, names, kind),
        tracing="Active" if config.observability.tracing else "PassThrough",
        code_sha256=built.sha256 if built.zip_bytes else "",
        source_sha256=package.source_digest(config.handlers_dir, kind, extras=extras,
                                            **platform)
        if built.zip_bytes else "", zip_bytes=built.zip_bytes,
        code_bucket=names.artifacts_bucket if package.needs_staging(built) else "")


def stages_code(config: PipelineConfig) -> bool:
    """Whether the pipeline has an artifacts bucket: a Parquet pipeline's processor zip
    carries pyarrow and passes Lambda's 50 MB direct-upload quota (about 52 MB for
    pyarrow 26 on x86_64). Decided by the config, not the zip, so destroy (which builds
    nothing) knows the bucket too."""
    return config.output.format == "parquet"


def _tls_only(arn: str) -> dict[str, dict]:
    """The bucket policy statement that refuses every request not made over TLS."""
    return {TLS_STATEMENT: {
        "Sid": TLS_STATEMENT, "Effect": "Deny", "Principal": "*", "Action": "s3:*",
        "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }}


def artifacts_bucket(config: PipelineConfig, names: Names, *, tls_only: bool) -> Bucket:
    """Private like the others (block public access, SSE, owner-enforced, TLS only); its
    zips are kept by content hash, expire a week after they were staged, and their
    versions expire like everywhere else."""
    arn = f"arn:{names.partition}:s3:::{names.artifacts_bucket}"
    statements = _tls_only(arn) if tls_only else {}
    # A separate rule: S3 refuses Days beside ExpiredObjectDeleteMarker in one Expiration.
    staged_code = {STAGED_CODE_RULE: {
        "ID": STAGED_CODE_RULE, "Status": "Enabled", "Filter": {"Prefix": ""},
        "Expiration": {"Days": STAGED_CODE_DAYS}}}
    return Bucket(role="artifacts", name=names.artifacts_bucket, policy_statements=statements,
                  lifecycle_rules=lifecycle_rules(config, "artifacts") | staged_code)


def mappings(config: PipelineConfig, names: Names, *, enabled: bool) -> list[EventSourceMapping]:
    p = config.processor
    # One request per invocation: each is a network call with its own retries.
    return [EventSourceMapping(
        name=f"{queue} -> {names.function(kind)}", function=names.function(kind),
        queue_arn=names.queue_arn(queue), batch_size=batch_size,
        batching_window=p.batching_window if kind == "processor" else 0,
        max_concurrency=p.max_concurrency, enabled=enabled)
        for kind, queue, batch_size in (("processor", names.queue, p.batch_size),
                                        ("fetcher", names.fetch_queue, 1))]


def schedule(config: PipelineConfig, names: Names) -> Schedule:
    return Schedule(name=names.schedule_rule, expression=config.archiver.schedule,
                    function=names.function("archiver"),
                    function_arn=names.function_arn("archiver"))


def alarms(config: PipelineConfig, names: Names) -> list[Alarm]:
    actions = ((names.topic_arn(names.alarm_topic),) if config.observability.alarm_email
               else ())
    found = [Alarm(
        name=names.alarm(f"{kind}-errors"), description=f"{names.function(kind)} raised errors",
        namespace="AWS/Lambda", metric="Errors",
        dimensions={"FunctionName": names.function(kind)}, statistic="Sum", period=300,
        evaluation_periods=1, threshold=0.0, comparison="GreaterThanThreshold", actions=actions)
        for kind in FUNCTIONS]
    found += [Alarm(
        name=names.alarm(f"{dlq.removeprefix(names.prefix + '-')}-not-empty"),
        description=f"dead letters wait in {dlq} (see `pipectl replay-dlq`)",
        namespace="AWS/SQS", metric="ApproximateNumberOfMessagesVisible",
        dimensions={"QueueName": dlq}, statistic="Maximum", period=300,
        evaluation_periods=1, threshold=0.0, comparison="GreaterThanThreshold", actions=actions)
        for dlq in (names.dlq, names.fetch_dlq)]
    found.append(Alarm(
        name=names.alarm("oldest-message"),
        description=f"a file waited in {names.queue} longer than "
                    f"{config.observability.oldest_message_alarm_seconds} s",
        namespace="AWS/SQS", metric="ApproximateAgeOfOldestMessage",
        dimensions={"QueueName": names.queue}, statistic="Maximum", period=300,
        evaluation_periods=1, threshold=float(config.observability.oldest_message_alarm_seconds),
        comparison="GreaterThanOrEqualToThreshold", actions=actions))
    return found


def bucket(config: PipelineConfig, names: Names, role: str, *, tls_only: bool) -> Bucket:
    arn = names.bucket_arn(role)
    statements = _tls_only(arn) if tls_only else {}
    return Bucket(role=role, name=names.bucket(role), policy_statements=statements,
                  lifecycle_rules=lifecycle_rules(config, role))


def lifecycle_rules(config: PipelineConfig, role: str) -> dict[str, dict]:
    """pipectl's lifecycle rules for a bucket, by ID."""
    a = config.archiver
    # Every bucket is versioned, so each move, archive and re-upload leaves a noncurrent
    # version (and a delete marker) behind: without an expiry they are stored for good.
    noncurrent = {"NoncurrentVersionExpiration": {"NoncurrentDays": a.noncurrent_version_days}}
    if role != "archive":
        return {VERSIONS_LIFECYCLE_RULE: {
            "ID": VERSIONS_LIFECYCLE_RULE, "Status": "Enabled", "Filter": {"Prefix": ""},
            # Once its versions have expired, a delete marker alone is removed too.
            "Expiration": {"ExpiredObjectDeleteMarker": True}, **noncurrent}}
    prefix = config.prefixes.archive
    return {
        # Two rules: a size filter on the expiry would keep small objects for ever.
        ARCHIVE_LIFECYCLE_RULE: {
            "ID": ARCHIVE_LIFECYCLE_RULE, "Status": "Enabled",
            # ObjectSizeGreaterThan is exclusive: objects of 128 KiB and more transition.
            "Filter": {"And": {"Prefix": prefix, "ObjectSizeGreaterThan": GLACIER_MIN_BYTES - 1}},
            "Transitions": [{"Days": a.glacier_after_days, "StorageClass": "GLACIER"}],
        },
        ARCHIVE_EXPIRY_RULE: {
            "ID": ARCHIVE_EXPIRY_RULE, "Status": "Enabled", "Filter": {"Prefix": prefix},
            "Expiration": {"Days": a.expire_after_days}, **noncurrent,
        },
    }


def dead_letter_queue(name: str) -> Queue:
    return Queue(role="dlq", name=name, attributes={
        "MessageRetentionPeriod": str(DLQ_RETENTION),
        "SqsManagedSseEnabled": "true",
    })


def source_queue(names: Names, name: str, dlq: str, visibility_timeout: int,
                 max_receive_count: int) -> Queue:
    """A queue the raw bucket notifies, redriving to its dead-letter queue."""
    raw_arn = names.bucket_arn("raw")
    queue_arn = names.queue_arn(name)
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
    redrive = {"deadLetterTargetArn": names.queue_arn(dlq), "maxReceiveCount": max_receive_count}
    return Queue(role="processing" if name == names.queue else "fetch", name=name, attributes={
        "VisibilityTimeout": str(visibility_timeout),
        "MessageRetentionPeriod": str(QUEUE_RETENTION),
        "RedrivePolicy": canonical(redrive),
        "Policy": canonical(policy),
        "SqsManagedSseEnabled": "true",
    })


FETCH_REQUEST_SUFFIXES = (".json", ".yaml", ".yml")


def notification(config: PipelineConfig, names: Names) -> Notification:
    """One rule per suffix: S3 filters take one prefix and one suffix each."""
    rules = {}
    for source, prefix, queue, suffixes in (
            ("incoming", config.prefixes.incoming, names.queue, config.processor.suffixes),
            ("fetch", config.prefixes.fetch, names.fetch_queue, FETCH_REQUEST_SUFFIXES)):
        for suffix in suffixes:
            rule_id = names.notification_id(suffix, source)
            rules[rule_id] = {
                "Id": rule_id,
                "QueueArn": names.queue_arn(queue),
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {"Key": {"FilterRules": [
                    {"Name": "prefix", "Value": prefix}, {"Name": "suffix", "Value": suffix}]}},
            }
    return Notification(name=names.bucket("raw"), queue_rules=rules,
                        owned_prefixes=names.notification_prefixes())


def results_table(names: Names) -> Table:
    return Table(name=names.results_table, partition_key=RESULTS_PARTITION_KEY,
                 indexes={STATUS_INDEX: STATUS_INDEX_KEYS})


def sink_table(config: PipelineConfig) -> Table:
    """The record sink: one item per accepted record, keyed by the configured field (a string)
    or by a hash of the record."""
    sink = config.sink
    assert sink is not None, "sink_table() is only built for a configured sink"
    return Table(name=sink.table, partition_key=sink.key or SINK_HASH_KEY)


def function_environment(config: PipelineConfig, names: Names, kind: str) -> dict[str, str]:
    """What `kind`'s handler reads from its environment, the same on Lambda and locally
    (the names: handlers/common/contract.py FUNCTION_ENVIRONMENT).

    Each function gets only its own settings, so changing the fetcher's limits
    updates the fetcher alone, and no function learns of buckets it never touches.
    """
    p, f, e = config.prefixes, config.fetcher, contract
    shared = {e.PIPELINE: config.name, e.ENVIRONMENT: config.environment,
              e.RESULTS_TABLE: names.results_table}
    if kind == "processor":
        return {**shared, **_record_environment(config),
                e.PROCESSOR_VERSION: processor_version(config),
                e.RAW_BUCKET: names.bucket("raw"),
                e.PROCESSED_BUCKET: names.bucket("processed"),
                e.INCOMING_PREFIX: p.incoming,
                e.COMPLETED_PREFIX: p.completed,
                e.FAILED_PREFIX: p.failed,
                e.PROCESSED_PREFIX: p.processed,
                **config.limits.environment(), **config.output.environment()}
    if kind == "archiver":
        return {**shared,
                e.PROCESSED_BUCKET: names.bucket("processed"),
                e.ARCHIVE_BUCKET: names.bucket("archive"),
                e.PROCESSED_PREFIX: p.processed,
                e.ARCHIVE_PREFIX: p.archive,
                e.RETENTION_DAYS: str(config.archiver.retention_days),
                e.STORAGE_CLASS: config.archiver.storage_class}
    if kind == "fetcher":
        return {**shared,
                e.RAW_BUCKET: names.bucket("raw"),
                e.INCOMING_PREFIX: p.incoming,
                e.COMPLETED_PREFIX: p.completed,
                e.FAILED_PREFIX: p.failed,
                e.FETCH_PREFIX: p.fetch,
                e.FETCH_ALLOW_PRIVATE: "true" if f.allow_private else "false",
                e.FETCH_REQUEST_TIMEOUT: str(f.request_timeout),
                e.FETCH_MAX_BYTES: str(f.max_bytes),
                e.FETCH_MAX_ATTEMPTS: str(f.max_attempts)}
    raise ValueError(f"unknown function {kind!r}")


# Settings that change what the processor writes for the same input (the records, their
# _metadata, the sink's items, a thumbnail). Limits are left out on purpose: they decide
# whether a file is processed at all, not what its output holds, so raising one makes
# FAILED rows worth a re-run (`reprocess --status FAILED`) but no PROCESSED output stale.
_OUTPUT_SETTINGS = (contract.ENVIRONMENT, contract.RECORD_SCHEMAS, contract.SINK_TABLE,
                    contract.SINK_KEY, contract.THUMBNAIL_WIDTH, *contract.OUTPUT_VARIABLES)


def processor_version(config: PipelineConfig) -> str:
    """What made an output: the processor's source digest (the one deploy tags the function
    with) and the settings that change output, as 12 hex digits. Written into every row and
    record, so `results --not-processor-version` and `reprocess --not-current` can tell the
    outputs of older code from the deployed code's."""
    p = config.processor
    digest = package.source_digest(config.handlers_dir, "processor", runtime=p.runtime,
                                   architecture=p.architecture)
    # output: is in too (a format changes every output); none for the default format.
    env = {contract.ENVIRONMENT: config.environment, **_record_environment(config),
           **config.output.environment()}
    settings = canonical({k: env[k] for k in _OUTPUT_SETTINGS if k in env})
    return hashlib.sha256(f"{digest}\n{settings}".encode()).hexdigest()[:12]


def _record_environment(config: PipelineConfig) -> dict[str, str]:
    """Record schemas, the sink and image settings, as handlers/processing/schema.py,
    sink.py and images.py read them."""
    i, e = config.images, contract
    env = {e.THUMBNAIL_WIDTH: str(i.thumbnail_width), e.MAX_IMAGE_PIXELS: str(i.max_pixels),
           e.MAX_IMAGE_BYTES: str(i.max_bytes)}
    if config.schemas:
        env[e.RECORD_SCHEMAS] = canonical([s.to_dict() for s in config.schemas])
    if config.sink is not None:
        env[e.SINK_TABLE] = config.sink.table
        env[e.SINK_KEY] = config.sink.key or ""
    return env


def canonical(document) -> str:
    """One spelling for a JSON document, so desired and observed compare equal."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"))
