"""A typed view over the events that announce S3 objects; keys are decoded once here.

The shapes AWS sends for "an object was created", each handled:
- an S3 event notification (`{"Records": [{"eventSource": "aws:s3", ...}]}`), in an SQS
  message body or sent straight to a function;
- the same notification inside an SNS envelope (S3 -> SNS -> SQS, or SNS -> function);
- an EventBridge "Object Created" event from source aws.s3 (an EventBridge rule's
  target: an SQS queue or the function itself);
- `s3:TestEvent`, which names no object.
Anything else is refused at once (UnknownEvent names its shape): retrying an event
nobody can read only delays its dead letter by maxReceiveCount receives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from common.contract import REPROCESS_MARKER

EVENTBRIDGE_CREATED = "Object Created"
# How deep envelopes may nest (SQS body -> SNS envelope -> S3 notification is two).
MAX_ENVELOPES = 3


class UnknownEvent(Exception):
    """An event that announces no S3 object in a shape this module knows; the message
    names the shape, for the one log line that refuses it."""


MalformedMessage = UnknownEvent  # the name callers used before the other shapes existed

# `pipectl reprocess` sends ordinary S3 notification records with this one extra key.
# S3 never writes it, so a live event never carries it.


@dataclass(frozen=True)
class Reprocess:
    """A reprocess message's marker: run it again, though its row says it is done, unless
    the row is at `version` already (the deployed version pipectl targeted), so the
    same selection sent twice, or one message delivered twice, does the work once."""

    run_id: str
    version: str


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str                 # decoded: "incoming/my file+(1).csv"
    event_name: str
    size: int | None = None
    etag: str | None = None
    sequencer: str | None = None
    version_id: str | None = None   # the version the event is about (versioned buckets)
    shape: str = "S3 notification"  # which envelope it came in, for logs
    reprocess: Reprocess | None = None  # sent by `pipectl reprocess`, not by S3

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def created_objects(body) -> list[S3Object]:
    """The created objects in one SQS message body (a string) or a direct event (a dict);
    [] for s3:TestEvent and for events about something else than a creation."""
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except ValueError as e:
            raise UnknownEvent(f"message body is not JSON ({e})") from None
    return _objects(body, "", 0)


def is_direct_event(event) -> bool:
    """Whether a function was invoked with the event itself (S3, SNS or EventBridge sent it
    straight to the function) rather than with an SQS batch of messages."""
    if not isinstance(event, dict):
        return False
    if "detail-type" in event:
        return True
    records = event.get("Records")
    first = records[0] if isinstance(records, list) and records else None
    return isinstance(first, dict) and _source(first) in ("aws:s3", "aws:sns")


def _source(record: dict) -> str | None:
    # S3 and SQS records spell it eventSource; SNS records sent to Lambda, EventSource.
    return record.get("eventSource") or record.get("EventSource")


def _objects(message, via: str, depth: int) -> list[S3Object]:
    if not isinstance(message, dict):
        raise UnknownEvent(f"{via}a JSON {_json_type(message)}, not an event object")
    if depth > MAX_ENVELOPES:
        raise UnknownEvent(f"{via}envelopes nested more than {MAX_ENVELOPES} deep")
    # An SNS envelope, as SNS delivers it to SQS (raw message delivery off).
    if message.get("Type") == "Notification" and "Message" in message:
        return _inner(message.get("Message"), f"{via}SNS notification > ", depth)
    # Setting a bucket's notification configuration sends this once; it names no object.
    if message.get("Event") == "s3:TestEvent":
        return []
    if "detail-type" in message:
        return _eventbridge(message, via)
    records = message.get("Records")
    if isinstance(records, list):
        objects = []
        for record in records:
            if isinstance(record, dict) and _source(record) == "aws:sns":
                sns: Any = record.get("Sns") if isinstance(record.get("Sns"), dict) else {}
                objects += _inner(sns.get("Message"), f"{via}SNS record > ", depth)
            else:
                objects += _s3_record(record, via)
        return objects
    shown = ", ".join(sorted(map(str, message))[:6]) or "none"
    raise UnknownEvent(f"{via}not an S3, SNS or EventBridge event (a JSON object with "
                       f"keys: {shown})")


def _inner(text, via: str, depth: int) -> list[S3Object]:
    if not isinstance(text, str):
        raise UnknownEvent(f"{via[:-3]} without a Message string")
    try:
        inner = json.loads(text)
    except ValueError:
        raise UnknownEvent(f"{via[:-3]} whose Message is not JSON") from None
    return _objects(inner, via, depth + 1)


def _s3_record(record, via: str) -> list[S3Object]:
    if not isinstance(record, dict):
        raise UnknownEvent(f"{via}a Records entry that is a JSON {_json_type(record)}")
    name = record.get("eventName")
    if _source(record) != "aws:s3" or not isinstance(name, str):
        raise UnknownEvent(f"{via}a record from {_source(record) or 'no eventSource'}, "
                           "not aws:s3")
    if not name.startswith("ObjectCreated"):
        return []        # ObjectRemoved, restore, replication...: nothing to process
    try:
        s3 = record["s3"]
        bucket, raw_key, obj = s3["bucket"]["name"], s3["object"]["key"], s3["object"]
    except (KeyError, TypeError):
        raise UnknownEvent(f"{via}{name} record without s3.bucket.name/s3.object.key") \
            from None
    if not isinstance(bucket, str) or not isinstance(raw_key, str):
        raise UnknownEvent(f"{via}{name} record whose bucket or key is not a string")
    # S3 URL-encodes keys in notifications ("+" for space, "%2B" for "+"; moto also
    # encodes "/"): docs.aws.amazon.com/AmazonS3/latest/userguide/notification-content-structure
    return [S3Object(bucket=bucket, key=unquote_plus(raw_key), event_name=name,
                     size=_int(obj.get("size")), etag=_text(obj.get("eTag")),
                     sequencer=_text(obj.get("sequencer")),
                     version_id=_version(obj.get("versionId")),
                     shape=f"{via}S3 notification", reprocess=_reprocess(record, via))]


def _reprocess(record: dict, via: str) -> Reprocess | None:
    marker = record.get(REPROCESS_MARKER)
    if marker is None:
        return None
    run_id = marker.get("runId") if isinstance(marker, dict) else None
    version = marker.get("version") if isinstance(marker, dict) else None
    if not (isinstance(run_id, str) and run_id and isinstance(version, str) and version):
        raise UnknownEvent(f"{via}a {REPROCESS_MARKER} marker without runId and version "
                           "strings")
    return Reprocess(run_id=run_id, version=version)


def _eventbridge(event: dict, via: str) -> list[S3Object]:
    """https://docs.aws.amazon.com/AmazonS3/latest/userguide/ev-events.html"""
    kind, source = event.get("detail-type"), event.get("source")
    if source != "aws.s3":
        raise UnknownEvent(f"{via}an EventBridge event from {source!r}, not aws.s3")
    if kind != EVENTBRIDGE_CREATED:
        return []        # Object Deleted, Object Restore Completed...: nothing to process
    detail: Any = event.get("detail")
    try:
        bucket, key, obj = detail["bucket"]["name"], detail["object"]["key"], detail["object"]
    except (KeyError, TypeError):
        raise UnknownEvent(f"{via}an EventBridge Object Created event without "
                           "detail.bucket.name/detail.object.key") from None
    if not isinstance(bucket, str) or not isinstance(key, str):
        raise UnknownEvent(f"{via}an EventBridge Object Created event whose bucket or key "
                           "is not a string")
    # Unlike notifications, EventBridge carries the key as it is: published events show
    # ":" in keys, which a notification sends as "%3A".
    return [S3Object(bucket=bucket, key=key,
                     event_name=f"ObjectCreated:{detail.get('reason') or 'Unknown'}",
                     size=_int(obj.get("size")), etag=_text(obj.get("etag")),
                     sequencer=_text(obj.get("sequencer")),
                     version_id=_version(obj.get("version-id")),
                     shape=f"{via}EventBridge Object Created")]


def _json_type(value) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value) -> str | None:
    return value if isinstance(value, str) and value else None


def _version(value) -> str | None:
    # An unversioned bucket's events carry no versionId (or "null", S3's name for it).
    return value if isinstance(value, str) and value and value != "null" else None
