"""Processor function: S3 notifications arrive through SQS; each object becomes JSON Lines.

lambda_handler only wires: one SQS message at a time, partial batch failures so a
bad message never fails its neighbours. process_object does the work for one
object: claim it (row -> PROCESSING with a lease), stream parse/normalize/write,
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

import hashlib
import json
import os
import signal
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from common import failures, results, storage, telemetry, user_metadata
from common.clients import (  # noqa: F401 (tests reset and reach them here)
    dynamodb_client,
    reset_clients,
    results_table,
    s3_client,
)
from common.invocation import (
    Busy,
    each_created_object,
    invocation_deadline,
    loop_refusal,
    sqs_batch,
)
from common.s3_event import S3Object
from processing import images, schema, sink
from processing.output_format import Encoding, OutputFormat
from processing.transform import (
    LIMIT_DEFAULTS,
    Counts,
    Limits,
    PermanentError,
    is_gzip,
    kind_for_key,
    process_stream,
)

PROCESSOR_VERSION = "1.0.0"
# Lambda's longest timeout: the lease when neither the context nor the environment
# says how long this invocation may run.
# Added to a lease so a slightly fast clock elsewhere does not take it over early.
LEASE_MARGIN_SECONDS = 2
LIMIT_VARIABLES = tuple(LIMIT_DEFAULTS)   # MAX_* environment variables, see limits.py
# A file whose attempts died this often (the worker crashed or timed out on it) is not
# attempted again in this delivery: its message fails alone and goes on to the DLQ, and
# the batch it arrived in is processed. Below maxReceiveCount (3 by default), so the
# neighbours still get a delivery in which the poison file no longer stops them.
POISON_ATTEMPTS = 2


@dataclass(frozen=True)
class Settings:
    environment: str
    processed_bucket: str
    results_table: str
    incoming: str = "incoming/"
    completed: str = "completed/"
    failed: str = "failed/"
    processed: str = "processed/"
    pipeline: str = ""
    raw_bucket: str = ""
    limits: Limits = Limits()
    schemas: tuple = ()                  # schema.Schema, from RECORD_SCHEMAS
    sink_table: str = ""                 # SINK_TABLE: accepted records also go there
    sink_key: str = ""
    image_limits: images.ImageLimits = images.ImageLimits()
    output: OutputFormat = OutputFormat()

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(environment=env.get("ENVIRONMENT", ""),
                   processed_bucket=env.get("PROCESSED_BUCKET", ""),
                   results_table=env.get("RESULTS_TABLE", ""),
                   incoming=env.get("INCOMING_PREFIX") or "incoming/",
                   completed=env.get("COMPLETED_PREFIX") or "completed/",
                   failed=env.get("FAILED_PREFIX") or "failed/",
                   processed=env.get("PROCESSED_PREFIX") or "processed/",
                   pipeline=env.get("PIPELINE", ""), raw_bucket=env.get("RAW_BUCKET", ""),
                   limits=Limits.from_env(env), schemas=tuple(schema.load(env)),
                   sink_table=env.get("SINK_TABLE", ""), sink_key=env.get("SINK_KEY", ""),
                   image_limits=images.ImageLimits.from_env(env),
                   output=OutputFormat.from_env(env))


# --- wiring ----------------------------------------------------------------------

def lambda_handler(event, context):
    settings = Settings.from_env()
    return sqs_batch(event, context, lambda message, deadline: handle_message(
        message, settings, context, deadline))


def handle_message(message: dict, settings: Settings, context=None,
                   deadline: float | None = None) -> bool:
    """True when the message is done with (processed, skipped or permanently failed)."""
    return each_created_object(message, context, settings.incoming, _log, lambda obj, fields:
                               process_object(obj, settings, deadline=deadline, **fields),
                               bucket=settings.raw_bucket)


@dataclass
class Outcome:
    status: str
    message: str
    records_in: int | None = None
    records_out: int | None = None
    error: str | None = None
    lease_until: float | None = None     # BUSY: when the other attempt's lease ends


BUSY = "BUSY"             # another attempt holds the lease: retry the message later
POISON = "POISON"         # earlier attempts died on this file: not attempted, retried later


def process_object(obj: S3Object, settings: Settings, message_id: str | None = None,
                   request_id: str | None = None, deadline: float | None = None) -> bool | Busy:
    """Handle one object; False for a transient failure that SQS should retry, Busy (also
    false) while another attempt holds the object's lease."""
    started = time.monotonic()
    fields = {"key": obj.key, "bucket": obj.bucket, "message_id": message_id,
              "request_id": request_id}
    lease = _Lease(holder=request_id or uuid.uuid4().hex,
                   until=int((deadline or invocation_deadline()) + LEASE_MARGIN_SECONDS))
    try:
        outcome = _process(obj, settings, started, lease, message_id)
    except Exception as e:  # noqa: BLE001 - classified: retried, or FAILED at once
        if not failures.is_transient(e):
            outcome = _permanent_outside_the_file(obj, settings, lease, failures.describe(e))
            _log("ERROR", outcome.message, status=outcome.status, duration_ms=_ms(started),
                 error=outcome.error, **fields)
            return True
        error = f"{type(e).__name__}: {e}"
        try:
            table = results_table(settings.results_table)
            row_id = results.row_key(obj.bucket, obj.key)
            if lease.held:
                results.release(table, row_id, lease.holder)
            results.record_transient_error(table, row_id, error)
        except Exception as row_error:  # noqa: BLE001 - the table may be what is failing
            error += f" (and recording it failed: {row_error})"
        _log("ERROR", "transient failure; will be retried", status="RETRY",
             duration_ms=_ms(started), error=error, **fields)
        return False
    level = "WARNING" if outcome.status in (results.FAILED, POISON) else "INFO"
    _log(level, outcome.message, status=outcome.status, records_in=outcome.records_in,
         records_out=outcome.records_out, duration_ms=_ms(started), error=outcome.error,
         **fields)
    if outcome.status == BUSY:
        # No lease on the row any more: the other attempt just finished; come back soon.
        return Busy(outcome.lease_until or time.time())
    return outcome.status != POISON


@dataclass
class _Lease:
    holder: str
    until: int
    held: bool = False


def _permanent_outside_the_file(obj: S3Object, s: Settings, lease: _Lease,
                                error: str) -> Outcome:
    """A permanent error before the file was read or after its row said PROCESSED: the row
    says so at once; the original stays where it is (nothing proves a move is safe)."""
    table, row_id = results_table(s.results_table), results.row_key(obj.bucket, obj.key)
    row = results.get(table, row_id)
    if row and row.get("status") == results.PROCESSED:
        results.record_transient_error(table, row_id, error)
        return Outcome(results.PROCESSED, "processed, but finishing failed", error=error)
    now = results.now_iso()
    results.mark_failed(table, row_id, error, count_attempt=not lease.held, bucket=obj.bucket,
                        finished_at=now, updated_at=now, processor_version=PROCESSOR_VERSION)
    lease.held = False
    return Outcome(results.FAILED, "failed: not retried", error=error)


def _loop_refusal(s: Settings, bucket: str) -> str | None:
    writes = {"the original": s.completed, "a failed original": s.failed}
    if s.processed_bucket == bucket:        # outputs in the bucket whose uploads trigger us
        writes.update({"output": s.processed, "rejects": REJECTS_PREFIX,
                       "a thumbnail": THUMBNAILS_PREFIX})
    return loop_refusal(s.incoming, writes)


def _process(obj: S3Object, s: Settings, started: float, lease: _Lease,
             message_id: str | None = None) -> Outcome:
    s3 = s3_client()
    table = results_table(s.results_table)
    key, bucket, row_id = obj.key, obj.bucket, results.row_key(obj.bucket, obj.key)
    relative = key[len(s.incoming):]
    completed_key, failed_key = s.completed + relative, s.failed + relative
    refused = _loop_refusal(s, bucket)
    if refused:
        # Nothing is written or moved: the original stays in incoming/, the row says why.
        now = results.now_iso()
        results.mark_failed(table, row_id, refused, count_attempt=True, bucket=bucket,
                            finished_at=now, updated_at=now, processor_version=PROCESSOR_VERSION)
        return Outcome(results.FAILED, "refused: a recursive loop", error=refused)
    row = results.get(table, row_id)

    # The version the event names, not whatever is current: an overwrite before this
    # read is another version with an event of its own.
    source = storage.open_object(s3, bucket, key, obj.version_id)
    if source is None:
        if obj.version_id and row and row.get("version_id") not in (None, obj.version_id):
            # This version was handled and moved; the row has moved on to a newer one.
            return Outcome("DUPLICATE", f"version {obj.version_id} is gone; the row is for "
                                        f"version {row['version_id']}")
        if (row and row.get("status") in (results.PROCESSED, results.FAILED)) \
                or storage.head(s3, bucket, completed_key) or storage.head(s3, bucket, failed_key):
            return Outcome("DUPLICATE", "already handled: duplicate delivery")
        # Not retried: nothing will bring it back, and the row says what happened.
        error = f"object vanished from {s.incoming} before it was processed"
        now = results.now_iso()
        results.mark_failed(table, row_id, error, count_attempt=True, bucket=bucket,
                            finished_at=now, updated_at=now, processor_version=PROCESSOR_VERSION,
                            **({"version_id": obj.version_id} if obj.version_id else {}))
        return Outcome(results.FAILED, "failed", error=error)

    kind = kind_for_key(key)
    row_kind = "json" if kind == "jsonl" else kind      # the row says csv | json | text
    version = {"version_id": source.version_id} if source.version_id else {}
    same_version = bool(row) and row.get("etag") == source.etag \
        and row.get("version_id") == source.version_id
    try:
        if same_version and row.get("status") == results.PROCESSED:
            # The output and the row were written, then the move did not finish.
            source.body.close()
            storage.move(s3, bucket, key, completed_key, source.etag, source.size,
                         version_id=source.version_id, resume=True, checkpoint=_checkpoints(key))
            results.mark_moved(table, row_id, completed_key)
            return Outcome(results.PROCESSED, "finished moving an already processed object",
                           row.get("records_in"), row.get("records_out"))
        crashes = results.crashed_attempts(row, source.etag, message_id)
        if crashes >= POISON_ATTEMPTS:
            source.body.close()
            timeout = os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT")
            error = (f"not attempted: {crashes} attempts on this file crashed or timed out"
                     + (f" (the function's timeout is {timeout} s)" if timeout else "")
                     + "; replay it once the cause is fixed")
            results.give_up(table, row_id, error, message_id, crashes)
            return Outcome(POISON, "left alone: earlier attempts died on it", error=error)
        started_at = results.now_iso()
        lease.held = results.claim(table, row_id, bucket=bucket, kind=row_kind,
                                   version=PROCESSOR_VERSION, started_at=started_at,
                                   etag=source.etag, holder=lease.holder, until=lease.until,
                                   crashes=crashes, same_version=version or None)
        if not lease.held:
            source.body.close()
            holder = results.get(table, row_id) or {}
            return Outcome(BUSY, "another attempt is working on this object; retry when its "
                           "lease ends", lease_until=holder.get(results.LEASE_UNTIL))
        _fault("after_download", key)
        limits = s.limits
        if source.size > limits.max_object_bytes:
            raise PermanentError(f"the object is {source.size} bytes; at most "
                                 f"{limits.max_object_bytes} are allowed (MAX_OBJECT_BYTES)")
        if kind is None:
            raise PermanentError(f"unsupported file type: {relative!r} "
                                 "(expected .csv, .json, .jsonl, .ndjson or .txt, "
                                 "optionally followed by .gz)")
        output_key = _output_key(s, relative, source.last_modified)
        _check_key_lengths(output_key, completed_key)
        metadata = {"processed_at": started_at, "environment": s.environment,
                    "processor_version": PROCESSOR_VERSION, "source": obj.uri}
        version_tag = source.etag.strip('"')
        compressed = is_gzip(key)
        try:
            if same_version and _has_output(s3, s.processed_bucket, output_key, version_tag):
                # An earlier attempt wrote the output and died before the row: count the
                # records again but do not write a second version of the output.
                counts, extra = _write_output(s3, s, output_key, source, kind, metadata,
                                              limits, compressed, {}, key=key, write=False)
            else:
                counts, extra = _write_output(s3, s, output_key, source, kind, metadata, limits,
                                              compressed, {"source": obj.uri,
                                                           "source-etag": version_tag}, key=key)
        finally:
            source.body.close()
        _fault("after_output", key)

        # The row is final before the original moves: a crash in between leaves the
        # original in incoming/, and the next attempt only finishes the move.
        _fault("before_results", key)
        finished_at = results.now_iso()
        results.mark_processed(
            table, row_id, bucket=bucket, kind=row_kind, size=source.size, etag=source.etag,
            records_in=counts.records_in, records_out=counts.records_out,
            dropped_values=counts.dropped_values,
            output=f"s3://{s.processed_bucket}/{output_key}", location=completed_key,
            finished_at=finished_at, updated_at=finished_at, duration_ms=_ms(started),
            processor_version=PROCESSOR_VERSION, **version, **extra,
            tally={"records_rejected": extra.get("records_rejected", 0),
                   "thumbnails": int("thumbnail" in extra)})
        lease.held = False
    except Exception as e:  # noqa: BLE001 - transient ones propagate and are retried
        finishing = same_version and row.get("status") == results.PROCESSED
        if finishing or not isinstance(e, PermanentError) and failures.is_transient(e):
            raise
        source.body.close()
        error = str(e) if isinstance(e, PermanentError) else failures.describe(e)
        finished_at = results.now_iso()
        # Row first, then the move: if the move fails the retry finishes it.
        results.mark_failed(table, row_id, error, bucket=bucket, size=source.size,
                            etag=source.etag, location=failed_key, finished_at=finished_at,
                            updated_at=finished_at, duration_ms=_ms(started),
                            processor_version=PROCESSOR_VERSION, **version,
                            **getattr(e, "fields", {}))
        lease.held = False
        storage.move(s3, bucket, key, failed_key, source.etag, source.size,
                     version_id=source.version_id)
        return Outcome(results.FAILED, "failed: the file cannot be processed", error=error)
    # The row is PROCESSED: from here an error is never the file's (process_object).
    storage.move(s3, bucket, key, completed_key, source.etag, source.size,
                 version_id=source.version_id, checkpoint=_checkpoints(key))
    _fault("after_move", key)
    return Outcome(results.PROCESSED, "processed", counts.records_in, counts.records_out)


REJECTS_PREFIX, THUMBNAILS_PREFIX = "rejects/", "thumbnails/"   # in the processed bucket


class Rejected(PermanentError):
    """Too many records failed the schema; `fields` go on the FAILED row."""

    def __init__(self, message: str, fields: dict):
        super().__init__(message)
        self.fields = fields


class _Discard:
    def write(self, data: bytes) -> None:
        pass

    close = abort = lambda self: None


def _write_output(s3, s: Settings, output_key: str, source, kind: str, metadata: dict,
                  limits: Limits, compressed: bool, object_metadata: dict, *, key: str,
                  write: bool = True) -> tuple:
    """Stream the output (and rejects, sink items); (Counts, extra row fields).

    write=False (the output exists already) counts only: nothing is written again.
    """
    if kind == "image":
        return _write_image(s3, s, output_key, source, metadata, object_metadata, key, write)
    # Rejects stay JSON Lines whatever the output's format: they are for people to read.
    rejects_key = REJECTS_PREFIX + output_key[len(s.processed):-len(s.output.extension)] + ".jsonl"
    found = schema.schema_for(key, list(s.schemas)) if kind != "text" else None
    validator = schema.Validator(found, strings=kind == "csv") if found else None
    record_sink = (sink.RecordSink(dynamodb_client(), s.sink_table, s.sink_key or None)
                   if s.sink_table and kind != "text" and write else None)
    screen = schema.Screen(validator, lambda: storage.ObjectWriter(
        s3, s.processed_bucket, rejects_key, metadata=object_metadata) if write else _Discard(),
        record_sink, metadata)
    writer = (storage.ObjectWriter(s3, s.processed_bucket, output_key, metadata=object_metadata,
                                   content_type=s.output.content_type) if write else _Discard())
    encoding = Encoding(s.output, declared=found.fields if found else None,
                        strings=kind == "csv", reject=screen.reject)
    try:
        try:
            counts = process_stream(kind, source.body, writer.write, metadata, limits, compressed,
                                    accept=screen.accept if screen.active else None,
                                    records=encoding.records)
            encoding.finish()
        except sink.PermanentRecordError as e:
            raise PermanentError(str(e)) from None
        screen.finish()
        extra = {}
        if validator is not None or screen.rejected:
            extra["records_rejected"] = screen.rejected
            if screen.rejected:
                extra["rejects"] = f"s3://{s.processed_bucket}/{rejects_key}"
            failed = (schema.too_many_rejected(found, screen.rejected, screen.seen)
                      if found else None)     # a type misfit without a schema: no ratio
            if failed:
                raise Rejected(failed + (f"; the rejects: {extra['rejects']}"
                                         if write else ""), extra)
        if record_sink is not None:
            extra["sink_items"] = record_sink.items_written
        writer.close()
        if write:  # what `pipectl reconcile` checks the output against
            extra["output_etag"] = writer.etag
    except BaseException:
        for w in (writer, screen):
            try:
                w.abort()
            except Exception:  # noqa: BLE001 - the original error is the one to report
                pass
        raise
    return counts, extra


def _write_image(s3, s: Settings, output_key: str, source, metadata: dict,
                 object_metadata: dict, key: str, write: bool) -> tuple:
    try:
        found, thumb = images.process(source.body, key, s.image_limits, size=source.size)
    except images.ImageError as e:
        raise PermanentError(str(e)) from None
    # thumbnails/<day>/<the source's own name>: its extension is the source's already.
    thumb_key = THUMBNAILS_PREFIX + output_key[len(s.processed):-len(s.output.extension)]
    thumb_uri = f"s3://{s.processed_bucket}/{thumb_key}"
    record = dict(found, thumbnail=thumb_uri, thumbnail_width=thumb.width,
                  thumbnail_height=thumb.height, _metadata=metadata)
    if write:
        # Thumbnail first: the output line names it, and the output is what marks success.
        s3.put_object(Bucket=s.processed_bucket, Key=thumb_key, Body=thumb.data,
                      ContentType=thumb.content_type,
                      Metadata=user_metadata.encode_all(object_metadata))
        writer = storage.ObjectWriter(s3, s.processed_bucket, output_key,
                                      metadata=object_metadata, content_type=s.output.content_type)
        if s.output.format == "jsonl":
            writer.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
        else:
            encoding = Encoding(s.output)
            out = encoding.records(writer.write, metadata, Counts(), 1)
            out.add({k: v for k, v in record.items() if k != "_metadata"})
            out.flush()
            encoding.finish()
        writer.close()
    extra = {"image_format": found["format"], "width": found["width"],
             "height": found["height"], "thumbnail": thumb_uri}
    if write:
        extra["output_etag"] = writer.etag
    return Counts(records_in=1, records_out=1), extra


def _has_output(s3, bucket: str, key: str, version_tag: str) -> bool:
    found = storage.head(s3, bucket, key)
    return found is not None and \
        user_metadata.decode_all(found.get("Metadata")).get("source-etag") == version_tag


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


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


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


# --- test hook: fault injection ---------------------------------------------------
# For tests/server/test_faults.py only. Unset (always, outside that test) it costs one
# environment lookup per step. PIPECTL_FAULT="STEP:KEY[,...]" makes this process
# SIGKILL itself at STEP (after_download, after_output, before_results, after_copy,
# before_delete, after_move) while handling KEY; "hang@STEP:KEY" sleeps instead, until
# the runtime's timeout kills it. With PIPECTL_FAULT_MARKER=<directory> each fault
# fires once (a marker file records that it did); without it, every time.

def _fault(step: str, key: str) -> None:
    spec = os.environ.get("PIPECTL_FAULT")
    if not spec:
        return
    for entry in spec.split(","):
        where, _, fault_key = entry.strip().partition(":")
        action, _, fault_step = where.rpartition("@")
        if fault_step != step or fault_key != key:
            continue
        markers = os.environ.get("PIPECTL_FAULT_MARKER")
        if markers:
            name = f"{step}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
            try:
                os.close(os.open(os.path.join(markers, name), os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return
        print(json.dumps({"level": "WARNING", "message": f"test fault: {action or 'kill'} "
                          f"at {step}", "key": key}), flush=True)
        if action == "hang":
            while True:
                time.sleep(60)
        os.kill(os.getpid(), signal.SIGKILL)


def _checkpoints(key: str):
    return lambda step: _fault(step, key)
