"""pipectl replay-dlq through pipectl.cli.app.run: exit codes, messages, JSON."""

from __future__ import annotations

import json

import pytest
from moto import mock_aws
from rich.console import Console

from pipectl import output
from pipectl.aws import sqs as sqs_api
from tests.helpers import Queues

QUEUE, DLQ = "demo-dev-processing", "demo-dev-processing-dlq"
FETCH_QUEUE, FETCH_DLQ = "demo-dev-fetch", "demo-dev-fetch-dlq"


@pytest.fixture
def mocked(aws_pipeline, monkeypatch):
    # Wide enough that table cells are not wrapped in the assertions.
    monkeypatch.setattr(output, "stdout", Console(width=250, soft_wrap=True))
    with mock_aws():
        yield


@pytest.fixture
def queues(mocked):
    return Queues(QUEUE, DLQ)


@pytest.fixture
def fetch_queues(mocked):
    return Queues(FETCH_QUEUE, FETCH_DLQ)


def test_replay_with_yes_moves_everything_and_says_so(queues, pipectl):
    queues.dead_letters("incoming/a.csv", "incoming/b.csv")

    code, out, err = pipectl("replay-dlq", "--yes")

    assert code == 0, err
    assert f"moved 2, skipped 0, failed 0 from {DLQ} to {QUEUE}" in err
    assert out == ""
    assert (queues.count(queues.dlq), queues.count(queues.queue)) == (0, 2)


def test_json_has_stable_keys(queues, pipectl):
    queues.dead_letters("incoming/my file+(1).csv", None)

    code, out, err = pipectl("--output", "json", "replay-dlq", "--yes", "--filter", "*.csv")

    assert code == 0, err
    data = json.loads(out)
    assert list(data) == ["source", "target", "dry_run", "moved", "skipped", "failed",
                          "messages", "method", "warnings"]
    assert (data["method"], data["warnings"]) == ("batched", [])
    assert (data["source"], data["target"], data["dry_run"]) == (DLQ, QUEUE, False)
    assert (data["moved"], data["skipped"], data["failed"]) == (1, 1, 0)
    assert sorted((m["action"], m["key"]) for m in data["messages"]) == [
        ("moved", "incoming/my file+(1).csv"), ("skipped", None)]
    assert set(data["messages"][0]) == {"message_id", "key", "size", "etag", "sent_at",
                                        "first_received_at", "receive_count", "replays",
                                        "last_error", "action", "reason", "bucket",
                                        "version_id"}


def test_dry_run_shows_a_table_and_moves_nothing(queues, pipectl):
    queues.dead_letters("incoming/my file+(1).csv")
    queues.send("not json")

    code, out, err = pipectl("replay-dlq", "--dry-run")

    assert code == 0, err
    assert "incoming/my file+(1).csv" in out and "(no key)" in out
    assert "would move" in out
    assert "dry run: would move 2, skip 0" in err
    assert queues.count(queues.dlq) == 2


def test_a_dead_letter_replayed_max_replays_times_stays_and_says_why(queues, pipectl):
    replayed = {"pipectl-replays": {"DataType": "Number", "StringValue": "3"}}
    queues.dead_letters("incoming/poison.csv", attributes=replayed)
    queues.dead_letters("incoming/fresh.csv")

    dry = pipectl("replay-dlq", "--dry-run")
    code, out, err = pipectl("replay-dlq", "--yes")
    more = pipectl("replay-dlq", "--yes", "--max-replays", "4")

    assert dry[0] == 0, dry[2]
    header = next(line for line in dry[1].splitlines() if "receives" in line)
    assert "replays" in header and "last error" in header
    [poison] = [line for line in dry[1].splitlines() if "incoming/poison.csv" in line]
    assert "would skip (replayed 3 time(s) already (--max-replays 3))" in poison
    assert code == 0, err
    assert ("warning: 1 dead letter(s) were replayed often enough already and stay in the "
            "dead-letter queue") in err
    assert "moved 1, skipped 1, failed 0" in err
    assert more[0] == 0 and "moved 1, skipped 0, failed 0" in more[2]
    assert (queues.count(queues.dlq), queues.count(queues.queue)) == (0, 2)


def test_native_with_max_replays_is_a_usage_error(queues, pipectl):
    code, _, err = pipectl("replay-dlq", "--native", "--max-replays", "2", "--yes")
    assert code == 2
    assert err.strip() == ("error: --native moves the whole queue: it cannot be combined with "
                           "--filter, --skip-done, --max or --max-replays")


def test_without_yes_and_without_a_terminal_it_refuses(queues, pipectl):
    queues.dead_letters("incoming/a.csv")

    code, out, err = pipectl("replay-dlq")

    assert code == 2
    assert "refusing to change anything without confirmation: pass --yes" in err
    assert queues.count(queues.dlq) == 1


def test_native_with_a_filter_is_a_usage_error(queues, pipectl):
    code, _, err = pipectl("replay-dlq", "--native", "--filter", "*.csv", "--yes")

    assert code == 2
    assert "--native moves the whole queue" in err


def test_an_empty_dlq_says_so(queues, pipectl):
    code, out, err = pipectl("replay-dlq", "--yes")

    assert code == 0
    assert f"dead-letter queue {DLQ} is empty" in err


def test_an_undeployed_pipeline_names_the_missing_queue(mocked, pipectl):
    code, _, err = pipectl("replay-dlq", "--yes")

    assert code == 1
    assert f"queue '{DLQ}' does not exist" in err


def test_a_message_that_failed_to_send_exits_1(queues, pipectl, monkeypatch):
    # given SendMessageBatch answering one entry Failed (it still answers HTTP 200)
    queues.dead_letters("incoming/a.csv", "incoming/b.csv")
    real = sqs_api.send_batch

    def first_fails(sqs, url, entries):
        first, *rest = entries
        outcome = real(sqs, url, {k: entries[k] for k in rest})
        return sqs_api.BatchOutcome(outcome.succeeded, {first: "InternalError: try again"})

    monkeypatch.setattr(sqs_api, "send_batch", first_fails)

    # when replaying
    code, out, err = pipectl("replay-dlq", "--yes")

    # then one moved, one failed (listed, still in the DLQ) and the exit code is 1
    assert code == 1
    assert "moved 1, skipped 0, failed 1" in err
    assert f"error: 1 dead letter(s) were not moved; the ones not sent are still in {DLQ}" in err
    assert "InternalError" in out
    assert (queues.count(queues.dlq), queues.count(queues.queue)) == (1, 1)


def test_queue_fetch_moves_the_fetch_dead_letters_back_to_the_fetch_queue(queues, fetch_queues,
                                                                          pipectl):
    # given dead letters in both DLQs
    queues.dead_letters("incoming/a.csv")
    fetch_queues.dead_letters("fetch/orders.json", "fetch/users.yaml")

    # when replaying with --queue fetch
    code, out, err = pipectl("replay-dlq", "--queue", "fetch", "--yes")

    # then the fetch DLQ's letters went to the fetch queue; the processing ones stayed
    assert code == 0, err
    assert f"moved 2, skipped 0, failed 0 from {FETCH_DLQ} to {FETCH_QUEUE}" in err
    assert (fetch_queues.count(fetch_queues.dlq), fetch_queues.count(fetch_queues.queue)) == (0, 2)
    assert (queues.count(queues.dlq), queues.count(queues.queue)) == (1, 0)


def test_queue_fetch_dry_run_json_with_a_filter(fetch_queues, pipectl):
    fetch_queues.dead_letters("fetch/my orders.json", "fetch/users.yaml")

    code, out, err = pipectl("--output", "json", "replay-dlq", "--queue", "fetch", "--dry-run",
                             "--filter", "fetch/*.json")

    assert code == 0, err
    data = json.loads(out)
    assert (data["source"], data["target"], data["dry_run"]) == (FETCH_DLQ, FETCH_QUEUE, True)
    assert sorted((m["key"], m["action"]) for m in data["messages"]) == [
        ("fetch/my orders.json", "would move"), ("fetch/users.yaml", "would skip")]
    assert fetch_queues.count(fetch_queues.dlq) == 2


def test_queue_processing_is_the_default(queues, fetch_queues, pipectl):
    fetch_queues.dead_letters("fetch/orders.json")

    code, out, err = pipectl("replay-dlq", "--queue", "processing", "--yes")

    assert code == 0, err
    assert f"dead-letter queue {DLQ} is empty" in err
    assert fetch_queues.count(fetch_queues.dlq) == 1


def test_an_unknown_queue_is_one_line_and_exit_2(queues, pipectl):
    code, out, err = pipectl("replay-dlq", "--queue", "archive", "--yes")

    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: Invalid value for '--queue'")
    assert "'archive'" in lines[0] and "'processing'" in lines[0] and "'fetch'" in lines[0]


def test_queue_fetch_on_a_pipeline_without_the_fetch_queues_names_the_missing_dlq(queues,
                                                                                   pipectl):
    code, _, err = pipectl("replay-dlq", "--queue", "fetch", "--yes")

    assert code == 1
    assert f"queue '{FETCH_DLQ}' does not exist" in err


class Keyboard:
    """stdin on a terminal, typing the user's answers."""

    def __init__(self, *answers: str):
        self.answers = list(answers)

    def isatty(self) -> bool:
        return True

    def readline(self) -> str:
        return self.answers.pop(0) + "\n"


def test_the_question_names_what_max_will_move_and_no_cancels(queues, pipectl, monkeypatch):
    queues.dead_letters(*(f"incoming/{n}.csv" for n in range(5)))
    monkeypatch.setattr("sys.stdin", Keyboard("n"))

    code, out, err = pipectl("replay-dlq", "--max", "2")

    assert code == 1 and out == ""
    assert f"Move up to 2 of 5 dead letter(s) from {DLQ} to {QUEUE}" in err
    assert err.rstrip().endswith("cancelled")
    assert queues.count(queues.dlq) == 5
