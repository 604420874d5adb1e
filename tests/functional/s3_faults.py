"""Fault injection for the processor's S3 client: chosen calls fail, or stall."""

from __future__ import annotations

import threading
import time

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

