"""Sample events, as `sam local generate-event` prints them: S3 ObjectCreated:Put, alone or
inside the SQS message Lambda's SQS integration delivers."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from urllib.parse import quote_plus


def encode_key(key: str) -> str:
    """A key as S3 writes it into event notifications: URL-encoded with a space as '+'
    (so a literal '+' is '%2B'), '/' kept. unquote_plus() gives the key back.
    (moto's notifications also encode '/' as '%2F'; unquote_plus reads both.)"""
    return quote_plus(key, safe="/")


def s3_put(bucket: str, key: str, *, size: int = 1024, etag: str | None = None,
           region: str = "us-east-1", now: datetime | None = None) -> dict:
    now = now or datetime.now(timezone.utc)
    etag = etag or hashlib.md5(key.encode()).hexdigest()  # noqa: S324 - a sample ETag
    return {"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "EXAMPLE123456789",
                             "x-amz-id-2": "EXAMPLE/abcdefghijklmnopqrstuvwxyz"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "pipectl-sample",
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "EXAMPLE"},
                       "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": encode_key(key), "size": size, "eTag": etag,
                       "sequencer": f"{int(now.timestamp() * 1e6):X}"},
        },
    }]}


def sqs_wrap(body: dict, queue_arn: str, region: str, *, now: datetime | None = None) -> dict:
    """The Lambda SQS event carrying body as one message's body."""
    now = now or datetime.now(timezone.utc)
    text = json.dumps(body)
    sent = str(int(now.timestamp() * 1000))
    return {"Records": [{
        "messageId": str(uuid.uuid4()),
        "receiptHandle": "AQEBsample" + uuid.uuid4().hex,
        "body": text,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": sent,
                       "SenderId": "AIDAEXAMPLE", "ApproximateFirstReceiveTimestamp": sent},
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(text.encode()).hexdigest(),  # noqa: S324 - SQS's own MD5
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }]}
