"""The DynamoDB record sink (handlers/processing/sink.py) under moto."""

from __future__ import annotations

from decimal import Decimal

import boto3
import pytest
from common import results
from moto import mock_aws
from processing import sink

TABLE = "orders-records"


def make_table(key: str):
    ddb = boto3.resource("dynamodb")
    return ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}])


def scan(table) -> list[dict]:
    return table.scan(ConsistentRead=True)["Items"]


@pytest.fixture
def ddb():
    with mock_aws():
        yield boto3.client("dynamodb")


def test_records_become_items_keyed_by_the_field_and_a_rewrite_adds_none(ddb):
    table = make_table("order_id")
    records = [{"order_id": i, "price": 0.1 * i, "tags": ["a", {"deep": 1.5}], "note": "",
                "vip": i % 2 == 0, "big": 10 ** 40, "_metadata": {"source": "s3://r/k"}}
               for i in range(1, 61)]

    for _ in range(2):                      # the same file processed twice
        writer = sink.RecordSink(ddb, TABLE, "order_id")
        for n, record in enumerate(records, 1):
            writer.put(record, n)
        writer.flush()
        assert (writer.items_written, writer.calls) == (60, 3)      # 25 + 25 + 10

    items = {item["order_id"]: item for item in scan(table)}
    assert len(items) == 60
    item = items["3"]                       # the key is a string (the table's key is S)
    assert item["price"] == Decimal(str(0.1 * 3))                   # via str(), not binary
    assert item["tags"] == ["a", {"deep": Decimal("1.5")}]
    assert item["note"] == "" and item["vip"] is False
    assert item["big"] == str(10 ** 40)     # 41 digits: more than DynamoDB's 38, kept exact
    assert item["_metadata"] == {"source": "s3://r/k"}


def test_without_a_key_items_are_keyed_by_a_hash_of_the_record(ddb):
    table = make_table("record_id")
    writer = sink.RecordSink(ddb, TABLE)
    writer.put({"a": 1, "_metadata": {"processed_at": "t1"}})
    writer.put({"a": 1, "_metadata": {"processed_at": "t2"}})      # same record, later run
    writer.put({"a": 2})
    writer.flush()

    items = scan(table)
    assert len(items) == 2
    assert {i["record_id"] for i in items} == {sink.record_id({"a": 1}),
                                               sink.record_id({"a": 2})}
    assert sink.record_id({"b": 1, "a": 2}) == sink.record_id({"a": 2, "b": 1})


def test_unprocessed_items_are_retried_with_exponential_backoff(ddb, monkeypatch):
    table = make_table("order_id")
    real = ddb.batch_write_item
    calls = []

    def throttled(RequestItems):            # DynamoDB accepts part of each of the first calls
        requests = RequestItems[TABLE]
        calls.append(len(requests))
        if len(calls) <= 3:
            real(RequestItems={TABLE: requests[:5]})
            return {"UnprocessedItems": {TABLE: requests[5:]}}
        return real(RequestItems=RequestItems)

    monkeypatch.setattr(ddb, "batch_write_item", throttled)
    monkeypatch.setattr(sink.random, "uniform", lambda low, high: high)   # no jitter
    sleeps = []
    writer = sink.RecordSink(ddb, TABLE, "order_id", sleep=sleeps.append)
    for i in range(25):
        writer.put({"order_id": f"o-{i}"})
    writer.flush()

    assert calls == [25, 20, 15, 10]
    assert sleeps == [0.1, 0.2, 0.4]
    assert len(scan(table)) == 25 and writer.items_written == 25


def test_items_still_unprocessed_after_every_attempt_are_a_transient_error(ddb, monkeypatch):
    make_table("order_id")
    monkeypatch.setattr(ddb, "batch_write_item",
                        lambda RequestItems: {"UnprocessedItems": RequestItems})
    writer = sink.RecordSink(ddb, TABLE, "order_id", sleep=lambda s: None, attempts=4)
    writer.put({"order_id": "1"})
    with pytest.raises(sink.SinkError, match="1 of 1 items were still unprocessed by "
                                             "orders-records after 4 attempts"):
        writer.flush()


def test_a_record_without_the_key_or_too_large_cannot_be_stored(ddb):
    writer = sink.RecordSink(ddb, TABLE, "order_id")
    with pytest.raises(sink.PermanentRecordError,
                       match="record 4 has no 'order_id', the sink table's key"):
        writer.put({"other": 1}, 4)
    with pytest.raises(sink.PermanentRecordError, match="a DynamoDB item holds at most"):
        writer.put({"order_id": 1, "blob": "x" * (401 * 1024)}, 5)


# --- through the processor: schema rejects, the threshold, the sink -------------------

ORDERS_SCHEMA = [{"match": "incoming/orders/*", "required": ["order_id", "email_address"],
                  "fields": {"order_id": {"type": "integer", "min": 1},
                             "email_address": {"type": "string", "pattern": "^[^@]+@[^@]+$"},
                             "country": {"type": "string", "allowed": ["UK", "US", "NL"]}},
                  "max_reject_ratio": 0.5}]
ORDERS = ("Order ID,Email Address,Country\n1,ada@example.com,UK\n0,grace@example.com,US\n"
          "3,nobody,DE\n4,alan@example.com,NL\n5,kate@example.com,\n")


@pytest.fixture
def orders_world(aws_world, monkeypatch):
    import json

    monkeypatch.setenv("RECORD_SCHEMAS", json.dumps(ORDERS_SCHEMA))
    monkeypatch.setenv("SINK_TABLE", TABLE)
    monkeypatch.setenv("SINK_KEY", "order_id")
    make_table("order_id")
    return aws_world


def process(world, key: str):
    import processor

    return processor.lambda_handler(world.event(world.message(key)), None)


def test_invalid_records_go_to_a_rejects_file_with_every_reason(orders_world):
    import json

    w = orders_world
    w.upload("incoming/orders/day1.csv", ORDERS)
    assert process(w, "incoming/orders/day1.csv") == {"batchItemFailures": []}

    row = w.row("incoming/orders/day1.csv")
    assert row["status"] == "PROCESSED"
    assert (row["records_in"], row["records_out"], row["records_rejected"]) == (5, 3, 2)
    (output,) = w.keys("processed-bucket", "processed/")
    assert [json.loads(x)["order_id"] for x in w.read("processed-bucket", output).splitlines()] \
        == ["1", "4", "5"]
    (rejects,) = w.keys("processed-bucket", "rejects/")
    assert row["rejects"] == f"s3://processed-bucket/{rejects}"
    assert rejects == "rejects/" + output.removeprefix("processed/")
    assert [json.loads(x) for x in w.read("processed-bucket", rejects).splitlines()] == [
        {"record": {"order_id": "0", "email_address": "grace@example.com", "country": "US"},
         "reasons": ['order_id: "0" is below the minimum 1']},
        {"record": {"order_id": "3", "email_address": "nobody", "country": "DE"},
         "reasons": ["email_address: \"nobody\" does not match '^[^@]+@[^@]+$'",
                     'country: "DE" is not one of UK, US, NL']}]
    # Only the accepted records reach the sink; files the schema does not match are untouched.
    assert sorted(i["order_id"] for i in scan(boto3.resource("dynamodb").Table(TABLE))) == [
        "1", "4", "5"]
    # The rejected records are added to the counters item's total, once however often the
    # message is delivered.
    assert process(w, "incoming/orders/day1.csv") == {"batchItemFailures": []}
    assert w.row(results.COUNTERS_KEY)["records_rejected"] == 2


def test_more_rejects_than_the_ratio_allows_fail_the_file(orders_world):
    w = orders_world
    w.upload("incoming/orders/bad.csv", "Order ID,Email Address\n0,x@y\n1,nobody\n2,a@b\n")
    assert process(w, "incoming/orders/bad.csv") == {"batchItemFailures": []}

    row = w.row("incoming/orders/bad.csv")
    assert row["status"] == "FAILED"
    assert row["error"].startswith("2 of 3 records (67%) failed the record schema; at most 50% "
                                   "may be rejected (max_reject_ratio); the rejects: s3://")
    assert row["records_rejected"] == 2
    assert w.keys("processed-bucket", "processed/") == []          # no output for a failed file
    assert len(w.keys("processed-bucket", "rejects/")) == 1        # but the reasons are kept
    assert w.keys("raw-bucket", "failed/") == ["failed/orders/bad.csv"]
    assert "records_rejected" not in w.row(results.COUNTERS_KEY)  # totals of processed files


def test_reprocessing_rewrites_the_same_sink_items(orders_world):
    w = orders_world
    table = boto3.resource("dynamodb").Table(TABLE)
    written = []
    # The same records again, as a new version of the file (a blank line more, so the
    # processor does not take it for a duplicate delivery of the processed version).
    for body in (ORDERS, ORDERS + "\n"):
        w.upload("incoming/orders/day1.csv", body)
        assert process(w, "incoming/orders/day1.csv") == {"batchItemFailures": []}
        assert w.row("incoming/orders/day1.csv")["sink_items"] == 3
        items = scan(table)
        assert len(items) == 3
        written.append({i["order_id"]: i["_metadata"]["processed_at"] for i in items})
    assert written[0].keys() == written[1].keys()
    assert all(written[0][k] != written[1][k] for k in written[0])     # rewritten, not kept
