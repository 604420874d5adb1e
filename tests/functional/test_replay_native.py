"""replay-dlq --native: StartMessageMoveTask where the endpoint has it (botocore's Stubber, in
the shapes SQS documents), the batched fallback where it does not (moto)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl.aws.sqs import CLOCK_SKEW_MS as CLOCK_SKEW
from pipectl.ops import replay as replay_ops
from pipectl.ops.dead_letters import Route
from pipectl.ops.replay_native import move_native
from tests.functional.replay_runs import run


def test_native_falls_back_to_batches_where_the_endpoint_lacks_it(aws, names, queues):
    queues.dead_letters("incoming/a.csv")
    report = run(aws, names, native=True)
    assert report.method == "batched" and report.moved == 1
    assert "StartMessageMoveTask" in report.warnings[0]


# ListMessageMoveTasks as the SQS API reference documents its result entries
# (docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/
# API_ListMessageMoveTasksResultEntry.html): TaskHandle "is only populated for tasks that
# are in RUNNING status"; FailureReason only when FAILED; StartedTimestamp is
# milliseconds since the epoch. botocore's Stubber also checks each against SQS's model.
STARTED_MS = 1_767_000_000_000


def move_entry(route, status: str, moved: int, *, to_move: int = 7, started=STARTED_MS,
               handle: str = "task-1", **extra) -> dict:
    entry = {"SourceArn": route.dlq_arn, "DestinationArn": route.target_arn,
             "Status": status, "StartedTimestamp": started,
             "ApproximateNumberOfMessagesMoved": moved,
             "ApproximateNumberOfMessagesToMove": to_move, **extra}
    if status == "RUNNING":
        entry["TaskHandle"] = handle
    return entry


def stubbed_move(sqs, route, *listings):
    from botocore.stub import Stubber

    stub = Stubber(sqs)
    stub.add_response("start_message_move_task", {"TaskHandle": "task-1"},
                      {"SourceArn": route.dlq_arn, "DestinationArn": route.target_arn})
    for results in listings:
        stub.add_response("list_message_move_tasks", {"Results": results},
                          {"SourceArn": route.dlq_arn, "MaxResults": 10})
    return stub


class Clock:
    """Time that passes only when the code under test sleeps."""

    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def route(aws, names, queues):
    return replay_ops.locate(aws.client("sqs"), names.dlq, names.queue)


def test_native_follows_its_task_after_the_handle_disappears(aws, route):
    # given a task seen RUNNING (with its handle), then COMPLETED (no handle, as on AWS),
    # with an older finished task to the same queue listed after it
    sqs = aws.client("sqs")
    older = move_entry(route, "COMPLETED", 40, to_move=40, started=STARTED_MS - 86_400_000)
    stub = stubbed_move(sqs, route, [move_entry(route, "RUNNING", 3), older],
                        [move_entry(route, "COMPLETED", 7), older])
    clock = Clock(STARTED_MS / 1000)

    # when moving natively
    with stub:
        report = move_native(sqs, sqs, route, sleep=clock.sleep, clock=clock)

    # then it stops at COMPLETED with this task's count, not the older one's
    stub.assert_no_pending_responses()
    assert (report.method, report.moved, report.failed, report.warnings) == (
        "native", 7, 0, [])


def test_native_finds_a_task_that_finished_before_the_first_look(aws, route):
    # given a small DLQ whose task is COMPLETED (no handle) by the first ListMessageMoveTasks
    sqs = aws.client("sqs")
    stub = stubbed_move(sqs, route, [move_entry(route, "COMPLETED", 2, to_move=2,
                                                started=STARTED_MS + 150)])
    clock = Clock(STARTED_MS / 1000)

    with stub:
        report = move_native(sqs, sqs, route, sleep=clock.sleep, clock=clock)

    # then it is matched by destination and start time, at once
    assert (report.moved, report.failed) == (2, 0)
    assert clock.now == STARTED_MS / 1000


def test_native_wait_is_bounded_and_says_the_task_goes_on(aws, route):
    # given a task that stays RUNNING
    sqs = aws.client("sqs")
    running = [move_entry(route, "RUNNING", 5, to_move=900)]
    stub = stubbed_move(sqs, route, *[running] * 4)
    clock = Clock(STARTED_MS / 1000)

    # when watching it for 6 s at most, polling every 2 s
    with stub:
        report = move_native(sqs, sqs, route, sleep=clock.sleep, clock=clock, wait_seconds=6)

    # then it returns with the counts so far and says SQS goes on
    stub.assert_no_pending_responses()
    assert report.moved == 5 and report.failed == 0
    assert report.warnings == ["the move task is still running after 6 s: 5 of 900 moved "
                               "so far; SQS goes on moving the rest"]


def test_native_failed_task_reports_what_was_not_moved_and_why(aws, route):
    sqs = aws.client("sqs")
    stub = stubbed_move(sqs, route, [move_entry(
        route, "FAILED", 4, to_move=10, FailureReason="AWS.SimpleQueueService.KmsAccessDenied")])
    clock = Clock(STARTED_MS / 1000)

    with stub:
        report = move_native(sqs, sqs, route, sleep=clock.sleep, clock=clock)

    assert (report.moved, report.failed) == (4, 6)
    assert report.warnings == ["move task failed: AWS.SimpleQueueService.KmsAccessDenied"]


@settings(max_examples=25, deadline=None)
@given(moved=st.lists(st.integers(0, 10_000), min_size=1, max_size=6),
       skew_ms=st.integers(-CLOCK_SKEW, CLOCK_SKEW))
def test_native_ends_on_any_documented_completion(moved, skew_ms):
    # given any run of RUNNING listings and then COMPLETED, on an SQS clock off by skew_ms
    # (the tracker alone: Stubber-free, against entries shaped as above)
    from pipectl.aws.sqs import MoveTaskTracker

    route = Route("dlq", "u", "arn:aws:sqs:us-east-1:1:dlq", "q", "u2",
                  "arn:aws:sqs:us-east-1:1:q", 0)
    counts = sorted(moved)
    # an earlier run's finished task, listed after ours (newest first)
    older = move_entry(route, "COMPLETED", 99_999, started=STARTED_MS - CLOCK_SKEW - 1)
    listings = [[move_entry(route, "RUNNING", n, started=STARTED_MS + skew_ms), older]
                for n in counts[:-1]]
    listings.append([move_entry(route, "COMPLETED", counts[-1], started=STARTED_MS + skew_ms),
                     older])
    pages = iter(listings)

    class Sqs:
        def list_message_move_tasks(self, **_):
            return {"Results": next(pages)}

    tracker = MoveTaskTracker(route.dlq_arn, route.target_arn, "task-1", STARTED_MS)
    found = [tracker.find(Sqs()) for _ in listings]

    # then every listing is recognised as our task, ending COMPLETED with its last count
    assert all(f is not None for f in found)
    assert found[-1]["Status"] == "COMPLETED"
    assert found[-1]["ApproximateNumberOfMessagesMoved"] == counts[-1]
