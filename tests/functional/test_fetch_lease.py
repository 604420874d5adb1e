"""The fetcher's lease under mock_aws: two deliveries of one request never both call the API.

The API is a real HTTP server on 127.0.0.1 that counts its calls and can hold the first
one open, so a second delivery arrives while the first is mid-fetch.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fetcher
import pytest
from common import results
from fetching import safe_http

RAW = "raw-bucket"          # the bucket tests/functional/conftest.py creates


class Api:
    """GET answers from a list of statuses (the last repeating); with `hold`, the first call
    signals `arrived` and waits for `release` before answering."""

    def __init__(self):
        self.statuses = [200]
        self.hits = 0
        self.hold = False
        self.arrived, self.release = threading.Event(), threading.Event()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                api.hits += 1
                status = api.statuses[min(api.hits, len(api.statuses)) - 1]
                if api.hold and api.hits == 1:
                    api.arrived.set()
                    api.release.wait(10)
                body = json.dumps([{"call": api.hits}]).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/items"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


class Context:
    """What Lambda passes: a request id and the time left."""

    def __init__(self, request_id: str, seconds_left: float = 30):
        self.aws_request_id = request_id
        self._deadline = time.time() + seconds_left

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.time()) * 1000)


@pytest.fixture
def api():
    server = Api()
    server.thread.start()
    yield server
    server.release.set()
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def world(aws_world, monkeypatch):
    for name in ("FETCH_PREFIX", "FETCH_MAX_BYTES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FETCH_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("FETCH_REQUEST_TIMEOUT", "5")
    monkeypatch.setenv("FETCH_MAX_ATTEMPTS", "1")
    monkeypatch.setattr(safe_http, "_sleep", lambda seconds: None)
    fetcher.reset_clients()
    yield aws_world
    fetcher.reset_clients()


def request(world, api, key: str = "fetch/items.json") -> str:
    """Upload a request file for the API; its ETag."""
    return world.upload(key, json.dumps({"url": api.url}))


def test_a_lease_held_elsewhere_keeps_the_api_uncalled_until_it_expires(world, api):
    # given another attempt that claimed this request and is still within its timeout
    key = "fetch/items.json"
    etag = request(world, api, key)
    now = time.time()
    assert results.claim(world.table, results.row_key(RAW, key), bucket=RAW, kind="fetch",
                         version="1.0.0", started_at=results.now_iso(), etag=etag, holder="other",
                         until=int(now) + 60, now=now)
    message = world.message(key)

    # when the message is delivered here
    result = fetcher.lambda_handler(world.event(message), Context("req-here"))

    # then the API is not called, the message comes back later, the lease stays the other's
    assert result == {"batchItemFailures": [{"itemIdentifier": message["messageId"]}]}
    assert api.hits == 0
    assert world.keys(RAW, "incoming/") == [] and world.keys(RAW, "fetch/") == [key]
    row = world.row(key)
    assert (row["status"], row["in_progress_by"]) == ("PROCESSING", "other")

    # when the other attempt died and its lease ran out
    world.table.update_item(Key={"object_key": results.row_key(RAW, key)},
                            UpdateExpression="SET in_progress_until = :past",
                            ExpressionAttributeValues={":past": int(now) - 1})
    result = fetcher.lambda_handler(world.event(message), Context("req-here"))

    # then this attempt takes over: one call, one output, the row counts both attempts
    assert result == {"batchItemFailures": []}
    assert api.hits == 1
    assert len(world.keys(RAW, "incoming/")) == 1
    row = world.row(key)
    assert (row["status"], row["attempts"]) == ("PROCESSED", 2)
    assert "in_progress_until" not in row and "in_progress_by" not in row
    assert results.counters(world.table)["PROCESSING"] == 0


def test_a_second_delivery_during_the_fetch_does_not_call_the_api(world, api):
    # given a first delivery whose API call is still in flight
    key = "fetch/items.json"
    request(world, api, key)
    api.hold = True
    first, second = world.message(key), world.message(key)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.update(first=fetcher.lambda_handler(
        world.event(first), Context("req-first", seconds_left=30))))
    worker.start()
    assert api.arrived.wait(10)
    in_flight = world.row(key)

    # when the same request is delivered again meanwhile
    result = fetcher.lambda_handler(world.event(second), Context("req-second"))

    # then the second delivery leaves the API alone and its message comes back later
    assert result == {"batchItemFailures": [{"itemIdentifier": second["messageId"]}]}
    assert api.hits == 1
    # and the first held a lease that ends with its invocation (30 s), plus the margin
    assert in_flight["in_progress_by"] == "req-first"
    assert time.time() + 20 < in_flight["in_progress_until"] <= time.time() + 33

    # when the first finishes and the second message is delivered again
    api.release.set()
    worker.join(15)
    assert outcome["first"] == {"batchItemFailures": []}
    again = fetcher.lambda_handler(world.event(second), Context("req-second"))

    # then it is a no-op: one call, one output, one attempt
    assert again == {"batchItemFailures": []}
    assert api.hits == 1
    assert len(world.keys(RAW, "incoming/")) == 1
    row = world.row(key)
    assert (row["status"], row["attempts"]) == ("PROCESSED", 1)
    assert world.keys(RAW, "completed/") == [f"completed/{key}"]


@pytest.mark.parametrize("status, ended", [(200, "PROCESSED"), (404, "FAILED")])
def test_a_delivery_that_lost_the_race_to_a_finished_attempt_is_a_no_op(
        world, api, monkeypatch, status, ended):
    # given a second delivery that read the request file just before another delivery
    # of it ran to the end (fetched, or failed for good)
    key = "fetch/items.json"
    request(world, api, key)
    api.statuses = [status]
    first, second = world.message(key), world.message(key)
    real_read = fetcher._read_request_file
    outcome, reads = {}, []

    def read_then_lose_the_race(s3, bucket, read_key, version_id=None):
        found = real_read(s3, bucket, read_key, version_id)
        reads.append(read_key)
        if len(reads) == 1:   # the second delivery's read: the first one runs to the end now
            outcome["first"] = fetcher.lambda_handler(world.event(first), Context("req-first"))
        return found

    monkeypatch.setattr(fetcher, "_read_request_file", read_then_lose_the_race)

    # when the second delivery carries on
    result = fetcher.lambda_handler(world.event(second), Context("req-second"))

    # then it neither calls the API nor counts an attempt, and its message is done
    assert outcome["first"] == result == {"batchItemFailures": []}
    assert api.hits == 1
    row = world.row(key)
    assert (row["status"], row["attempts"]) == (ended, 1)
    place = "completed/" if ended == "PROCESSED" else "failed/"
    assert world.keys(RAW, place) == [place + key] and world.keys(RAW, "fetch/") == []


def test_a_transient_failure_gives_the_lease_up_for_the_retry(world, api):
    # given an API that fails once with a server error, then answers
    key = "fetch/items.json"
    request(world, api, key)
    api.statuses = [502, 200]
    message = world.message(key)

    # when the first delivery fails transiently
    result = fetcher.lambda_handler(world.event(message), Context("req-1", seconds_left=600))

    # then the lease is released at once, not held until the invocation's end ...
    assert result == {"batchItemFailures": [{"itemIdentifier": message["messageId"]}]}
    row = world.row(key)
    assert row["status"] == "PROCESSING" and "in_progress_until" not in row

    # ... so the retry fetches right away
    assert fetcher.lambda_handler(world.event(message), Context("req-2")) == {
        "batchItemFailures": []}
    assert api.hits == 2
    assert world.row(key)["status"] == "PROCESSED"


def test_uploading_the_same_request_again_fetches_again(world, api):
    # given a request that was fetched
    key = "fetch/items.json"
    first_etag = request(world, api, key)
    assert fetcher.lambda_handler(world.event(world.message(key)), None) == {
        "batchItemFailures": []}

    # when identical bytes are uploaded again (same ETag, a new version of the object)
    assert request(world, api, key) == first_etag
    result = fetcher.lambda_handler(world.event(world.message(key)), None)

    # then that is a new request: the API is called again and a second output written
    assert result == {"batchItemFailures": []}
    assert api.hits == 2
    assert len(world.keys(RAW, "incoming/")) == 2
    row = world.row(key)
    assert (row["status"], row["attempts"]) == ("PROCESSED", 2)
