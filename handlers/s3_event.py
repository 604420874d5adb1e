"""A typed view over the S3 notifications inside SQS messages; keys are decoded once here."""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import unquote_plus


class MalformedMessage(Exception):
    """An SQS body that is not an S3 notification; it belongs in the dead-letter queue."""


@dataclass(frozen=True)
class S3Object:
    bucket: str
    key: str                 # decoded: "incoming/my file+(1).csv"
    event_name: str
    size: int | None = None
    etag: str | None = None
    sequencer: str | None = None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


def created_objects(body: str) -> list[S3Object]:
    """The ObjectCreated objects in one SQS message body; [] for s3:TestEvent."""
    try:
        message = json.loads(body)
    except (TypeError, ValueError) as e:
        raise MalformedMessage(f"message body is not JSON: {e}") from None
    if not isinstance(message, dict):
        raise MalformedMessage("message body is not a JSON object")
    # S3 -> SNS -> SQS wraps the notification in an SNS envelope.
    if message.get("Type") == "Notification" and isinstance(message.get("Message"), str):
        return created_objects(message["Message"])
    # Setting a bucket's notification configuration sends this once; it names no object.
    if message.get("Event") == "s3:TestEvent":
        return []
    records = message.get("Records")
    if not isinstance(records, list):
        raise MalformedMessage("message body has no S3 Records")
    objects = []
    for record in records:
        name = record.get("eventName", "") if isinstance(record, dict) else ""
        if not name.startswith("ObjectCreated"):
            continue
        try:
            s3 = record["s3"]
            bucket = s3["bucket"]["name"]
            raw_key = s3["object"]["key"]
        except (KeyError, TypeError):
            raise MalformedMessage(f"{name} record without s3.bucket.name/s3.object.key") \
                from None
        obj = s3["object"]
        # S3 URL-encodes keys in notifications ("+" for space; moto also encodes "/").
        objects.append(S3Object(bucket=bucket, key=unquote_plus(raw_key), event_name=name,
                                size=obj.get("size"), etag=(obj.get("eTag") or None),
                                sequencer=obj.get("sequencer")))
    return objects
