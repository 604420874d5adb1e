"""Fault injection for the processor's S3 client: chosen calls fail, or stall."""

from __future__ import annotations

import threading
import time
from xml.sax.saxutils import escape

from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError


def fail_calls(s3_client, operation: str, key_part: str, code: str = "SlowDown"):
    """Make the processor's S3 client fail `operation` for keys containing `key_part`."""

    def fail(params, **_):
        if key_part in params.get("Key", ""):
            raise ClientError({"Error": {"Code": code, "Message": "Please reduce your rate"}},
                              operation)

    s3_client.meta.events.register(f"before-parameter-build.s3.{operation}", fail)
    return lambda: s3_client.meta.events.unregister(
        f"before-parameter-build.s3.{operation}", fail)


def slow_calls(s3_client, operation: str, seconds: float, started: threading.Event):
    """Make the processor's S3 client stall `operation` for `seconds`, setting `started` first."""

    def slow(params, **_):
        started.set()
        time.sleep(seconds)   # holds the winner mid-write while the other attempt arrives

    s3_client.meta.events.register(f"before-parameter-build.s3.{operation}", slow)



class _Body:
    def __init__(self, data: bytes):
        self.data = data

    def stream(self, **_):
        yield self.data


def s3_answers(s3_client, operation: str, status: int, code: str, message: str):
    """Make the processor's S3 client receive S3's REST error response to `operation`
    instead of sending it: the documented XML body (Code, Message, Resource, RequestId:
    docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html), so botocore itself parses
    it into the ClientError the handler sees. Returns the undo."""

    def answer(request, **_):
        resource = escape(request.url.split("amazonaws.com", 1)[-1].split("?", 1)[0])
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{escape(message)}</Message><Resource>{resource}</Resource>"
                "<RequestId>4442587FB7D0A2F9</RequestId></Error>").encode()
        return AWSResponse(request.url, status, {"Content-Type": "application/xml",
                                                 "x-amz-request-id": "4442587FB7D0A2F9"},
                           _Body(body))

    s3_client.meta.events.register(f"before-send.s3.{operation}", answer)
    return lambda: s3_client.meta.events.unregister(f"before-send.s3.{operation}", answer)
