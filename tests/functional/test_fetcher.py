"""fetcher.lambda_handler under mock_aws, calling a real HTTP server on 127.0.0.1 (no internet)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fetcher
import processor
import pytest
from botocore.exceptions import EndpointConnectionError
from common import results
from fetching import safe_http

RAW = "raw-bucket"          # the buckets tests/functional/conftest.py creates


class Api:
    """A tiny HTTP API: each path answers from its list of responses, the last one repeating."""

    def __init__(self):
        self.routes: dict[str, list[tuple[int, dict, bytes]]] = {}
        self.hits: dict[str, int] = {}
        self.requests: list[dict] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's naming
                path, _, query = self.path.partition("?")
                api.hits[path] = api.hits.get(path, 0) + 1
                api.requests.append({"path": path, "query": query,
                                     "headers": dict(self.headers)})
                answers = api.routes.get(path) or [(404, {}, b"not found")]
                status, headers, body = answers[min(api.hits[path], len(answers)) - 1]
                self.send_response(status)
                headers = {"Content-Length": str(len(body)), **headers}
                for name, value in headers.items():
                    if value is not None:
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def answer(self, path: str, *answers) -> None:
        self.routes[path] = [(s, h, b if isinstance(b, bytes) else json.dumps(b).encode())
                             for s, h, b in answers]


JSON = {"Content-Type": "application/json"}


@pytest.fixture
def api():
    server = Api()
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.fixture
def world(aws_world, monkeypatch):
    """aws_world plus the fetcher's environment; private addresses allowed unless a test says."""
    for name in ("FETCH_PREFIX", "FETCH_MAX_BYTES", "FETCH_MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FETCH_ALLOW_PRIVATE", "true")
    monkeypatch.setenv("FETCH_REQUEST_TIMEOUT", "5")
    sleeps: list[float] = []
    monkeypatch.setattr(safe_http, "_sleep", sleeps.append)
    aws_world.sleeps = sleeps
    fetcher.reset_clients()
    yield aws_world
    fetcher.reset_clients()


def run(world, key: str, request: dict | str) -> dict:
    """Upload a request file and deliver its S3 notification to the fetcher."""
    world.upload(key, request if isinstance(request, str) else json.dumps(request))
    return fetcher.lambda_handler(world.event(world.message(key)), None)


def only_incoming(world) -> str:
    found = world.keys(RAW, "incoming/")
    assert len(found) == 1, found
    return found[0]


def test_records_pointer_writes_exactly_those_records_and_the_row_says_processed(world, api):
    # given an API whose records sit at /data/items
    items = [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}]
    api.answer("/v1/orders", (200, JSON, {"data": {"items": items, "total": 2}}))

    # when a request file asks for them, with a secret in the query
    result = run(world, "fetch/orders.json", {
        "url": api.url("/v1/orders"), "query": {"token": "s3cr3t", "page": 1},
        "headers": {"X-Api-Key": "k"}, "records": "/data/items"})

    # then the incoming object holds exactly the records
    assert result == {"batchItemFailures": []}
    key = only_incoming(world)
    assert key.startswith("incoming/orders-") and key.endswith("Z.json")
    body = '[{"id":1,"name":"Ada"},{"id":2,"name":"Grace"}]'
    assert world.read(RAW, key) == body
    # and the API got the query and headers
    assert api.requests[0]["query"] == "token=s3cr3t&page=1"
    assert api.requests[0]["headers"]["X-Api-Key"] == "k"
    # and the row is PROCESSED, without the query in the stored url
    row = world.row("fetch/orders.json")
    assert row["status"] == "PROCESSED" and row["kind"] == "fetch"
    assert row["http_status"] == 200 and row["bytes"] == len(body)
    assert row["output"] == f"s3://{RAW}/{key}"
    assert row["url"] == api.url("/v1/orders") and "s3cr3t" not in json.dumps(row, default=str)
    assert row["attempts"] == 1 and "error" not in row
    # and the request file moved to completed/
    assert world.keys(RAW, "fetch/") == []
    assert world.keys(RAW, "completed/") == ["completed/fetch/orders.json"]


def test_the_fetched_file_flows_through_the_processor(world, api):
    api.answer("/users", (200, JSON, [{"User Name": "Ada", "Age": None}]))
    run(world, "fetch/users.json", {"url": api.url("/users")})
    key = only_incoming(world)

    result = processor.lambda_handler(world.event(world.message(key)), None)

    assert result == {"batchItemFailures": []}
    assert world.row(key)["status"] == "PROCESSED" and world.row(key)["records_out"] == 1


def test_yaml_request_file_and_body_written_as_is(world, api):
    raw = b'{"a": 1,  "b": [1, 2]}'
    api.answer("/thing", (200, JSON, raw))

    result = run(world, "fetch/thing.yaml",
                 f"url: {api.url('/thing')}\nmethod: get\nname: my thing/v2\n")

    assert result == {"batchItemFailures": []}
    key = only_incoming(world)
    assert key.startswith("incoming/my-thing-v2-")
    assert world.read(RAW, key).encode() == raw
    assert world.row("fetch/thing.yaml")["status"] == "PROCESSED"


def test_private_address_refused_when_not_allowed(world, api, monkeypatch):
    monkeypatch.setenv("FETCH_ALLOW_PRIVATE", "false")
    api.answer("/items", (200, JSON, []))

    result = run(world, "fetch/items.json", {"url": api.url("/items")})

    assert result == {"batchItemFailures": []}           # permanent: not retried
    row = world.row("fetch/items.json")
    assert row["status"] == "FAILED"
    assert row["error"] == ("host '127.0.0.1' resolves to loopback address 127.0.0.1; "
                            "private addresses are not allowed (FETCH_ALLOW_PRIVATE)")
    assert api.hits == {}
    assert world.keys(RAW, "incoming/") == []
    assert world.keys(RAW, "failed/") == ["failed/fetch/items.json"]


def test_every_resolved_address_is_checked(world, api, monkeypatch):
    monkeypatch.setenv("FETCH_ALLOW_PRIVATE", "false")
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):   # one public and one metadata-service address
        if host == "api.example.test":
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", 80)),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80))]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    run(world, "fetch/x.json", {"url": "http://api.example.test/x"})

    assert world.row("fetch/x.json")["error"].startswith(
        "host 'api.example.test' resolves to link-local address 169.254.169.254;")


def test_redirect_to_a_private_address_is_refused(world, api, monkeypatch):
    # given a "public" API host (api.example.test, served here) that redirects to loopback
    monkeypatch.setenv("FETCH_ALLOW_PRIVATE", "false")
    real_resolve, real_check = socket.getaddrinfo, safe_http.check_address

    def resolve(host, *args, **kwargs):
        return real_resolve("127.0.0.1" if host == "api.example.test" else host, *args,
                            **kwargs)

    def check(address, host):             # treat the test API as public, nothing else
        if host != "api.example.test":
            real_check(address, host)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    monkeypatch.setattr(safe_http, "check_address", check)
    api.answer("/start", (302, {"Location": api.url("/secret")}, b""))
    api.answer("/secret", (200, JSON, {"secret": True}))

    result = run(world, "fetch/r.json", {"url": api.url("/start", host="api.example.test")})

    assert result == {"batchItemFailures": []}
    row = world.row("fetch/r.json")
    assert row["status"] == "FAILED"
    assert row["error"].startswith(f"redirect to {api.url('/secret')} refused: host "
                                   "'127.0.0.1' resolves to loopback address 127.0.0.1")
    assert api.hits == {"/start": 1}                    # the private target was never called
    assert world.keys(RAW, "incoming/") == []


def test_redirect_to_an_allowed_address_is_followed(world, api):
    api.answer("/old", (301, {"Location": "/new"}, b""))
    api.answer("/new", (200, JSON, {"ok": 1}))

    run(world, "fetch/moved.json", {"url": api.url("/old")})

    assert world.read(RAW, only_incoming(world)) == '{"ok": 1}'
    assert api.hits == {"/old": 1, "/new": 1}


@pytest.mark.parametrize("url, reason", [
    ("file:///etc/passwd", "url scheme 'file' is not allowed: use http or https"),
    ("ftp://example.com/x", "url scheme 'ftp' is not allowed: use http or https"),
    ("http://user:pw@example.com/", "credentials in the url are not supported: send them in "
                                    "headers"),
])
def test_non_http_urls_are_refused(world, url, reason):
    result = run(world, "fetch/bad.json", {"url": url})

    assert result == {"batchItemFailures": []}
    row = world.row("fetch/bad.json")
    assert (row["status"], row["error"]) == ("FAILED", reason)


def test_server_errors_are_retried_with_backoff_then_succeed(world, api):
    api.answer("/flaky", (500, {}, b"oops"), (503, {}, b"busy"), (200, JSON, {"n": 1}))

    result = run(world, "fetch/flaky.json", {"url": api.url("/flaky")})

    assert result == {"batchItemFailures": []}
    assert api.hits == {"/flaky": 3}
    assert world.sleeps == [0.5, 1.0]                    # exponential backoff
    row = world.row("fetch/flaky.json")
    assert row["status"] == "PROCESSED" and row["http_status"] == 200
    assert row["http_attempts"] == 3


def test_429_waits_as_retry_after_says_up_to_the_cap(world, api):
    api.answer("/limited", (429, {"Retry-After": "7"}, b""), (429, {"Retry-After": "3600"}, b""),
               (200, JSON, []))

    run(world, "fetch/limited.json", {"url": api.url("/limited")})

    assert world.sleeps == [7.0, safe_http.RETRY_AFTER_CAP_SECONDS]
    assert world.row("fetch/limited.json")["status"] == "PROCESSED"


def test_still_failing_after_the_retries_is_a_batch_item_failure(world, api, monkeypatch):
    monkeypatch.setenv("FETCH_MAX_ATTEMPTS", "2")
    api.answer("/down", (502, {}, b"bad gateway"))

    result = run(world, "fetch/down.json", {"url": api.url("/down")})

    assert result == {"batchItemFailures": [{"itemIdentifier": "message-1"}]}
    assert api.hits == {"/down": 2}
    row = world.row("fetch/down.json")
    assert row["status"] == "PROCESSING"
    assert row["last_error"].startswith("HTTP 502 Bad Gateway from ")
    assert world.keys(RAW, "fetch/") == ["fetch/down.json"]        # left for the retry


def test_not_found_fails_at_once(world, api):
    api.answer("/gone", (404, {}, b"nope"))

    result = run(world, "fetch/gone.json", {"url": api.url("/gone")})

    assert result == {"batchItemFailures": []}
    assert api.hits == {"/gone": 1} and world.sleeps == []
    row = world.row("fetch/gone.json")
    assert (row["status"], row["error"]) == ("FAILED",
                                             f"HTTP 404 Not Found from {api.url('/gone')}")


@pytest.mark.parametrize("length_header", [True, False], ids=["content-length", "streamed"])
def test_body_over_the_limit_fails(world, api, monkeypatch, length_header):
    monkeypatch.setenv("FETCH_MAX_BYTES", "100")
    body = json.dumps(["x" * 10] * 20).encode()            # 280 bytes
    api.answer("/big", (200, {**JSON, **({} if length_header else {"Content-Length": None})},
                        body))

    run(world, "fetch/big.json", {"url": api.url("/big")})

    row = world.row("fetch/big.json")
    assert row["status"] == "FAILED"
    assert row["error"] == ("response is 280 bytes; at most 100 are allowed (FETCH_MAX_BYTES)"
                            if length_header else
                            "response is more than 100 bytes (FETCH_MAX_BYTES)")
    assert world.keys(RAW, "incoming/") == []


def test_non_json_body_fails(world, api):
    api.answer("/page", (200, {"Content-Type": "text/html"}, b"<html>hi</html>"))

    run(world, "fetch/page.json", {"url": api.url("/page")})

    row = world.row("fetch/page.json")
    assert (row["status"], row["error"]) == ("FAILED",
                                             "response is not JSON (content-type text/html)")


@pytest.mark.parametrize("request_doc, reason", [
    ({"url": "http://x.test/", "method": "POST"}, "method POST not supported (only GET)"),
    ({"url": "http://x.test/", "verb": "GET"},
     "unknown field(s) 'verb' in the request (allowed: url, method, headers, query, records, "
     "name)"),
    ({"method": "GET"}, "'url' is required and must be a non-empty string"),
    ({"url": "http://x.test/", "records": "data"},
     "'records' must be a JSON pointer such as '/data/items', not 'data'"),
    ({"url": "http://x.test/", "headers": {"Bad\nName": "v"}},
     "headers: 'Bad\\nName' is not a valid header"),
])
def test_bad_request_files_fail_with_a_clear_reason(world, request_doc, reason):
    run(world, "fetch/req.json", request_doc)

    assert world.row("fetch/req.json")["error"] == reason


def test_records_pointer_to_a_missing_or_scalar_value_fails(world, api):
    api.answer("/d", (200, JSON, {"data": {"count": 3}}))

    run(world, "fetch/a.json", {"url": api.url("/d"), "records": "/data/items"})
    run(world, "fetch/b.json", {"url": api.url("/d"), "records": "/data/count"})

    assert world.row("fetch/a.json")["error"] == (
        "records '/data/items': nothing at 'items' under /data of the response")
    assert world.row("fetch/b.json")["error"] == (
        "records '/data/count' is a int, expected a list or an object")


def test_duplicate_delivery_is_a_no_op(world, api):
    api.answer("/once", (200, JSON, [1]))
    world.upload("fetch/once.json", json.dumps({"url": api.url("/once")}))
    message = world.message("fetch/once.json")

    first = fetcher.lambda_handler(world.event(message), None)
    second = fetcher.lambda_handler(world.event(message), None)

    assert first == second == {"batchItemFailures": []}
    assert api.hits == {"/once": 1}
    assert len(world.keys(RAW, "incoming/")) == 1
    assert world.row("fetch/once.json")["attempts"] == 1
    assert world.row(results.COUNTERS_KEY)["responses_fetched"] == 1


def test_a_retry_after_the_output_was_written_does_not_call_again(world, api):
    # given an attempt that wrote the output and then failed (the table unreachable)
    # before the row was final
    api.answer("/crash", (200, JSON, {"v": 1}))
    world.upload("fetch/crash.json", json.dumps({"url": api.url("/crash")}))
    message = world.message("fetch/crash.json")
    real = fetcher.results.mark_processed
    fetcher.results.mark_processed = lambda *a, **k: (_ for _ in ()).throw(
        EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com"))
    try:
        assert fetcher.lambda_handler(world.event(message), None)["batchItemFailures"]
    finally:
        fetcher.results.mark_processed = real

    # when SQS redelivers the message
    assert fetcher.lambda_handler(world.event(message), None) == {"batchItemFailures": []}

    # then the API was called once and there is one output, recorded in the row
    assert api.hits == {"/crash": 1}
    key = only_incoming(world)
    row = world.row("fetch/crash.json")
    assert row["status"] == "PROCESSED" and row["output"] == f"s3://{RAW}/{key}"
    assert row["http_status"] == 200 and row["bytes"] == len('{"v": 1}')


def test_a_non_ascii_request_name_is_fetched_and_its_metadata_reads_back(world, api):
    from common import user_metadata

    # given a request file whose name is not ASCII (metadata that botocore would refuse)
    api.answer("/items", (200, JSON, [{"name": "Zoë"}]))
    result = run(world, "fetch/données café.json", {"url": api.url("/items")})

    # then it is fetched in one attempt, and the response's metadata names the request
    assert result == {"batchItemFailures": []}
    row = world.row("fetch/données café.json")
    assert (row["status"], row["attempts"]) == ("PROCESSED", 1)
    key = only_incoming(world)
    found = world.s3.head_object(Bucket=RAW, Key=key)["Metadata"]
    assert all(v.isascii() for v in found.values())
    assert user_metadata.decode_all(found)[fetcher.META_REQUEST] == "fetch/données café.json"

    # and the response flows on through the processor under its own non-ASCII name
    assert processor.lambda_handler(world.event(world.message(key)), None) == {
        "batchItemFailures": []}
    assert world.row(key)["status"] == "PROCESSED"
# --- URLs with non-ASCII characters (HTTP sends ASCII) ---------------------------------

def test_a_non_ascii_path_and_query_are_percent_encoded_and_fetched(world, api):
    # given an API path with non-ASCII characters, and a request file that writes it as is
    api.answer("/v1/b%C3%BCcher/%E6%97%A5%E6%9C%AC", (200, JSON, [{"id": 1}]))

    # when the fetcher handles it
    result = run(world, "fetch/books.json",
                 {"url": api.url("/v1/bücher/日本?stadt=Zürich&q=a b")})

    # then the API got the UTF-8 percent-encoded form, and the response flowed on
    assert result == {"batchItemFailures": []}
    assert [(r["path"], r["query"]) for r in api.requests] == [
        ("/v1/b%C3%BCcher/%E6%97%A5%E6%9C%AC", "stadt=Z%C3%BCrich&q=a%20b")]
    row = world.row("fetch/books.json")
    assert (row["status"], row["http_status"]) == ("PROCESSED", 200)
    assert row["url"] == api.url("/v1/b%C3%BCcher/%E6%97%A5%E6%9C%AC")


@pytest.mark.parametrize("host, reason", [
    ("ü" * 64 + ".example", "is not a valid internationalized domain name (IDNA)"),
    ("straße.example", "has a character IDNA 2003 and 2008 encode differently"),
])
def test_a_host_with_no_ascii_form_fails_at_once_not_as_transient(world, host, reason):
    # when a request names a host that IDNA cannot encode (or would encode ambiguously)
    result = run(world, "fetch/idn.json", {"url": f"https://{host}/items"})

    # then the request is FAILED on its first delivery with the reason, never retried
    assert result == {"batchItemFailures": []}
    row = world.row("fetch/idn.json")
    assert (row["status"], row["attempts"]) == ("FAILED", 1)
    assert reason in row["error"] and "last_error" not in row
    assert world.keys(RAW, "failed/") == ["failed/fetch/idn.json"]
