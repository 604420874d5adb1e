"""Processor function: S3 notifications arrive through SQS; each object becomes JSON Lines.

lambda_handler only wires: one SQS message at a time, partial batch failures so a
bad message never fails its neighbours. process_object is one attempt on one object
(common/attempt.py owns the protocol; _process is the work): claim it (row ->
PROCESSING with a lease), stream parse/normalize/write,
verify, row -> PROCESSED, then move the original incoming/ -> completed/ (failed/
for a file that can never be processed). Every step is safe to repeat, because
delivery is at least once; the lease keeps two concurrent deliveries from both
doing the work.

Permanent (the file itself is bad: transform.PermanentError, a limit, an
unsupported name; or a bug or a request botocore refuses, see failures.py): FAILED
row with the reason, original to failed/, message done. Transient (throttling, 5xx,
timeouts, a missing bucket): only that message is reported in batchItemFailures, so
SQS retries it and, after maxReceiveCount, moves it to the dead-letter queue.
"""

from __future__ import annotations

import os
from datetime import datetime

from common import attempt, failures, faults, results, storage, telemetry
from common import contract as env
from common.attempt import (  # noqa: F401 (tests reach LEASE_MARGIN_SECONDS here)
    LEASE_MARGIN_SECONDS,
    Attempt,
    Outcome,
    Result,
)
from common.clients import (  # noqa: F401 (tests reset and reach them here)
    dynamodb_client,
    reset_clients,
    results_table,
    s3_client,
)
from common.invocation import (  # noqa: F401 (tests reach invocation_deadline here)
    Busy,
    batch_operations,
    each_created_object,
    invocation_deadline,
    is_batch_operations,
    loop_refusal,
    sqs_batch,
)
from common.s3_event import S3Object
from processing.outputs import REJECTS_PREFIX, THUMBNAILS_PREFIX, has_output, write_output
from processing.settings import Settings
from processing.transform import LIMIT_DEFAULTS, PermanentError, is_gzip, kind_for_key

LIMIT_VARIABLES = tuple(LIMIT_DEFAULTS)   # MAX_* environment variables, see limits.py
# A file whose attempts died this often (the worker crashed or timed out on it) is not
# attempted again in this delivery: its message fails alone and goes on to the DLQ, and
# the batch it arrived in is processed. Below maxReceiveCount (3 by default), so the
# neighbours still get a delivery in which the poison file no longer stops them.
POISON_ATTEMPTS = 2


# --- wiring ----------------------------------------------------------------------

def lambda_handler(event, context):
    settings = Settings.from_env()
    if is_batch_operations(event):     # `pipectl reprocess --engine s3-batch`
        return batch_operations(event, context, lambda message, deadline: handle_message(
            message, settings, context, deadline), lambda bucket, key: results.not_processed(
            results_table(settings.results_table), results.row_key(bucket, key)),
            version=settings.version, done_prefixes=(settings.completed, settings.failed),
            incoming=settings.incoming)
    return sqs_batch(event, context, lambda message, deadline: handle_message(
        message, settings, context, deadline))


def handle_message(message: dict, settings: Settings, context=None,
                   deadline: float | None = None) -> bool | Busy:
    """True when the message is done with (processed, skipped or permanently failed)."""
    return each_created_object(message, context, settings.incoming, _log, lambda obj, fields:
                               process_object(obj, settings, deadline=deadline, **fields),
                               bucket=settings.raw_bucket)


def process_object(obj: S3Object, settings: Settings, message_id: str | None = None,
                   request_id: str | None = None, deadline: float | None = None) -> bool | Busy:
    """Handle one object; False for a transient failure that SQS should retry, Busy (also
    false) while another attempt holds the object's lease."""
    handler = attempt.Handler(results_table=settings.results_table, log=_log,
                              done="processed",
                              row_fields={"processor_version": settings.version})
    # _fault is looked up here, at call time, so tests can replace it.
    return attempt.run(obj, handler, lambda a: _process(a, settings), message_id=message_id,
                       request_id=request_id, deadline=deadline, fault=_fault)


def _loop_refusal(s: Settings, bucket: str) -> str | None:
    writes = {"the original": s.completed, "a failed original": s.failed}
    if s.processed_bucket == bucket:        # outputs in the bucket whose uploads trigger us
        writes.update({"output": s.processed, "rejects": REJECTS_PREFIX,
                       "a thumbnail": THUMBNAILS_PREFIX})
    return loop_refusal(s.incoming, writes)


def _process(a: Attempt, s: Settings) -> Result:
    s3, table, obj = s3_client(), a.table, a.obj
    key, bucket, row_id = obj.key, obj.bucket, a.row_id
    relative = key[len(s.incoming):]
    completed_key, failed_key = s.completed + relative, s.failed + relative
    refused = _loop_refusal(s, bucket)
    if refused:
        # Nothing is written or moved: the original stays in incoming/, the row says why.
        return a.refuse(refused)
    rerun = obj.reprocess        # `pipectl reprocess` sent it (see Reprocessing in README)
    # A first delivery reads no row: its claim is one conditional write that finds any row
    # there is (_first_claim). A re-run needs the row first: it says where the original lies.
    row_read = rerun is not None
    row = results.get(table, row_id) if rerun else None
    if rerun and row is not None and results.rerun_done(row, rerun):
        _finish_rerun_move(s3, bucket, row, failed_key, completed_key)
        return Result(Outcome.DUPLICATE, f"already re-run: {row['status']} by version "
                                         f"{row.get('processor_version')}")

    # The version the event names, not whatever is current: an overwrite before this
    # read is another version with an event of its own.
    source, source_key = storage.open_object(s3, bucket, key, obj.version_id), key
    lies_at = results.rerun_source(row) if source is None and rerun else None
    if lies_at:
        # A re-run reads the original where it lies and moves it only if its outcome says
        # so (failed/ -> completed/): the row keeps naming the upload (key, version).
        source_key = lies_at
        source = storage.open_object(s3, bucket, source_key)
    if source is None:
        row = row if row_read else results.get(table, row_id)
        if obj.version_id and row and row.get("version_id") not in (None, obj.version_id):
            # This version was handled and moved; the row has moved on to a newer one.
            return Result(Outcome.DUPLICATE, f"version {obj.version_id} is gone; the row is "
                                             f"for version {row['version_id']}")
        if attempt.already_handled(s3, row, bucket, completed_key, failed_key):
            return Result(Outcome.DUPLICATE, "already handled: duplicate delivery")
        return a.vanished(attempt.gone_reason(
            s3, obj, f"object vanished from {s.incoming} before it was processed"),
            **({"version_id": obj.version_id} if obj.version_id else {}))

    kind = kind_for_key(key)
    row_kind = "json" if kind == "jsonl" else kind      # the row says csv | json | text
    version = {"version_id": source.version_id} if source.version_id and source_key == key else {}
    started_at = results.now_iso()
    same_version = False
    try:
        claim = {"bucket": bucket, "kind": row_kind, "version": s.version,
                 "started_at": started_at, "etag": source.etag,
                 "same_version": version or None, "rerun": rerun}
        if not row_read:
            row = _first_claim(a, claim)
        same_version = row is not None and row.get("etag") == source.etag \
            and row.get("version_id") == source.version_id
        if not a.held:
            early = _begin(a, row, source, claim, same_version, completed_key)
            if early is not None:
                return early
        a.checkpoint("after_download")
        limits = s.limits
        if source.size > limits.max_object_bytes:
            raise PermanentError(f"the object is {source.size} bytes; at most "
                                 f"{limits.max_object_bytes} are allowed (MAX_OBJECT_BYTES)")
        if kind is None:
            raise PermanentError(f"unsupported file type: {relative!r} "
                                 "(expected .csv, .json, .jsonl, .ndjson or .txt, "
                                 "optionally followed by .gz)")
        replaced = rerun and results.rerun_output(row, s.processed_bucket)
        output_key = replaced or _output_key(s, relative, source.last_modified)
        _check_key_lengths(output_key, completed_key)
        metadata = {"processed_at": started_at, "environment": s.environment,
                    "processor_version": s.version, "source": obj.uri}
        version_tag = source.etag.strip('"')
        compressed = is_gzip(key)
        try:
            if (same_version or rerun) and has_output(s3, s.processed_bucket, output_key,
                                                       version_tag, s.version):
                # An earlier attempt wrote the output and died before the row: count the
                # records again but do not write a second version of the output.
                counts, extra = write_output(s3, s, output_key, source, kind, metadata,
                                              limits, compressed, {}, key=key, write=False)
            else:
                counts, extra = write_output(s3, s, output_key, source, kind, metadata, limits,
                                              compressed, {"source": obj.uri,
                                                           "source-etag": version_tag,
                                                           "processor-version": s.version},
                                              key=key, replaces=row if replaced else None)
        finally:
            source.body.close()
        a.checkpoint("after_output")

        # The row is final before the original moves: a crash in between leaves the
        # original in incoming/, and the next attempt only finishes the move.
        a.checkpoint("before_results")
        finished_at = results.now_iso()
        a.processed(
            bucket=bucket, kind=row_kind, size=source.size, etag=source.etag,
            records_in=counts.records_in, records_out=counts.records_out,
            dropped_values=counts.dropped_values,
            output=f"s3://{s.processed_bucket}/{output_key}", location=completed_key,
            finished_at=finished_at, updated_at=finished_at, duration_ms=a.ms(),
            processor_version=s.version, **version, **extra,
            tally={name: n - (results.counted_tallies(row) if rerun else {}).get(name, 0)
                   for name, n in (("records_rejected", extra.get("records_rejected") or 0),
                                   ("thumbnails", int("thumbnail" in extra)))})
    except Exception as e:  # noqa: BLE001 - transient ones propagate and are retried
        finishing = same_version and row.get("status") == results.PROCESSED  # type: ignore[union-attr]
        if finishing or not isinstance(e, PermanentError) and failures.is_transient(e):
            raise
        source.body.close()
        error = str(e) if isinstance(e, PermanentError) else failures.describe(e)
        finished_at = results.now_iso()
        # Row first, then the move: if the move fails the retry finishes it.
        a.failed(error, bucket=bucket, size=source.size, etag=source.etag, location=failed_key,
                 finished_at=finished_at, updated_at=finished_at, duration_ms=a.ms(),
                 processor_version=s.version, **version, **getattr(e, "fields", {}))
        if source_key != failed_key:
            storage.move(s3, bucket, source_key, failed_key, source.etag, source.size,
                         version_id=source.version_id)
        return Result(Outcome.FAILED, "failed: the file cannot be processed", error=error)
    # The row is PROCESSED: from here an error is never the file's (attempt.run).
    if source_key != completed_key:
        storage.move(s3, bucket, source_key, completed_key, source.etag, source.size,
                     version_id=source.version_id, checkpoint=a.checkpoint)
    a.checkpoint("after_move")
    return Result(Outcome.PROCESSED, "processed",
                  fields=_records(counts.records_in, counts.records_out))


def _first_claim(a: Attempt, claim: dict) -> dict | None:
    """Claim a first delivery as if its object had no row yet: None when that held (the
    lease is this attempt's); else the row as the failed condition found it."""
    try:
        a.claim(**claim, crashes=0, row=None, once=True)
        return None
    except results.Changed as changed:
        return changed.row


def _begin(a: Attempt, row: dict | None, source, claim: dict, same_version: bool,
           completed_key: str) -> Result | None:
    """Decide from the row whether to attempt the object, and claim it: None when this
    attempt holds the lease now, else how the attempt ends."""
    s3, table, obj = s3_client(), a.table, a.obj
    if row and same_version and row.get("status") == results.PROCESSED and not obj.reprocess:
        # The output and the row were written, then the move did not finish.
        source.body.close()
        storage.move(s3, obj.bucket, obj.key, completed_key, source.etag, source.size,
                     version_id=source.version_id, resume=True, checkpoint=a.checkpoint)
        results.mark_moved(table, a.row_id, completed_key)
        return Result(Outcome.PROCESSED, "finished moving an already processed object",
                      fields=_records(row.get("records_in"), row.get("records_out")))
    crashes = results.crashed_attempts(row, source.etag, a.message_id)
    if crashes >= POISON_ATTEMPTS:
        source.body.close()
        timeout = os.environ.get(env.AWS_LAMBDA_FUNCTION_TIMEOUT)
        error = (f"not attempted: {crashes} attempts on this file crashed or timed out"
                 + (f" (the function's timeout is {timeout} s)" if timeout else "")
                 + "; replay it once the cause is fixed")
        results.give_up(table, a.row_id, error, a.message_id, crashes)
        return Result(Outcome.POISON, "left alone: earlier attempts died on it", error=error)
    if not a.claim(**claim, crashes=crashes, row=row):
        source.body.close()
        return a.busy("another attempt is working on this object; retry when its lease "
                      "ends", results.get(table, a.row_id))
    return None


def _records(records_in: int | None, records_out: int | None) -> dict:
    return {"records_in": records_in, "records_out": records_out}


def _finish_rerun_move(s3, bucket: str, row: dict, failed_key: str, completed_key: str) -> None:
    """A re-run of a FAILED file wrote the row PROCESSED, then died before moving the
    original from failed/: finish that move (the original is never lost on the way)."""
    if row.get("status") != results.PROCESSED or row.get("location") != completed_key:
        return
    found = storage.head(s3, bucket, failed_key)
    if found is not None and found.get("ETag") == row.get("etag"):
        storage.move(s3, bucket, failed_key, completed_key, row["etag"], found["ContentLength"],
                     version_id=found.get("VersionId"), resume=True)


def _output_key(s: Settings, relative: str, last_modified: datetime) -> str:
    """processed/<day>/<the source's path under incoming/>.jsonl: orders.csv ->
    orders.csv.jsonl, orders.csv.gz -> orders.csv.gz.jsonl. The source's whole name stays
    in the output's, so two sources never share an output (orders.csv and orders.json
    both ending as orders.jsonl would overwrite each other). <day> is YYYY/MM/DD, or
    dt=YYYY-MM-DD for Parquet (output_format.py); the extension is the format's."""
    # The object's own LastModified, not "now": a retry writes the same key.
    return f"{s.processed}{s.output.date_path(last_modified)}/{relative}{s.output.extension}"


MAX_KEY_BYTES = 1024    # S3's longest object key, in UTF-8 bytes


def _check_key_lengths(*keys: str) -> None:
    # The output's key is the source's name plus the date path and .jsonl: a source name
    # near S3's limit has no room for it. Said at once, not as a refused PUT after parsing.
    for key in keys:
        size = len(key.encode("utf-8"))
        if size > MAX_KEY_BYTES:
            raise PermanentError(f"the name is too long to process: {key[:60]!r}... would be "
                                 f"{size} bytes, and S3 keys hold at most {MAX_KEY_BYTES}")


_LOG_KEYS = ("key", "status", "records_in", "records_out", "duration_ms", "error")


def _log(level: str, message: str, **fields) -> None:
    """One JSON line per object; a file that reached an end state also carries its metrics
    (CloudWatch Embedded Metric Format)."""
    metrics = None
    if fields.get("status") in (results.PROCESSED, results.FAILED):
        metrics = {"Files": (1, "Count"),
                   "FailedFiles": (int(fields["status"] == results.FAILED), "Count"),
                   "Records": (fields.get("records_out") or 0, "Count"),
                   "DurationMs": (fields.get("duration_ms") or 0, "Milliseconds")}
    telemetry.log(level, message, first=_LOG_KEYS, metrics=metrics, **fields)


# The test hook (common/faults.py), built once at a cold start: Lambda fixes an execution
# environment's variables for its life. tests/functional replace it by name.
_fault = faults.from_environment(os.environ)
