"""Archival now: run the archiver function here (in a local Lambda environment) or on Lambda.

Both paths run handlers/archiver.py with the same event, so `pipectl archive` and the
schedule share one code path: locally it runs in a pipectl.local.worker.Worker with the
function's deployed environment (the same variables, and only the target's credentials),
remotely it is a RequestResponse Invoke of the deployed function.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from pipectl.aws import awslambda
from pipectl.aws.session import AWS_ERRORS, Aws, translate
from pipectl.config import PipelineConfig
from pipectl.deploy.desired import function_environment
from pipectl.errors import AwsError, NotFound, PipectlError, UsageError
from pipectl.local.logs import LogShipper
from pipectl.local.worker import HandlerError, Worker, WorkerCrashed, WorkerError
from pipectl.naming import Names

HANDLER = "archiver.lambda_handler"
# A run stopped by the function's timeout returns what is left; run it again at most
# this many times (each invocation makes progress or the loop stops).
MAX_INVOCATIONS = 50
GIB = 1024 ** 3
# S3 storage list prices in USD per GB-month, us-east-1, first 50 TB tier, as published
# on aws.amazon.com/s3/pricing in 2024 (not re-checked since). Other regions differ.
# INTELLIGENT_TIERING is its frequent-access tier (plus a per-object monitoring fee).
PRICES_USD_PER_GB_MONTH = {
    "STANDARD": 0.023,
    "INTELLIGENT_TIERING": 0.023,
    "STANDARD_IA": 0.0125,
    "ONEZONE_IA": 0.01,
    "GLACIER_IR": 0.004,
    "GLACIER": 0.0036,
    "DEEP_ARCHIVE": 0.00099,
}
PRICE_NOTE = "us-east-1 list prices (2024); other regions differ"
# These classes bill every object as at least 128 KiB: small outputs can cost more there.
MIN_BILLABLE = {"STANDARD_IA": 128 * 1024, "ONEZONE_IA": 128 * 1024, "GLACIER_IR": 128 * 1024}
_AGE = re.compile(r"^(\d+)([dh])$")


def request(older_than: str | None, *, dry_run: bool, now: str | None = None) -> dict:
    """The archiver's event. older_than: Nd or Nh (default: the deployed retention)."""
    event: dict = {"dry_run": dry_run}
    if older_than is not None:
        match = _AGE.match(older_than.strip())
        if not match:
            raise UsageError(f"--older-than: expected a number of days or hours such as 30d "
                             f"or 12h, got {older_than!r}")
        number, unit = int(match.group(1)), match.group(2)
        event["older_than_days" if unit == "d" else "older_than_hours"] = number
    if now is not None:
        event["now"] = now
    return event


@dataclass
class Group:
    month: str
    source_prefix: str
    archive_prefix: str
    objects: int
    bytes: int
    standard_usd: float = 0.0
    target_usd: float = 0.0

    @property
    def difference_usd(self) -> float:
        return self.target_usd - self.standard_usd


@dataclass
class ArchiveRun:
    where: str  # "local" or the invoked function's name
    dry_run: bool
    now: str
    cutoff: str
    storage_class: str
    archive_bucket: str
    moved: int = 0
    bytes: int = 0
    skipped_glacier: int = 0
    errors: int = 0
    remaining: int = 0
    invocations: int = 0
    run_id: str | None = None  # None: a handler from before runs had ids
    groups: list[Group] = field(default_factory=list)
    objects: list[dict] = field(default_factory=list)
    cost: dict = field(default_factory=dict)

    @property
    def to_move(self) -> int:
        return sum(g.objects for g in self.groups)

    @property
    def bytes_to_move(self) -> int:
        return sum(g.bytes for g in self.groups)

    def as_data(self) -> dict:
        data = {k: getattr(self, k) for k in (
            "where", "dry_run", "now", "cutoff", "storage_class", "archive_bucket", "moved",
            "bytes", "skipped_glacier", "errors", "remaining", "invocations", "run_id")}
        data["groups"] = [dict(vars(g), difference_usd=round(g.difference_usd, 6))
                          for g in self.groups]
        data["cost"], data["objects"] = self.cost, self.objects
        return data


class Runner:
    """Invokes the archiver, here or on Lambda, until it has nothing left to do."""

    def __init__(self, aws: Aws, config: PipelineConfig, names: Names, *, remote: bool,
                 on_progress: Callable[[int, int], None] | None = None):
        self.aws, self.config, self.names, self.remote = aws, config, names, remote
        self.on_progress = on_progress
        self.function = names.function("archiver")

    def run(self, event: dict) -> ArchiveRun:
        summaries = [self._invoke(event)]
        # Later invocations keep the first one's clock, so the cutoff does not move, and
        # its run id, so the archiver adds their totals to the run's (for `pipectl status`).
        event = dict(event, now=summaries[0]["now"])
        if summaries[0].get("run_id"):  # a pipeline's older archiver.py returns none
            event["run_id"] = summaries[0]["run_id"]
        while (not event.get("dry_run") and summaries[-1].get("truncated")
               and summaries[-1]["moved"] and len(summaries) < MAX_INVOCATIONS):
            summaries.append(self._invoke(event))
        return combine(summaries, where=self.function if self.remote else "local")

    def _invoke(self, event: dict) -> dict:
        return self._invoke_remote(event) if self.remote else self._invoke_local(event)

    def _invoke_local(self, event: dict) -> dict:
        handlers = self.config.handlers_dir
        if not (handlers / "archiver.py").is_file():
            raise UsageError(f"{handlers}/archiver.py not found: a pipeline directory holds "
                             "pipeline.yaml and its handlers/ (run `pipectl init`)")
        group = self.names.log_group("archiver")
        shipper = LogShipper(self.aws.client("logs")).start()
        progress = _Progress(self.on_progress)

        def on_log(line: str) -> None:
            progress.line(line)
            shipper.ship(self.function, group, worker.log_stream, line)

        worker = Worker(handlers, HANDLER,
                        env={**self.aws.worker_environment(),
                             **function_environment(self.config, self.names, "archiver")},
                        function_name=self.function, timeout=self.config.archiver.timeout,
                        memory_mb=self.config.archiver.memory,
                        on_log=on_log)
        try:
            with worker:
                return cast(dict, worker.invoke(event))  # the archiver's summary
        except HandlerError as exc:
            raise PipectlError(f"the archiver failed: {exc.error_type}: {exc.message}") from None
        except WorkerCrashed as exc:
            raise PipectlError(f"the archiver stopped mid-run ({exc}); nothing is lost: run "
                               "`pipectl archive` again to finish") from None
        except WorkerError as exc:
            raise PipectlError(f"the archiver failed: {exc}") from None
        finally:
            shipper.stop()

    def _invoke_remote(self, event: dict) -> dict:
        client = awslambda.invoke_client(self.aws,
                                         read_timeout=self.config.archiver.timeout + 30)
        try:
            answer = awslambda.invoke_if_exists(client, self.function,
                                                json.dumps(event).encode())
        except AWS_ERRORS as exc:
            message = " ".join(str(translate(exc, self.aws)).split())
            raise AwsError(f"invoking {self.function} failed: {message[:300]}") from None
        if answer is None:
            raise NotFound(f"function '{self.function}' is not deployed on "
                           f"{self.aws.describe()} (run `pipectl deploy`)")
        payload, function_error = answer
        try:
            result = json.loads(payload or b"null")
        except ValueError:
            result = None
        if function_error or not isinstance(result, dict) or "moved" not in result:
            if isinstance(result, dict):
                detail = f"{result.get('errorType', 'error')}: {result.get('errorMessage', result)}"
            else:
                detail = f"no result (payload {payload[:100]!r})"
            if self.aws.effective_endpoint:
                # moto stores functions but runs them only with Docker: say so, in one line.
                detail += "; an emulator runs Lambda functions only with Docker: run " \
                          "`pipectl archive` without --remote to run the archiver here"
            raise PipectlError(f"invoking {self.function} failed: {' '.join(detail.split())}")
        return result


class _Progress:
    """Reads the handler's log lines: the total first, then one line per object copied (or
    failed); the originals' deletes that follow each batch are not counted again."""

    def __init__(self, callback: Callable[[int, int], None] | None):
        self.callback, self.total, self.done = callback, 0, 0

    def line(self, text: str) -> None:
        if self.callback is None or not text.startswith("{"):
            return
        try:
            record = json.loads(text)
        except ValueError:
            return
        if record.get("message") == "archiving":
            self.total = int(record.get("total") or 0)
        elif record.get("status") in ("COPIED", "ERROR"):
            self.done += 1
        else:
            return
        # A delete that fails after its copy logs a second ERROR: never past the total.
        self.callback(min(self.done, self.total), self.total)


def combine(summaries: list[dict], *, where: str) -> ArchiveRun:
    first, last = summaries[0], summaries[-1]
    run = ArchiveRun(where=where, dry_run=first["dry_run"], now=first["now"],
                     cutoff=first["cutoff"], storage_class=first["storage_class"],
                     archive_bucket=first["archive_bucket"], invocations=len(summaries),
                     run_id=first.get("run_id"))
    for s in summaries:
        run.moved += s["moved"]
        run.bytes += s["bytes"]
        run.errors += s["errors"]
    run.skipped_glacier, run.remaining = last["skipped_glacier"], last["remaining"]
    # The first invocation saw every candidate: its plan is the whole plan.
    run.groups = [Group(**{k: g[k] for k in ("month", "source_prefix", "archive_prefix",
                                             "objects", "bytes")}) for g in first["groups"]]
    objects: dict[str, dict] = {}
    for s in summaries:
        for o in s["objects"]:
            if o.get("status") != "deferred" or o["key"] not in objects:
                objects[o["key"]] = o
    run.objects = list(objects.values())
    complete = all(s.get("objects_listed", len(s["objects"])) == len(s["objects"])
                   for s in summaries)
    run.cost = price(run, complete)
    return run


def price(run: ArchiveRun, complete: bool) -> dict:
    """Monthly storage cost of what moves: in STANDARD now, in the target class after."""
    target = run.storage_class
    minimum = MIN_BILLABLE.get(target, 0)
    # A group is one month of one area (processed/, rejects/, thumbnails/).
    by_group: dict[str, int] = {}
    if complete:
        for o in run.objects:
            if o.get("action") == "move":
                group = o["source_prefix"]
                by_group[group] = by_group.get(group, 0) + max(o["size"], minimum)
    for g in run.groups:
        billable = by_group.get(g.source_prefix, g.bytes)
        g.standard_usd = g.bytes / GIB * PRICES_USD_PER_GB_MONTH["STANDARD"]
        g.target_usd = billable / GIB * PRICES_USD_PER_GB_MONTH.get(target, 0.0)
    standard = sum(g.standard_usd for g in run.groups)
    after = sum(g.target_usd for g in run.groups)
    return {"standard_usd_per_month": round(standard, 6),
            "target_usd_per_month": round(after, 6),
            "difference_usd_per_month": round(after - standard, 6),
            "minimum_billable_bytes": minimum, "prices": PRICE_NOTE}
