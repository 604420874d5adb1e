"""pipectl fetch through pipectl.cli.app.run: the request file, exit codes, messages, JSON."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.cli.conftest import RAW


def stored(client, key: str) -> dict:
    return json.loads(client.get_object(Bucket=RAW, Key=key)["Body"].read())


def test_fetch_uploads_the_request_file_and_prints_its_key(s3, pipectl):
    code, out, err = pipectl("fetch", "https://api.example.com/v1/orders?region=eu",
                             "--records", "/data/items", "--header", "Authorization: Bearer t",
                             "-H", "X-Trace:1", "--query", "page=2", "--query", "tag=a",
                             "--query", "tag=b")

    assert code == 0, err
    assert out == "fetch/orders.json\n"
    assert stored(s3, "fetch/orders.json") == {
        "url": "https://api.example.com/v1/orders?region=eu", "method": "GET", "name": "orders",
        "headers": {"Authorization": "Bearer t", "X-Trace": "1"},
        "query": {"page": "2", "tag": ["a", "b"]}, "records": "/data/items"}
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=RAW)["Contents"]] == [
        "fetch/orders.json"]


def test_fetch_json_output_and_name(s3, pipectl):
    code, out, err = pipectl("--output", "json", "fetch", "http://127.0.0.1:8080/",
                             "--name", "daily orders/v2")

    assert code == 0, err
    assert json.loads(out) == {
        "request_key": "fetch/daily-orders-v2.json",
        "request": {"url": "http://127.0.0.1:8080/", "method": "GET",
                    "name": "daily-orders-v2"}}
    assert stored(s3, "fetch/daily-orders-v2.json")["name"] == "daily-orders-v2"


def test_a_non_ascii_url_is_written_as_http_sends_it(s3, pipectl):
    code, out, err = pipectl("fetch", "https://bücher.example/v1/straße?stadt=Zürich")

    assert code == 0, err
    # the host as IDNA (punycode), the path and query percent-encoded UTF-8; the name from
    # the path as written
    assert stored(s3, out.strip())["url"] == (
        "https://xn--bcher-kva.example/v1/stra%C3%9Fe?stadt=Z%C3%BCrich")


@pytest.mark.parametrize("args, message", [
    (["https://straße.example/x"], "error: 'straße.example': IDNA 2003 and 2008 encode ß, ς, "
                                   "ZWJ and ZWNJ differently; write the host as its xn-- name"),
    (["https://" + "ü" * 64 + ".example/x"],
     f"error: '{'ü' * 64}.example' is not a valid internationalized domain name (IDNA)"),
    (["file:///etc/passwd"], "error: 'file:///etc/passwd' is not an http:// or https:// URL"),
    (["ftp://example.com/x"], "error: 'ftp://example.com/x' is not an http:// or https:// URL"),
    (["https://example.com/x", "--header", "no colon"],
     "error: --header: 'no colon' is not 'Name: value'"),
    (["https://example.com/x", "--query", "novalue"],
     "error: --query: 'novalue' is not 'key=value'"),
    (["https://example.com/x", "--records", "data"],
     "error: --records: 'data' is not a JSON pointer (e.g. /data/items)"),
])
def test_bad_arguments_exit_2_before_any_aws_call(aws_pipeline, pipectl, monkeypatch, args,
                                                  message):
    # No mock_aws and no bucket: any AWS call would fail with a different error.
    def no_aws(*a, **k):
        raise AssertionError("AWS was called")

    monkeypatch.setattr(boto3.session.Session, "client", no_aws)
    code, out, err = pipectl("fetch", *args)

    assert code == 2
    assert out == ""
    assert err.strip() == message
