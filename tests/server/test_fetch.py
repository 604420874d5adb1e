"""pipectl fetch -> fetcher (local runtime) -> incoming/ -> processor, against a moto server."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pipectl.naming import row_key

pytestmark = pytest.mark.server

ITEMS = [{"Order ID": 1, "Customer Name": "Ada"}, {"Order ID": 2, "Customer Name": "Grace"}]


@pytest.fixture
def api():
    """A local JSON API on 127.0.0.1 (no internet): GET /items -> {"items": [...]}."""
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            hits.append(self.path)
            body = json.dumps({"items": ITEMS, "total": 2}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", hits
    server.shutdown()
    server.server_close()


@pytest.fixture
def allow_private(pipeline_dir):
    path = pipeline_dir / "pipeline.yaml"
    path.write_text(path.read_text() + "\nfetcher:\n  allow_private: true\n")


def test_fetched_response_is_processed_like_any_upload(allow_private, pipectl, client, names,
                                                       api):
    base, hits = api
    deployed = pipectl("deploy", "--yes")
    assert deployed.code == 0, deployed.err

    requested = pipectl("-o", "json", "fetch", f"{base}/items", "--records", "/items")
    assert requested.code == 0, requested.err
    assert requested.json()["request_key"] == "fetch/items.json"

    run = pipectl("-o", "json", "run", "--until-idle", "--timeout", "60")
    assert run.code == 0, run.err
    assert run.json()["failed"] == 0

    fetched = pipectl("-o", "json", "results", "fetch/items.json")
    assert fetched.code == 0, fetched.err
    row = fetched.json()
    assert row["status"] == "PROCESSED" and row["kind"] == "fetch"
    # `pipectl results` shows the common fields; the fetch ones are in the row itself.
    item = client("dynamodb").get_item(TableName=names["table"],
                                       Key={"object_key": {
                                           "S": row_key(names["raw"], "fetch/items.json")}})["Item"]
    assert item["http_status"] == {"N": "200"} and item["url"] == {"S": f"{base}/items"}
    assert hits == ["/items"]
    incoming_key = row["output"].split("/", 3)[3]
    assert incoming_key.startswith("incoming/items-") and incoming_key.endswith("Z.json")

    processed = pipectl("-o", "json", "results", incoming_key)
    assert processed.code == 0, processed.err
    assert processed.json()["status"] == "PROCESSED"
    assert processed.json()["records_out"] == 2
    s3 = client("s3")
    output = processed.json()["output"].split("/", 3)[3]
    lines = s3.get_object(Bucket=names["processed"], Key=output)["Body"].read().splitlines()
    assert [{k: v for k, v in json.loads(line).items() if k != "_metadata"} for line in lines] \
        == [{"order_id": 1, "customer_name": "Ada"}, {"order_id": 2, "customer_name": "Grace"}]
    raw = {o["Key"] for o in s3.list_objects_v2(Bucket=names["raw"])["Contents"]}
    assert raw == {"completed/fetch/items.json", "completed/" + incoming_key[len("incoming/"):]}


def test_without_allow_private_a_loopback_api_is_refused(pipectl, api):
    base, hits = api
    assert pipectl("deploy", "--yes").code == 0
    assert pipectl("fetch", f"{base}/items").code == 0

    assert pipectl("run", "--until-idle", "--timeout", "60").code == 0

    row = pipectl("-o", "json", "results", "fetch/items.json").json()
    assert row["status"] == "FAILED" and "loopback address 127.0.0.1" in row["error"]
    assert hits == []
