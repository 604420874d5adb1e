"""A file that kills its invocation every time (a crash, a timeout) harms no neighbour.

Lambda returns a crashed batch whole, so the same batch comes back each time. The
processor counts the attempts that died holding the lease on a file; after
POISON_ATTEMPTS such deaths it stops attempting that file in the delivery, reports only
its message as failed, and the rest of the batch is processed while there are still
receives left before the DLQ (maxReceiveCount 3).
"""

from __future__ import annotations

import time

import processor
import pytest
from common import results
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.functional.conftest import RAW


class Died(BaseException):
    """The invocation's end at a crash or a timeout: nothing after it runs, no lease is
    given back (a BaseException, so the processor's own error handling never sees it)."""


def kill_at(monkeypatch, poison: set[str], step: str = "after_output") -> None:
    real = processor._fault

    def fault(at: str, key: str) -> None:
        if at == step and key in poison:
            raise Died
        real(at, key)

    monkeypatch.setattr(processor, "_fault", fault)


def deliver(aws_world, messages: list[dict]) -> list[str] | None:
    """One invocation with the batch: the failed message ids, or None when it died."""
    try:
        response = processor.lambda_handler(aws_world.event(*messages), None)
    except Died:
        return None
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def lease_runs_out(aws_world, key: str) -> None:
    """The dead attempt's timeout passes (its lease ends with it)."""
    aws_world.table.update_item(Key={"object_key": results.row_key(RAW, key)},
                                UpdateExpression="SET in_progress_until = :past",
                                ExpressionAttributeValues={":past": int(time.time()) - 1})


@pytest.mark.parametrize("position", [0, 2, 4])
def test_the_poison_file_fails_alone_and_its_batch_is_processed(aws_world, monkeypatch,
                                                                  position):
    # given a batch of five with one file that kills every invocation that reaches it
    keys = [f"incoming/n{i}.csv" for i in range(4)]
    keys.insert(position, "incoming/poison/p.csv")
    for key in keys:
        aws_world.upload(key, "Id,Name\n1,a\n")
    messages = [aws_world.message(k) for k in keys]
    poison = messages[position]["messageId"]
    kill_at(monkeypatch, {"incoming/poison/p.csv"})

    # when the batch is delivered three times (maxReceiveCount), each after the timeout
    outcomes = []
    for delivery in range(3):
        if delivery:
            lease_runs_out(aws_world, "incoming/poison/p.csv")
        outcomes.append(deliver(aws_world, messages))

    # then it died twice; the third delivery left the poison file alone and did the rest
    assert outcomes == [None, None, [poison]]
    for key in keys:
        if key != "incoming/poison/p.csv":
            assert aws_world.row(key)["status"] == "PROCESSED", key
    row = aws_world.row("incoming/poison/p.csv")
    assert (row["status"], row["attempts"], row[results.CRASHES]) == ("PROCESSING", 3, 2)
    assert row["last_error"].startswith(
        "not attempted: 2 attempts on this file crashed or timed out")
    assert results.LEASE_UNTIL not in row
    assert aws_world.keys(RAW, "incoming/") == ["incoming/poison/p.csv"]

    # when the same message comes again (maxReceiveCount above 3): it stops at once again
    assert deliver(aws_world, [messages[position]]) == [poison]
    assert aws_world.row("incoming/poison/p.csv")["attempts"] == 4

    # when it is replayed (a new message) once the cause is fixed, it is attempted afresh
    monkeypatch.setattr(processor, "_fault", lambda at, key: None)
    assert deliver(aws_world, [aws_world.message("incoming/poison/p.csv")]) == []
    row = aws_world.row("incoming/poison/p.csv")
    assert row["status"] == "PROCESSED" and results.GIVEN_UP_BY not in row


def test_a_transient_failure_is_not_counted_as_a_death(aws_world, monkeypatch):
    # given a file whose attempts fail transiently (the lease is given back each time)
    key = "incoming/flaky.csv"
    aws_world.upload(key, "a\n1\n")
    message = aws_world.message(key)

    def flaky(at: str, k: str) -> None:
        if at == "after_output":
            raise ConnectionError("the service is away")

    monkeypatch.setattr(processor, "_fault", flaky)

    # when it is delivered four times
    outcomes = [deliver(aws_world, [message]) for _ in range(4)]

    # then every attempt was made: none died, none was skipped as poison
    assert outcomes == [[message["messageId"]]] * 4
    row = aws_world.row(key)
    assert row["attempts"] == 4 and int(row.get(results.CRASHES, 0)) == 0
    assert "ConnectionError: the service is away" in row["last_error"]


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(etag=st.text(min_size=1, max_size=8), stored=st.integers(0, 5),
       lease=st.one_of(st.none(), st.integers(-100, 100)),
       status=st.sampled_from(results.RESULT_STATUSES), same=st.booleans(),
       given_up_by=st.sampled_from([None, "m1", "m2"]))
def test_crashed_attempts_counts_only_deaths_on_this_version(etag, stored, lease, status, same,
                                                            given_up_by):
    now = 1_000_000
    row = {"etag": etag if same else etag + "x", "status": status, results.CRASHES: stored}
    if lease is not None:
        row[results.LEASE_UNTIL] = now + lease
    if given_up_by is not None:
        row[results.GIVEN_UP_BY] = given_up_by

    found = results.crashed_attempts(row, etag, "m1", now=now)

    if not same or (lease is not None and lease >= 0) or given_up_by == "m2":
        assert found == 0  # another version, a live attempt decides, or a new message
    else:
        assert found == stored + int(status == "PROCESSING" and lease is not None)
