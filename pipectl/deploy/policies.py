"""IAM documents for each function's role: exact ARNs and key prefixes, nothing broader.

Pure functions of the config and names, so tests can check every document statically
(with parliament): moto does not evaluate IAM.
"""

from __future__ import annotations

from pipectl.config import PipelineConfig
from pipectl.naming import STATUS_INDEX, Names

VERSION = "2012-10-17"
# The processor's other outputs in the processed bucket (fixed, as handlers/processor.py has them).
REJECTS_PREFIX, THUMBNAILS_PREFIX = "rejects/", "thumbnails/"


def trust_policy() -> dict:
    return {"Version": VERSION, "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}


def _objects(names: Names, role: str, prefix: str) -> str:
    return f"{names.bucket_arn(role)}/{prefix}*"


def _list(names: Names, role: str, prefixes: list[str]) -> dict:
    # Without ListBucket a HeadObject of a missing key answers 403 instead of 404.
    return {"Sid": f"List{role.capitalize()}", "Effect": "Allow", "Action": "s3:ListBucket",
            "Resource": names.bucket_arn(role),
            "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in prefixes]}}}


def _consume(names: Names, queue: str) -> dict:
    # What Lambda's event source mapping does with the function's role; the handler
    # itself uses ChangeMessageVisibility too, on the receipt handle of a message whose
    # object another attempt holds, so it returns when that lease ends (invocation.py).
    return {"Sid": "ConsumeQueue", "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                       "sqs:GetQueueAttributes"],
            "Resource": names.queue_arn(queue)}


def _results(names: Names) -> dict:
    # Rows and the __counters__ item change together in TransactWriteItems, which is
    # authorised per action on the table (UpdateItem, ConditionCheckItem).
    return {"Sid": "WriteResults", "Effect": "Allow",
            "Action": ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
                       "dynamodb:ConditionCheckItem"],
            "Resource": names.table_arn(names.results_table)}


def _logs(names: Names, kind: str) -> list[dict]:
    group = names.log_group_arn(kind)
    return [{"Sid": "WriteOwnLogs", "Effect": "Allow",
             "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
             "Resource": f"{group}:log-stream:*"}]


def _tracing(config: PipelineConfig) -> list[dict]:
    if not config.observability.tracing:
        return []
    # X-Ray's segment APIs support no resource-level permissions: "*" is the only resource.
    return [{"Sid": "XRay", "Effect": "Allow",
             "Action": ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], "Resource": "*"}]


def processor_policy(config: PipelineConfig, names: Names) -> dict:
    p = config.prefixes
    return {"Version": VERSION, "Statement": [
        _list(names, "raw", [p.incoming, p.completed, p.failed]),
        # The *Version actions: a handler reads, copies and deletes the version its event
        # names (GetObject/CopyObject/DeleteObject with VersionId need them).
        {"Sid": "ReadRaw", "Effect": "Allow", "Action": ["s3:GetObject", "s3:GetObjectVersion"],
         "Resource": [_objects(names, "raw", p.incoming), _objects(names, "raw", p.completed),
                      _objects(names, "raw", p.failed)]},
        {"Sid": "MoveOriginals", "Effect": "Allow", "Action": "s3:PutObject",
         "Resource": [_objects(names, "raw", p.completed), _objects(names, "raw", p.failed)]},
        {"Sid": "DeleteIncoming", "Effect": "Allow",
         "Action": ["s3:DeleteObject", "s3:DeleteObjectVersion"],
         "Resource": _objects(names, "raw", p.incoming)},
        {"Sid": "WriteOutput", "Effect": "Allow",
         "Action": ["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
         "Resource": [_objects(names, "processed", prefix)
                      for prefix in (p.processed, REJECTS_PREFIX, THUMBNAILS_PREFIX)]},
        _list(names, "processed", [p.processed, REJECTS_PREFIX, THUMBNAILS_PREFIX]),
        _consume(names, names.queue),
        _results(names),
        *_sink(config, names),
        *_logs(names, "processor"), *_tracing(config),
    ]}


def _sink(config: PipelineConfig, names: Names) -> list[dict]:
    if config.sink is None:
        return []
    # Batches of 25 items; PutItem for a single one. Nothing else: no reads, no deletes.
    return [{"Sid": "WriteRecordSink", "Effect": "Allow",
             "Action": ["dynamodb:BatchWriteItem", "dynamodb:PutItem"],
             "Resource": names.table_arn(config.sink.table)}]


def archiver_policy(config: PipelineConfig, names: Names) -> dict:
    p = config.prefixes
    # The archiver ages out every dated output of the processor: records, rejects, thumbnails.
    taken = [p.processed, REJECTS_PREFIX, THUMBNAILS_PREFIX]
    return {"Version": VERSION, "Statement": [
        _list(names, "processed", taken),
        {"Sid": "TakeProcessed", "Effect": "Allow", "Action": ["s3:GetObject", "s3:DeleteObject"],
         "Resource": [_objects(names, "processed", prefix) for prefix in taken]},
        _list(names, "archive", [p.archive]),
        {"Sid": "WriteArchive", "Effect": "Allow", "Action": ["s3:PutObject", "s3:GetObject"],
         "Resource": _objects(names, "archive", p.archive)},
        _results(names),
        # The PROCESSED rows around the archived objects' times, read from the status
        # index to find each object's row without a HeadObject (archiving/rows.py).
        {"Sid": "FindRows", "Effect": "Allow", "Action": "dynamodb:Query",
         "Resource": f"{names.table_arn(names.results_table)}/index/{STATUS_INDEX}"},
        *_logs(names, "archiver"), *_tracing(config),
    ]}


def fetcher_policy(config: PipelineConfig, names: Names) -> dict:
    p = config.prefixes
    return {"Version": VERSION, "Statement": [
        # incoming/ too: before fetching (and on a retry) it looks for its own earlier output.
        _list(names, "raw", [p.fetch, p.incoming, p.completed, p.failed]),
        {"Sid": "ReadRequests", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject",
                    "s3:DeleteObjectVersion"],
         "Resource": _objects(names, "raw", p.fetch)},
        {"Sid": "WriteResponsesAndMoveRequests", "Effect": "Allow", "Action": "s3:PutObject",
         "Resource": [_objects(names, "raw", p.incoming), _objects(names, "raw", p.completed),
                      _objects(names, "raw", p.failed)]},
        {"Sid": "VerifyWrites", "Effect": "Allow", "Action": "s3:GetObject",
         "Resource": [_objects(names, "raw", p.incoming), _objects(names, "raw", p.completed),
                      _objects(names, "raw", p.failed)]},
        _consume(names, names.fetch_queue),
        _results(names),
        *_logs(names, "fetcher"), *_tracing(config),
    ]}


ROLE_POLICIES = {"processor": processor_policy, "archiver": archiver_policy,
                 "fetcher": fetcher_policy}
