"""The processor's requests per file: at most 7 on the happy path (issue 15), the same
guarantees (lease, one output, verified before the original moves, exact counters)."""

from __future__ import annotations

import gzip
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import count_calls

RAW, PROCESSED = "raw-bucket", "processed-bucket"   # as conftest.py
BUDGET = 7


@pytest.fixture
def calls():
    """Every request the processor's clients make, as service.Operation -> count."""
    import processor

    yield from count_calls(processor.reset_clients)


def process(world, key: str) -> None:
    import processor

    assert processor.lambda_handler(world.event(world.message(key)), None) == \
        {"batchItemFailures": []}


def test_a_new_file_costs_six_requests(aws_world, calls):
    aws_world.upload("incoming/orders.csv", "Order ID,Name\n1,Ada\n")
    calls.clear()

    process(aws_world, "incoming/orders.csv")

    # one conditional write claims (no read before it), one marks PROCESSED; the output
    # is verified by the SHA-256 PutObject answers, the copy by the ETag CopyObject answers
    assert calls == Counter({"s3.GetObject": 1, "dynamodb.TransactWriteItems": 2,
                             "s3.PutObject": 1, "s3.CopyObject": 1, "s3.DeleteObject": 1})
    assert sum(calls.values()) <= BUDGET
    row = aws_world.row("incoming/orders.csv")
    assert (row["status"], row["attempts"], row["records_out"]) == ("PROCESSED", 1, 1)
    assert row["output_etag"] == aws_world.s3.head_object(
        Bucket=PROCESSED, Key=row["output"].split("/", 3)[3])["ETag"]
    assert aws_world.row("__counters__")["PROCESSED"] == 1
    assert aws_world.keys(RAW) == ["completed/orders.csv"]


kinds = st.sampled_from([
    ("csv", lambda n: "id,name\n" + "".join(f"{i},n{i}\n" for i in range(n))),
    ("jsonl", lambda n: "".join(f'{{"id": {i}}}\n' for i in range(n))),
    ("json", lambda n: "[" + ",".join(f'{{"id": {i}}}' for i in range(n)) + "]"),
    ("txt", lambda n: "".join(f"line {i}\n" for i in range(n))),
])


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=kinds, records=st.integers(1, 50), gz=st.booleans(),
       name=st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
                    min_size=1, max_size=20).filter(lambda n: "/" not in n and n.strip(".")))
def test_every_kind_of_file_stays_within_the_budget(aws_world, calls, kind, records, gz, name):
    suffix, body = kind
    key = f"incoming/{name}.{suffix}" + (".gz" if gz else "")
    data = body(records).encode()
    aws_world.upload(key, gzip.compress(data) if gz else data)
    calls.clear()

    process(aws_world, key)

    assert sum(calls.values()) <= BUDGET, calls
    assert calls["dynamodb.GetItem"] == 0 and calls["s3.HeadObject"] == 0
    assert aws_world.row(key)["status"] == "PROCESSED"


def test_a_redelivery_of_a_processed_file_reads_the_row_from_the_failed_claim(aws_world,
                                                                             calls):
    aws_world.upload("incoming/orders.csv", "Order ID,Name\n1,Ada\n")
    message = aws_world.message("incoming/orders.csv")
    process(aws_world, "incoming/orders.csv")
    import processor

    calls.clear()
    assert processor.lambda_handler(aws_world.event(message), None) == \
        {"batchItemFailures": []}

    # the original is in completed/ now: the GetObject misses, and the row says done
    assert calls == Counter({"s3.GetObject": 1, "dynamodb.GetItem": 1})
    assert aws_world.row("__counters__")["PROCESSED"] == 1


def test_a_lost_first_claim_decides_from_the_row_it_found(aws_world, calls, monkeypatch):
    """An upload whose earlier attempt wrote the row PROCESSED and died before the move:
    the first claim fails, its condition returns the row, and the move is finished
    without a GetItem or a second output."""
    import processor

    aws_world.upload("incoming/orders.csv", "Order ID,Name\n1,Ada\n")

    def die_before_move(step, key):
        if step == "after_copy":
            raise KeyboardInterrupt("the worker died")

    monkeypatch.setattr(processor, "_fault", die_before_move)
    with pytest.raises(KeyboardInterrupt):
        processor.lambda_handler(aws_world.event(aws_world.message("incoming/orders.csv")),
                                 None)
    monkeypatch.setattr(processor, "_fault", lambda step, key: None)
    outputs = aws_world.keys(PROCESSED)
    calls.clear()

    process(aws_world, "incoming/orders.csv")

    assert calls["dynamodb.GetItem"] == 0 and calls["s3.PutObject"] == 0
    assert calls["dynamodb.TransactWriteItems"] == 1       # the failed first claim
    assert aws_world.keys(PROCESSED) == outputs
    assert aws_world.keys(RAW) == ["completed/orders.csv"]
    assert aws_world.row("__counters__")["PROCESSED"] == 1
