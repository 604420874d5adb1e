"""What replay-dlq works with: the route from a dead-letter queue to its target, the options
and report of a replay, and each dead letter read from its SQS message (the object it
names, when SQS took it, how often pipectl replayed it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import unquote_plus

# Each replay sends a dead letter back with this message attribute counting its replays.
# SQS keeps message attributes when redrive moves a message to the DLQ again, so the count
# survives a replay that fails again, and --max-replays can leave a poison message where
# it is instead of sending it round for ever.
REPLAYS_ATTRIBUTE = "pipectl-replays"


@dataclass(frozen=True)
class Route:
    """Where dead letters come from (the DLQ) and where they go (the target queue)."""

    dlq: str
    dlq_url: str
    dlq_arn: str
    target: str
    target_url: str
    target_arn: str
    waiting: int  # the DLQ's ApproximateNumberOfMessages when located


@dataclass(frozen=True)
class ReplayOptions:
    dry_run: bool = False
    max_messages: int | None = None
    key_filter: str | None = None
    skip_done: bool = False
    native: bool = False
    max_replays: int | None = None  # leave dead letters replayed this often already

    @property
    def selective(self) -> bool:
        return (self.key_filter is not None or self.skip_done or self.max_messages is not None
                or self.max_replays is not None)


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    key: str | None  # decoded object key; None for s3:TestEvent or an unparseable body
    size: int | None
    sent_at: str | None  # SentTimestamp, ISO-8601 UTC
    first_received_at: str | None  # ApproximateFirstReceiveTimestamp
    receive_count: int  # ApproximateReceiveCount (this run's receive included)
    action: str  # moved | skipped | failed | would move | would skip
    reason: str | None = None
    etag: str | None = None  # the object version the notification was for
    replays: int = 0  # times pipectl replayed it before (REPLAYS_ATTRIBUTE)
    last_error: str | None = None  # the results row's, in a dry run
    bucket: str | None = None
    version_id: str | None = None  # on a versioned bucket, the version itself


@dataclass
class ReplayReport:
    source: str  # the DLQ
    target: str  # the queue the messages go back to
    dry_run: bool
    method: str = "batched"  # or "native" (StartMessageMoveTask)
    moved: int = 0
    skipped: int = 0
    failed: int = 0
    messages: list[DeadLetter] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def would_move(self) -> int:
        return sum(1 for m in self.messages if m.action == "would move")


Progress = Callable[[ReplayReport], None]


def describe(body: str) -> tuple[str | None, int | None, str | None, str | None, str | None]:
    """A dead letter's decoded object key, size, ETag, bucket and VersionId; Nones if it
    names no object. Bodies as the queue receives them: an S3 notification, the same in
    an SNS envelope (S3 -> SNS -> SQS), or an EventBridge "Object Created" event."""
    nothing = None, None, None, None, None
    try:
        message = json.loads(body)
        if isinstance(message, dict) and message.get("Type") == "Notification":
            message = json.loads(message["Message"])
        if isinstance(message, dict) and message.get("source") == "aws.s3":
            # EventBridge carries the key as it is, and spells the other fields its own way.
            detail = message["detail"]
            bucket, obj = detail["bucket"]["name"], detail["object"]
            key, version, etag = obj["key"], obj.get("version-id"), obj.get("etag")
        else:
            record = message["Records"][0]["s3"]
            bucket, obj = (record.get("bucket") or {}).get("name"), record["object"]
            # S3 URL-encodes keys ("+" for space); moto also encodes "/" as %2F.
            key, version, etag = obj["key"], obj.get("versionId"), obj.get("eTag")
            key = unquote_plus(key) if isinstance(key, str) else key
    except (ValueError, KeyError, IndexError, TypeError):
        return nothing  # s3:TestEvent has no Records; other bodies are not S3 events
    if not isinstance(key, str):
        return nothing
    size = obj.get("size")
    return (key, size if isinstance(size, int) else None,
            etag if isinstance(etag, str) else None,
            bucket if isinstance(bucket, str) else None,
            version if isinstance(version, str) and version != "null" else None)


def replay_count(message: dict) -> int:
    value = message.get("MessageAttributes", {}).get(REPLAYS_ATTRIBUTE, {}).get("StringValue")
    try:
        return max(int(value), 0) if value is not None else 0
    except ValueError:
        return 0  # not ours: someone else's attribute of the same name


def read_letter(message: dict) -> DeadLetter:
    key, size, etag, bucket, version = describe(message.get("Body", ""))
    attrs = message.get("Attributes", {})
    return DeadLetter(message_id=message["MessageId"], key=key, size=size, etag=etag,
                      bucket=bucket, version_id=version,
                      sent_at=_when(attrs.get("SentTimestamp")),
                      first_received_at=_when(attrs.get("ApproximateFirstReceiveTimestamp")),
                      receive_count=int(attrs.get("ApproximateReceiveCount", 0)),
                      replays=replay_count(message), action="")


def with_action(letter: DeadLetter, action: str, reason: str | None = None) -> DeadLetter:
    return DeadLetter(**{**letter.__dict__, "action": action, "reason": reason})


def _when(epoch_ms: str | None) -> str | None:
    if not epoch_ms:
        return None
    return datetime.fromtimestamp(int(epoch_ms) / 1000, tz=timezone.utc).isoformat(
        timespec="milliseconds")
