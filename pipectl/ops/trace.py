"""Follow one uploaded file through every stage of the pipeline, as a timeline."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import unquote_plus

from pipectl.aws import s3, sqs
from pipectl.aws.session import Aws
from pipectl.naming import Names
from pipectl.ops import results as results_ops
from pipectl.ops.status import UNMATCHED_WHY, matched, processing_rules
from pipectl.output import human_bytes

DLQ_PEEK_ROUNDS = 10  # receives of up to 10 messages: the DLQ's first 100 messages at most
DLQ_HOLD_SECONDS = 30


@dataclass(frozen=True)
class Stage:
    stage: str
    found: bool
    at: str | None = None
    detail: str = ""


@dataclass(frozen=True)
class Trace:
    key: str
    stages: list[Stage] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return any(s.found for s in self.stages)


def trace(aws: Aws, names: Names, key: str) -> Trace:
    """key: the uploaded key (incoming/x.csv); a key without the incoming prefix gets it."""
    p = names.config.prefixes
    if not key.startswith(p.incoming):
        key = p.incoming + key
    relative = key[len(p.incoming):]
    client, raw = aws.client("s3"), names.bucket("raw")
    stages = [_object("incoming", client, raw, key)]
    rules = processing_rules(client, names) if s3.bucket_exists(client, raw) else None
    if rules is not None and not matched(key, rules):
        suffixes = ", ".join(sorted({suffix for _, suffix in rules})) or "none"
        stages.append(Stage("notification", False, None,
                            f"no notification rule matches this key, so it is never "
                            f"processed (the rules' suffixes: {suffixes}; {UNMATCHED_WHY})"))

    ddb = aws.client("dynamodb")
    row = results_ops.find_result(ddb, names, key) if results_ops.table_exists(ddb, names) \
        else None
    stages.append(_row(row))
    if row and row.output:
        stages.append(_object("output", client, *_split(row.output, names.bucket("processed"))))
    stages.append(_object("completed", client, raw, p.completed + relative))
    stages.append(_object("failed", client, raw, p.failed + relative))
    if row and row.status == "ARCHIVED" and row.location:
        stages.append(_object("archive", client, *_split(row.location, names.bucket("archive"))))
    stages += _queues(aws.client("sqs"), names, raw, key)
    return Trace(key=key, stages=stages)


def _object(stage: str, client, bucket: str, key: str) -> Stage:
    head = s3.head_object(client, bucket, key)
    where = s3.uri(bucket, key)
    if head is None:
        return Stage(stage, False, None, f"not in {where}")
    return Stage(stage, True, head["LastModified"].astimezone(timezone.utc).isoformat(),
                 f"{where} ({human_bytes(head.get('ContentLength', 0))})")


def _row(row: results_ops.ResultRow | None) -> Stage:
    if row is None:
        return Stage("result", False, None, "no row in the results table")
    parts = [row.status, f"attempts {row.attempts}" if row.attempts is not None else None,
             f"started {row.started_at}" if row.started_at else None,
             f"finished {row.finished_at}" if row.finished_at else None,
             f"{row.duration_ms} ms" if row.duration_ms is not None else None,
             f"records {row.records_in} in, {row.records_out} out"
             if row.records_in is not None else None,
             f"error: {row.error}" if row.error else None,
             f"last error: {row.last_error}" if row.last_error and not row.error else None]
    return Stage("result", True, row.updated_at, ", ".join(p for p in parts if p))


def _queues(client, names: Names, bucket: str, key: str) -> list[Stage]:
    stages = []
    url = sqs.queue_url(client, names.queue)
    if url is not None:
        # Not peeked: receiving counts against maxReceiveCount and would push messages
        # toward the DLQ. Its depth says whether anything is still waiting.
        d = sqs.depth(client, url)
        stages.append(Stage("queue", False, None, f"not inspected; {d.visible} waiting, "
                                                  f"{d.in_flight} in flight"))
    dlq = sqs.queue_url(client, names.dlq)
    if dlq is not None:
        stages.append(_dead_letters(client, dlq, bucket, key))
    return stages


def _dead_letters(client, url: str, bucket: str, key: str) -> Stage:
    # Peek: receive (hidden for DLQ_HOLD_SECONDS), then release at once. This bumps only
    # the DLQ's own receive counts; a DLQ has no redrive policy, so nothing moves.
    held: list[str] = []
    matches: list[dict] = []
    try:
        for _ in range(DLQ_PEEK_ROUNDS):
            got = sqs.peek(client, url, hold_seconds=DLQ_HOLD_SECONDS)
            if not got:
                break
            held += [m["ReceiptHandle"] for m in got]
            matches += [m for m in got if (bucket, key) in _keys(m.get("Body", ""))]
    finally:
        sqs.release(client, url, held)
    if not matches:
        return Stage("dead-letter queue", False, None, f"not among {len(held)} message(s)")
    first = matches[0]
    sent = first.get("Attributes", {}).get("SentTimestamp")
    return Stage("dead-letter queue", True, _ms_iso(sent) if sent else None,
                 f"{len(matches)} message(s), message {first['MessageId']}, received "
                 f"{first.get('Attributes', {}).get('ApproximateReceiveCount', '?')} time(s)")


def _keys(body: str) -> set[tuple[str, str]]:
    """(bucket, decoded key) of each S3 record in an SQS message body."""
    try:
        records = json.loads(body).get("Records") or []
        return {(r["s3"]["bucket"]["name"], unquote_plus(r["s3"]["object"]["key"]))
                for r in records}
    except (ValueError, AttributeError, KeyError, TypeError):
        return set()


def _split(location: str, default_bucket: str) -> tuple[str, str]:
    if location.startswith("s3://"):
        bucket, _, key = location[5:].partition("/")
        return bucket, key
    return default_bucket, location


def _ms_iso(ms: str) -> str:
    return datetime.fromtimestamp(int(ms) / 1000, timezone.utc).isoformat()
