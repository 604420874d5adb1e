"""The local runtime: serves the deployed queue -> function mappings as Lambda's SQS poller does.

Per mapping it runs as many pollers as the mapping's ScalingConfig.MaximumConcurrency
allows Lambda to invoke at once (capped by --concurrency when given: worker processes
cost memory), each with one warm worker process. A poller receives up to batch_size
messages, gathering them for up to the mapping's MaximumBatchingWindowInSeconds as
Lambda does, invokes the handler with a Lambda SQS event, deletes the messages that
succeeded and leaves the rest to come back after the queue's visibility timeout, so
retries and the move to the DLQ after maxReceiveCount happen in SQS exactly as they do
on AWS.

One departure from Lambda: when an invocation crashes or times out, Lambda returns the
whole batch, so a file that always kills its worker takes its neighbours to the DLQ with
it. Here each message of such a batch is then invoked once more on its own, within the
same receive: the neighbours finish (and are deleted), and only the messages that fail
alone go back to the queue. (On AWS the processor gets there by itself, a little later:
it counts the attempts that died holding its lease and stops attempting such a file.)

A change deployed is a change served, without a restart: the runtime re-reads the
deployed functions every few seconds (and at once when `pipectl dev` has just deployed),
and when a function's code digest or settings differ, each of its pollers replaces its
warm worker before its next receive. A batch in progress finishes on the worker that
started it, so no message is lost or handled by a half-loaded environment.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from pipectl.aws import sqs
from pipectl.aws.session import AWS_ERRORS, Aws, translate
from pipectl.errors import PipectlError
from pipectl.local.deployment import (
    DeployedFunction,
    Deployment,
    Mapping,
)
from pipectl.local.deployment import function as deployed_function
from pipectl.local.logs import LogShipper
from pipectl.local.schedule import next_fire
from pipectl.local.worker import (
    InvocationTimeout,
    Worker,
    WorkerCrashed,
    WorkerError,
    WorkerInitError,
)

# Short polls so --until-idle and Ctrl-C answer within seconds; Lambda uses 20 s.
POLL_WAIT_SECONDS = 2
# How often the deployed functions are read back for a new code digest or settings
# (one GetFunction per function).
WATCH_SECONDS = 2.0
# Pollers for a mapping without a ScalingConfig (Lambda would scale up to the account's
# concurrency; worker processes here are a laptop's memory), unless --concurrency says.
DEFAULT_POLLERS = 2


@dataclass
class RunReport:
    batches: int = 0
    messages: int = 0
    succeeded: int = 0
    failed: int = 0
    timeouts: int = 0
    crashes: int = 0
    isolated: int = 0  # messages invoked again one at a time after their batch crashed
    scheduled_runs: int = 0
    reloads: int = 0  # warm workers replaced because their function's deployment changed
    idle: bool = False
    errors: list[str] = field(default_factory=list)


def lambda_event(messages: list[dict], queue_arn: str, region: str) -> dict:
    """The event Lambda's SQS integration passes to a handler."""
    return {"Records": [{
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": m.get("Attributes", {}),
        "messageAttributes": {
            name: {"stringValue": a.get("StringValue"), "binaryValue": a.get("BinaryValue"),
                   "stringListValues": [], "binaryListValues": [], "dataType": a["DataType"]}
            for name, a in m.get("MessageAttributes", {}).items()},
        "md5OfBody": m.get("MD5OfBody"),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    } for m in messages]}


def failed_ids(response: object, batch_ids: set[str]) -> set[str]:
    """Lambda's reading of a partial batch response: anything malformed fails the whole batch."""
    if response is None:
        return set()
    if not isinstance(response, dict):
        return set(batch_ids)
    items = response.get("batchItemFailures")
    if items is None:
        return set()
    if not isinstance(items, list):
        return set(batch_ids)
    ids = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in batch_ids:
            return set(batch_ids)
        ids.add(identifier)
    return ids


def pollers(mapping: Mapping, limit: int | None) -> int:
    """Concurrent invocations for a mapping: its MaximumConcurrency, at most `limit`."""
    wanted = mapping.max_concurrency or DEFAULT_POLLERS
    return max(1, min(wanted, limit)) if limit is not None else wanted


def gather(client, mapping: Mapping, stop: threading.Event) -> list[dict]:
    """One batch, as Lambda's poller makes it: what one receive returns (at most 10), or,
    with a batching window, messages gathered until batch_size or the window ends."""
    messages = sqs.receive(client, mapping.queue_url, max_messages=min(mapping.batch_size, 10),
                           wait_seconds=POLL_WAIT_SECONDS)
    if not messages or mapping.batching_window <= 0:
        return messages
    # The window starts with the first message (Lambda: "the maximum amount of time to
    # gather records before invoking the function").
    ends = time.monotonic() + mapping.batching_window
    batch = {m["MessageId"]: m for m in messages}
    while len(batch) < mapping.batch_size and not stop.is_set():
        left = ends - time.monotonic()
        if left <= 0:
            break
        more = sqs.receive(client, mapping.queue_url,
                           max_messages=min(mapping.batch_size - len(batch), 10),
                           wait_seconds=min(POLL_WAIT_SECONDS, math.ceil(left)))
        # A message received again meanwhile (its visibility ran out) is one record, and
        # only its latest receipt handle deletes it (SQS DeleteMessage).
        batch.update((m["MessageId"], m) for m in more)
    return list(batch.values())


class LocalRuntime:
    def __init__(self, aws: Aws, deployment: Deployment, handlers_dir: Path, *,
                 concurrency: int | None = None, echo: Callable[[str, str], None] | None = None,
                 notice: Callable[[str], None] = lambda message: None,
                 rediscover: Callable[[], Deployment] | None = None,
                 inform: Callable[[str], None] = lambda message: None):
        """rediscover: reads the deployment again; without it what is served never changes.
        inform: hears which functions' workers were replaced, and why."""
        self.aws = aws
        self.mappings = deployment.mappings
        self.schedules = deployment.schedules
        self._rediscover = rediscover
        self._inform = inform
        self._refresh_lock = threading.Lock()
        self.handlers_dir = handlers_dir
        self.concurrency = concurrency
        self._notice = notice
        self.report = RunReport()
        self._stop = threading.Event()
        self._busy = 0
        self._lock = threading.Lock()
        self._logs = LogShipper(aws.client("logs"), echo)
        self._worker_env = aws.worker_environment()

    def stop(self) -> None:
        self._stop.set()

    def run(self, *, until_idle: bool = False, timeout: float | None = None) -> RunReport:
        """Serve until stop(), or until the queues are drained with --until-idle."""
        deadline = None if timeout is None else time.monotonic() + timeout
        self._logs.start()
        threads = [threading.Thread(target=self._poll, args=(m, i, until_idle),
                                    name=f"poller-{m.function.name}-{i}", daemon=True)
                   for m in self.mappings for i in range(pollers(m, self.concurrency))]
        threads += [threading.Thread(target=self._fire, args=(s.rule,),
                                     name=f"schedule-{s.rule}", daemon=True)
                    for s in self.schedules]
        if self._rediscover is not None:
            threads.append(threading.Thread(target=self._watch, name="deployment-watch",
                                            daemon=True))
        for t in threads:
            t.start()
        try:
            # Pollers end only once _stop is set (by stop(), or by --until-idle).
            while not self._stop.wait(0.2):
                if deadline is not None and time.monotonic() > deadline:
                    self.report.errors.append(f"not idle after {timeout:g} s")
                    break
        finally:
            self._stop.set()
            for t in threads:
                t.join()
            self._logs.stop()
        return self.report

    def refresh(self) -> list[str]:
        """Read the deployment again; the names of the functions whose code or settings
        changed. Their pollers replace their warm workers before the next receive."""
        if self._rediscover is None:
            return []
        with self._refresh_lock:
            fresh = self._rediscover()
            mappings = {_key(m): m for m in fresh.mappings}
            schedules = {s.rule: s for s in fresh.schedules}
            changed = sorted(
                {m.function.name for m in self.mappings
                 if _key(m) in mappings and mappings[_key(m)].function != m.function}
                | {s.function.name for s in self.schedules
                   if s.rule in schedules and schedules[s.rule].function != s.function})
            with self._lock:
                # Only what is already served changes: a mapping or rule added since is
                # served after a restart.
                self.mappings = [mappings.get(_key(m), m) for m in self.mappings]
                self.schedules = [schedules.get(s.rule, s) for s in self.schedules]
        for name in changed:
            self._inform(f"{name}: deployed code or settings changed; its warm workers are "
                         "replaced between batches")
        return changed

    def _watch(self) -> None:
        """Notice a deploy from anywhere (another shell's `pipectl deploy`) by the
        functions' deployed code digest and settings."""
        last_problem = ""
        while not self._stop.wait(WATCH_SECONDS):
            served = {m.function.name: m.function for m in self.mappings}
            served.update({s.function.name: s.function for s in self.schedules})
            try:
                if any(deployed_function(self.aws, name) != deployed
                       for name, deployed in served.items()):
                    self.refresh()
                last_problem = ""
            except (PipectlError, *AWS_ERRORS) as exc:
                # Mid-deploy a function may be briefly unreadable: look again next time,
                # saying so once rather than every few seconds.
                problem = f"could not read the deployment, serving it as it was: {exc}"
                if problem != last_problem:
                    self._notice(problem)
                last_problem = problem

    def _current(self, key: tuple[str, str]) -> Mapping:
        with self._lock:
            return next(m for m in self.mappings if _key(m) == key)

    def _poll(self, mapping: Mapping, index: int, until_idle: bool) -> None:
        client = self.aws.client("sqs")
        key = _key(mapping)
        worker = self._worker(mapping.function)
        backoff = 0.0
        try:
            while not self._stop.is_set():
                try:
                    messages = gather(client, mapping, self._stop)
                    # Looked at after the long poll, so a message that came while it
                    # waited goes to the code deployed by then.
                    current = self._current(key)
                    if current.function != mapping.function:
                        worker.stop()  # between batches: nothing is in flight on it
                        worker = self._worker(current.function)
                        with self._lock:
                            self.report.reloads += 1
                    mapping = current
                    if messages:
                        self._serve(client, mapping, worker, messages)
                    elif until_idle and self._drained(client):
                        self.report.idle = True
                        self._stop.set()
                    backoff = 0.0
                except AWS_ERRORS as exc:
                    # Like Lambda's poller: keep polling, back off while the service errs.
                    backoff = min(max(backoff * 2, 0.5), 30.0)
                    self._notice(f"polling {mapping.queue_url} failed, retrying: "
                                 f"{translate(exc, self.aws)}")
                    self._stop.wait(backoff)
        finally:
            worker.stop()

    def _worker(self, function: DeployedFunction) -> Worker:
        group = f"/aws/lambda/{function.name}"
        worker = Worker(self.handlers_dir, function.handler,
                        env={**self._worker_env, **function.environment},
                        function_name=function.name, timeout=function.timeout,
                        memory_mb=function.memory,
                        on_log=lambda line: self._logs.ship(function.name, group,
                                                            worker.log_stream, line))
        return worker

    def _fire(self, rule: str) -> None:
        """Invoke the rule's function whenever its schedule comes round, as EventBridge does."""
        schedule = next(s for s in self.schedules if s.rule == rule)
        worker = self._worker(schedule.function)
        try:
            while True:
                now = datetime.now(timezone.utc)
                due = next_fire(schedule.expression, now)
                if due is None or self._stop.wait((due - now).total_seconds()):
                    return
                with self._lock:
                    current = next(s for s in self.schedules if s.rule == rule)
                if current.function != schedule.function:
                    worker.stop()
                    worker = self._worker(current.function)
                schedule = current
                event = {"version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event",
                         "source": "aws.events", "account": self.aws.account,
                         "time": due.strftime("%Y-%m-%dT%H:%M:%SZ"), "region": self.aws.region,
                         "resources": [schedule.rule_arn], "detail": {}}
                try:
                    worker.invoke(event)
                except WorkerError as exc:
                    self._notice(f"{schedule.function.name} failed on schedule: {exc}")
                with self._lock:
                    self.report.scheduled_runs += 1
        finally:
            worker.stop()

    def _serve(self, client, mapping: Mapping, worker: Worker, messages: list[dict]) -> None:
        with self._lock:
            self._busy += 1
        try:
            batch = {m["MessageId"]: m["ReceiptHandle"] for m in messages}
            failed, died = self._invoke(mapping, worker, messages, set(batch))
            if died and len(messages) > 1:
                failed = self._isolate(mapping, worker, messages)
            undeleted = sqs.delete_batch(client, mapping.queue_url,
                                         {i: h for i, h in batch.items() if i not in failed})
            with self._lock:
                self.report.batches += 1
                self.report.messages += len(batch)
                self.report.failed += len(failed)
                self.report.succeeded += len(batch) - len(failed) - len(undeleted)
        finally:
            with self._lock:
                self._busy -= 1

    def _invoke(self, mapping: Mapping, worker: Worker, messages: list[dict],
                batch_ids: set[str]) -> tuple[set[str], bool]:
        """The ids that failed, and whether the environment died (a crash or a timeout)."""
        event = lambda_event(messages, mapping.queue_arn, self.aws.region)
        # On any invocation error Lambda returns the whole batch to the queue.
        try:
            return failed_ids(worker.invoke(event, request_id=str(uuid.uuid4())),
                              batch_ids), False
        except InvocationTimeout:
            with self._lock:
                self.report.timeouts += 1
            return set(batch_ids), True
        except WorkerCrashed:
            with self._lock:
                self.report.crashes += 1
            return set(batch_ids), True
        except WorkerInitError as exc:
            self._note(f"{mapping.function.name} cannot start: {exc}")
        except WorkerError:
            pass  # the handler raised: Lambda logs it and returns the batch to the queue
        return set(batch_ids), False

    def _isolate(self, mapping: Mapping, worker: Worker, messages: list[dict]) -> set[str]:
        """Each message of a batch that crashed or timed out, invoked alone: the ids that
        still fail. A message that finished before the crash is a duplicate delivery now,
        which the handler settles at once; the one that killed the batch fails alone.

        They are still within the receive's visibility timeout (6 x the function timeout
        as deployed): the batch's attempt and one more timeout leave room for a few more.
        """
        failed: set[str] = set()
        with self._lock:
            self.report.isolated += len(messages)
        for message in messages:
            if self._stop.is_set():  # stopping: the rest return to the queue untouched
                failed.add(message["MessageId"])
                continue
            alone, _ = self._invoke(mapping, worker, [message], {message["MessageId"]})
            failed |= alone
        return failed

    def _note(self, message: str) -> None:
        with self._lock:
            if message not in self.report.errors:
                self.report.errors.append(message)

    def _drained(self, client) -> bool:
        with self._lock:
            if self._busy:
                return False
        return all(sqs.depth(client, m.queue_url).total == 0 for m in self.mappings)


def _key(mapping: Mapping) -> tuple[str, str]:
    """A mapping's identity across re-reads: its function and its queue."""
    return mapping.function.name, mapping.queue_arn
