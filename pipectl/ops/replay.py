"""Dead-letter replay: move messages from the DLQ back to the queue they came from.

Rule 1 holds here: a dead letter is deleted from the DLQ only after SQS confirmed, entry
by entry, that its copy was sent. Everything else (skipped, failed, left over) is made
visible again in the DLQ before returning, also when interrupted.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable

from pipectl.aws import dynamodb
from pipectl.aws import sqs as sqs_api
from pipectl.aws.session import Aws
from pipectl.errors import NotFound, PipectlError, UsageError
from pipectl.naming import Names
from pipectl.ops import results as results_ops
from pipectl.ops.dead_letters import (
    REPLAYS_ATTRIBUTE,
    DeadLetter,
    Progress,
    ReplayOptions,
    ReplayReport,
    Route,
    read_letter,
    replay_count,
    with_action,
)
from pipectl.ops.replay_native import move_native
from pipectl.ops.results import ResultRow

# A moved message only has to stay hidden for one receive -> send -> delete cycle.
MOVE_VISIBILITY = 60
# A dry run hides everything it has seen until the scan ends, then releases it all;
# at moto's pace a 1,000-deep DLQ takes about 100 s to scan, so leave room.
SCAN_VISIBILITY = 300
# Long polling asks every SQS server, so an empty answer really means "empty"
# (short polling samples a subset and may answer empty while messages remain).
WAIT_SECONDS = 1
# The queues that have a dead-letter queue (`replay-dlq --queue`). Both are fed by the raw
# bucket's S3 event notifications (incoming/ -> processing, fetch/ -> fetch), so their dead
# letters have the same shape and key the same results table: the row of a request file
# under fetch/ is the fetcher's, PROCESSED once its response was written to incoming/.
QUEUES = ("processing", "fetch")
# replay-dlq's --max-replays when not given (batched): a poison message is sent round this
# often, then left in the DLQ (dead_letters.REPLAYS_ATTRIBUTE counts the rounds).
DEFAULT_MAX_REPLAYS = 3

# (bucket, key, ETag, VersionId) -> PROCESSED for this version?
IsDone = Callable[[str | None, str, str | None, str | None], bool]


def queue_pair(names: Names, queue: str = "processing") -> tuple[str, str]:
    """(dead-letter queue, the queue it serves) for a name in QUEUES."""
    if queue == "fetch":
        return names.fetch_dlq, names.fetch_queue
    if queue == "processing":
        return names.dlq, names.queue
    raise UsageError(f"unknown queue {queue!r} (expected one of: {', '.join(QUEUES)})")


def locate(sqs, dlq: str, source: str, to: str | None = None) -> Route:
    """Find the DLQ and its target: `to` (a name or URL), else `source` after checking
    that its RedrivePolicy really sends dead letters to this DLQ."""
    dlq_url = sqs_api.require_queue_url(sqs, dlq)
    dlq_attrs = sqs_api.attributes(sqs, dlq_url)
    if to is not None:
        target_url = to if to.startswith(("http://", "https://")) else \
            sqs_api.require_queue_url(sqs, to)
        found = sqs_api.attributes_if_exists(sqs, target_url)
        if found is None:
            raise NotFound(f"queue '{to}' does not exist")
        target_attrs = found
    else:
        target_url = sqs_api.require_queue_url(sqs, source)
        target_attrs = sqs_api.attributes(sqs, target_url)
        points_at = sqs_api.dead_letter_target(target_attrs)
        if points_at != dlq_attrs["QueueArn"]:
            where = f"points at {points_at}" if points_at else "has no RedrivePolicy"
            raise PipectlError(f"queue '{source}' {where}, not at dead-letter queue '{dlq}' "
                               "(redeploy with `pipectl deploy`, or choose a target with --to)")
    if target_attrs["QueueArn"] == dlq_attrs["QueueArn"]:
        raise PipectlError(f"--to: '{to}' is the dead-letter queue itself")
    return Route(dlq=dlq, dlq_url=dlq_url, dlq_arn=dlq_attrs["QueueArn"],
                 target=target_attrs["QueueArn"].rsplit(":", 1)[-1], target_url=target_url,
                 target_arn=target_attrs["QueueArn"],
                 waiting=int(dlq_attrs.get("ApproximateNumberOfMessages", 0)))


def replay(aws: Aws, names: Names, route: Route, options: ReplayOptions, *,
           on_progress: Progress | None = None,
           sleep: Callable[[float], None] = time.sleep) -> ReplayReport:
    """Replay (or with dry_run, preview) the DLQ along route; see move() and preview(), and
    replay_native.move_native() for --native."""
    sqs = aws.client("sqs")
    done = _done_check(aws.client("dynamodb"), names) if options.skip_done else None
    if options.dry_run:
        return preview(sqs, route, options, is_done=done,
                       last_error=_last_error(aws.client("dynamodb"), names))
    if options.native and not options.selective:
        report = move_native(sqs_api.probe_client(aws), sqs, route, on_progress=on_progress,
                             sleep=sleep)
        if report is not None:
            return report
        warning = ("this endpoint has no StartMessageMoveTask; moving the messages "
                   "in batches instead")
        report = move(sqs, route, options, on_progress=on_progress)
        report.warnings.insert(0, warning)
        return report
    return move(sqs, route, options, is_done=done, on_progress=on_progress)


def move(sqs, route: Route, options: ReplayOptions, *,
         is_done: IsDone | None = None,
         on_progress: Progress | None = None) -> ReplayReport:
    """Receive 10, send the kept ones in one SendMessageBatch, delete exactly those sent.

    Skipped messages stay hidden until the run ends, so one receive does not hand the
    same ones back over and over; then they are all released and stay in the DLQ.
    """
    report = ReplayReport(source=route.dlq, target=route.target, dry_run=False)
    held: dict[str, str] = {}  # message id -> latest receipt handle, released at the end
    seen: set[str] = set()
    try:
        for batch in _batches(sqs, route, options, seen, held, MOVE_VISIBILITY, report):
            keep: dict[str, dict] = {}
            for message, letter in batch:
                why = _skip_reason(letter, options, is_done)
                if why:
                    held[letter.message_id] = message["ReceiptHandle"]
                    report.messages.append(with_action(letter, "skipped", why))
                    report.skipped += 1
                else:
                    keep[letter.message_id] = message
            letters = {letter.message_id: letter for _, letter in batch}
            _send_and_delete(sqs, route, keep, letters, held, report)
            if on_progress:
                on_progress(report)
    finally:
        _release(sqs, route, held, report)
    return report


def preview(sqs, route: Route, options: ReplayOptions, *,
            is_done: IsDone | None = None,
            last_error: Callable[[str | None, str], str | None] | None = None) -> ReplayReport:
    """What move() would do, without consuming anything.

    Every message seen is hidden until the scan ends (so each is listed once) and then
    released. This bumps each message's ApproximateReceiveCount in the DLQ, which is
    harmless: the DLQ has no redrive policy of its own, so the count moves nothing.
    """
    report = ReplayReport(source=route.dlq, target=route.target, dry_run=True)
    held: dict[str, str] = {}
    try:
        for batch in _batches(sqs, route, options, set(), held, SCAN_VISIBILITY, report):
            for message, letter in batch:
                held[letter.message_id] = message["ReceiptHandle"]
                why = _skip_reason(letter, options, is_done)
                if last_error is not None and letter.key is not None:
                    letter = DeadLetter(**{**letter.__dict__,
                                           "last_error": last_error(letter.bucket,
                                                                    letter.key)})
                report.messages.append(with_action(letter,
                                                   "would skip" if why else "would move", why))
                report.skipped += 1 if why else 0
    finally:
        _release(sqs, route, held, report)
    return report


# --- the loop's parts ----------------------------------------------------------------------

def _batches(sqs, route: Route, options: ReplayOptions, seen: set[str], held: dict[str, str],
             visibility: int, report: ReplayReport):
    """Yield new (message, DeadLetter) pairs until the DLQ is empty, a receive brings only
    messages already seen in this run, or --max messages were selected."""
    selected = 0
    while options.max_messages is None or selected < options.max_messages:
        wanted = 10 if options.max_messages is None else min(10, options.max_messages - selected)
        received = sqs_api.receive_hidden(sqs, route.dlq_url, max_messages=wanted,
                                          visibility_timeout=visibility,
                                          wait_seconds=WAIT_SECONDS)
        fresh = []
        for message in received:
            if message["MessageId"] in seen:  # its visibility ran out: hold the new receipt
                held[message["MessageId"]] = message["ReceiptHandle"]
            else:
                seen.add(message["MessageId"])
                fresh.append((message, read_letter(message)))
        if not fresh:
            return
        skipped = report.skipped
        yield fresh  # the caller counts what it skips in report.skipped
        selected += len(fresh) - (report.skipped - skipped)


def _send_and_delete(sqs, route: Route, keep: dict[str, dict], letters: dict[str, DeadLetter],
                     held: dict[str, str], report: ReplayReport) -> None:
    if not keep:
        return
    fifo = route.target.endswith(".fifo")
    sent = sqs_api.send_batch(sqs, route.target_url, {
        mid: _entry(message, fifo) for mid, message in keep.items()})
    for mid, reason in sent.failed.items():  # not sent: stays in the DLQ
        held[mid] = keep[mid]["ReceiptHandle"]
        report.messages.append(with_action(letters[mid], "failed", f"not sent: {reason}"))
        report.failed += 1
    undeleted = set(sqs_api.delete_batch(
        sqs, route.dlq_url, {mid: keep[mid]["ReceiptHandle"] for mid in sent.succeeded}))
    for mid in sent.succeeded:
        if mid in undeleted:  # sent, but still in the DLQ: a later replay sends it again
            report.messages.append(with_action(
                letters[mid], "failed", "sent, but not deleted from the dead-letter queue"))
            report.failed += 1
        else:
            report.messages.append(with_action(letters[mid], "moved"))
            report.moved += 1


def _release(sqs, route: Route, held: dict[str, str], report: ReplayReport) -> None:
    if held:
        stuck = sqs_api.release_batch(sqs, route.dlq_url, held)
        if stuck:
            report.warnings.append(f"{len(stuck)} message(s) could not be released and stay "
                                   "hidden in the dead-letter queue until their visibility "
                                   "timeout ends")


def _entry(message: dict, fifo: bool) -> dict:
    """A SendMessageBatch entry carrying the body and message attributes unchanged."""
    entry: dict = {"MessageBody": message["Body"]}
    attributes = {
        name: {k: v for k, v in value.items()
               if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in message.get("MessageAttributes", {}).items()
        if name != REPLAYS_ATTRIBUTE}
    if attributes:
        entry["MessageAttributes"] = attributes
    replays = replay_count(message) + 1
    entry.setdefault("MessageAttributes", {})[REPLAYS_ATTRIBUTE] = {
        "DataType": "Number", "StringValue": str(replays)}
    if fifo:  # a FIFO target needs a group; the DLQ message id makes resends idempotent
        entry["MessageGroupId"] = message.get("Attributes", {}).get("MessageGroupId", "replay")
        entry["MessageDeduplicationId"] = message["MessageId"]
    return entry


def _skip_reason(letter: DeadLetter, options: ReplayOptions,
                 is_done: IsDone | None) -> str | None:
    if options.key_filter is not None and (
            letter.key is None or not fnmatch.fnmatchcase(letter.key, options.key_filter)):
        return "does not match --filter"
    if is_done is not None and letter.key is not None and is_done(
            letter.bucket, letter.key, letter.etag, letter.version_id):
        return "already PROCESSED"
    if options.max_replays is not None and letter.replays >= options.max_replays:
        return f"replayed {letter.replays} time(s) already (--max-replays {options.max_replays})"
    return None


def _last_error(ddb, names: Names) -> Callable[[str | None, str], str | None] | None:
    """The row's error (FAILED) or last_error (retrying) per key, cached; None without a
    results table (the dry run still lists the messages)."""
    if dynamodb.describe_table(ddb, names.results_table) is None:
        return None
    cache: dict[str, str | None] = {}

    def last_error(bucket: str | None, key: str) -> str | None:
        row_id = results_ops.row_id(names, key, bucket)
        if row_id not in cache:
            row = results_ops.find_result(ddb, names, row_id)
            cache[row_id] = (row.error or row.last_error) if row else None
        return cache[row_id]

    return last_error


def _done_check(ddb, names: Names) -> IsDone:
    if dynamodb.describe_table(ddb, names.results_table) is None:
        raise NotFound(f"results table '{names.results_table}' does not exist "
                       "(--skip-done reads it; run `pipectl deploy`)")
    cache: dict[str, ResultRow | None] = {}

    def is_done(bucket: str | None, key: str, etag: str | None, version: str | None) -> bool:
        """PROCESSED, and for this version: a dead letter for a newer upload of a processed
        key (another VersionId, or another ETag) still needs processing."""
        row_id = results_ops.row_id(names, key, bucket)
        if row_id not in cache:
            cache[row_id] = results_ops.find_result(ddb, names, row_id)
        row = cache[row_id]
        if row is None or row.status != "PROCESSED":
            return False
        if version is not None:
            return row.details.get("version_id") == version
        return etag is None or row.etag is None or row.etag.strip('"') == etag.strip('"')

    return is_done
