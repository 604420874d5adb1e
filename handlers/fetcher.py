"""Fetcher function: a request file under fetch/ names an HTTP API; its response becomes a file.

The request file (JSON, or YAML for .yaml/.yml) says what to call:
    {"url": "https://api.example.com/v1/orders", "method": "GET",
     "headers": {"Authorization": "Bearer ..."}, "query": {"page": 1},
     "records": "/data/items", "name": "orders"}
The response (or, with `records`, the JSON value at that RFC 6901 pointer) is written
to the raw bucket as incoming/<name>-<YYYYmmddTHHMMSSZ>.json, where the processor's
own S3 notification picks it up like any upload. The timestamp is the request
file's LastModified, so a retry of the same request writes (or finds) the same key.

Results row keyed by the request file's bucket and key (kind "fetch"); the request file then
moves to completed/fetch/... or failed/fetch/... (verified copy first, delete second).
Before calling the API an attempt claims the row (results.claim: a lease until this
invocation's deadline, for this request version: ETag plus LastModified/VersionId).
A second delivery arriving meanwhile leaves its message to SQS to retry later; one
arriving after the first finished is a no-op.
Permanent failures (a bad request file, a refused address, HTTP 4xx, a body too big
or not JSON) end FAILED; transient ones (connection errors, timeouts, 429, 5xx after
the retries, AWS errors) fail only their SQS message, which SQS redelivers and, after
maxReceiveCount, moves to the fetch dead-letter queue.

Unless FETCH_ALLOW_PRIVATE, only public addresses are called (see safe_http.py):
redirects are followed after the same check on their target.
"""

from __future__ import annotations

import base64
import hashlib
import os
import time
import uuid
from dataclasses import dataclass
from datetime import timezone

from botocore.exceptions import ClientError
from common import failures, results, storage, telemetry, user_metadata
from common.clients import reset_clients, results_table, s3_client  # noqa: F401 (tests reset them)
from common.invocation import (
    Busy,
    each_created_object,
    invocation_deadline,
    loop_refusal,
    sqs_batch,
)
from common.s3_event import S3Object
from fetching import safe_http
from fetching.request import MAX_REQUEST_FILE_BYTES, FetchRequest, extract, parse_request
from fetching.safe_http import PermanentError, TransientError

# Environment variables and their defaults.
RAW_BUCKET = "RAW_BUCKET"
RESULTS_TABLE = "RESULTS_TABLE"
FETCH_PREFIX, DEFAULT_FETCH_PREFIX = "FETCH_PREFIX", "fetch/"
INCOMING_PREFIX, DEFAULT_INCOMING_PREFIX = "INCOMING_PREFIX", "incoming/"
COMPLETED_PREFIX, DEFAULT_COMPLETED_PREFIX = "COMPLETED_PREFIX", "completed/"
FAILED_PREFIX, DEFAULT_FAILED_PREFIX = "FAILED_PREFIX", "failed/"
FETCH_ALLOW_PRIVATE, DEFAULT_ALLOW_PRIVATE = "FETCH_ALLOW_PRIVATE", "false"
FETCH_REQUEST_TIMEOUT, DEFAULT_REQUEST_TIMEOUT = "FETCH_REQUEST_TIMEOUT", 10.0   # seconds
FETCH_MAX_BYTES, DEFAULT_MAX_BYTES = "FETCH_MAX_BYTES", 50 * 1024 * 1024
FETCH_MAX_ATTEMPTS, DEFAULT_MAX_ATTEMPTS = "FETCH_MAX_ATTEMPTS", 3

FETCHER_VERSION = "1.0.0"
KIND = "fetch"
BUSY = "BUSY"             # another attempt holds the lease: retry the message later
# Added to a lease so a slightly fast clock elsewhere does not take it over early.
LEASE_MARGIN_SECONDS = 2
# Output objects carry these, so a retry recognises an output an earlier attempt wrote.
META_REQUEST, META_VERSION, META_STATUS, META_URL = (
    "fetch-request", "fetch-request-version", "fetch-http-status", "fetch-url")


@dataclass(frozen=True)
class Settings:
    raw_bucket: str
    results_table: str
    fetch: str = DEFAULT_FETCH_PREFIX
    incoming: str = DEFAULT_INCOMING_PREFIX
    completed: str = DEFAULT_COMPLETED_PREFIX
    failed: str = DEFAULT_FAILED_PREFIX
    allow_private: bool = False
    timeout: float = DEFAULT_REQUEST_TIMEOUT
    max_bytes: int = DEFAULT_MAX_BYTES
    max_attempts: int = DEFAULT_MAX_ATTEMPTS

    @classmethod
    def from_env(cls, env=None) -> Settings:
        env = os.environ if env is None else env
        return cls(raw_bucket=env.get(RAW_BUCKET, ""), results_table=env.get(RESULTS_TABLE, ""),
                   fetch=env.get(FETCH_PREFIX) or DEFAULT_FETCH_PREFIX,
                   incoming=env.get(INCOMING_PREFIX) or DEFAULT_INCOMING_PREFIX,
                   completed=env.get(COMPLETED_PREFIX) or DEFAULT_COMPLETED_PREFIX,
                   failed=env.get(FAILED_PREFIX) or DEFAULT_FAILED_PREFIX,
                   allow_private=(env.get(FETCH_ALLOW_PRIVATE) or DEFAULT_ALLOW_PRIVATE)
                   .strip().lower() in ("true", "1", "yes"),
                   timeout=float(env.get(FETCH_REQUEST_TIMEOUT) or DEFAULT_REQUEST_TIMEOUT),
                   max_bytes=int(env.get(FETCH_MAX_BYTES) or DEFAULT_MAX_BYTES),
                   max_attempts=max(1, int(env.get(FETCH_MAX_ATTEMPTS)
                                           or DEFAULT_MAX_ATTEMPTS)))


# --- wiring ----------------------------------------------------------------------

def lambda_handler(event, context):
    settings = Settings.from_env()
    return sqs_batch(event, context, lambda message, deadline: handle_message(
        message, settings, context, deadline))


def handle_message(message: dict, settings: Settings, context=None,
                   deadline: float | None = None) -> bool:
    """True when the message is done with (fetched, skipped or permanently failed)."""
    return each_created_object(message, context, settings.fetch, _log, lambda obj, fields:
                               fetch_object(obj, settings, deadline, **fields),
                               bucket=settings.raw_bucket)


def fetch_object(obj: S3Object, s: Settings, deadline: float | None = None,
                 **fields) -> bool | Busy:
    """Handle one request file; False for a transient failure, Busy (also false) for a
    request another attempt is fetching right now: SQS delivers the message again later."""
    started = time.monotonic()
    log = {"key": obj.key, "bucket": obj.bucket, **fields}
    # The lease ends when this invocation is killed at the latest, so a crashed attempt
    # blocks the request's retries no longer than the function's timeout.
    lease = _Lease(holder=fields.get("request_id") or uuid.uuid4().hex,
                   until=int((deadline or invocation_deadline()) + LEASE_MARGIN_SECONDS))
    try:
        outcome = _fetch(obj, s, started, deadline, lease)
    except Exception as e:  # noqa: BLE001 - classified: retried, or FAILED at once
        if not failures.is_transient(e):
            outcome = _permanent_outside_the_request(obj, s, lease, failures.describe(e))
            _log("ERROR", outcome.pop("message"), duration_ms=_ms(started), **outcome, **log)
            return True
        error = str(e) if isinstance(e, TransientError) else f"{type(e).__name__}: {e}"
        try:
            table, row_id = results_table(s.results_table), results.row_key(obj.bucket, obj.key)
            if lease.held:    # the retry need not wait for this attempt's timeout
                results.release(table, row_id, lease.holder)
            results.record_transient_error(table, row_id, error)
        except Exception as row_error:  # noqa: BLE001 - the table may be what is failing
            error += f" (and recording it failed: {row_error})"
        _log("ERROR", "transient failure; will be retried", status="RETRY",
             duration_ms=_ms(started), error=error, **log)
        return False
    level = "WARNING" if outcome.get("status") == results.FAILED else "INFO"
    _log(level, outcome.pop("message"), duration_ms=_ms(started), **outcome, **log)
    if outcome.get("status") == BUSY:
        # No lease on the row any more: the other attempt just finished; come back soon.
        return Busy(outcome.get("lease_until") or time.time())
    return True


@dataclass
class _Lease:
    holder: str
    until: int
    held: bool = False


def _permanent_outside_the_request(obj: S3Object, s: Settings, lease: _Lease,
                                   error: str) -> dict:
    """A bug or refused request outside the fetch itself: the row says so at once, and the
    request file stays where it is (nothing proves a move is safe)."""
    table, row_id = results_table(s.results_table), results.row_key(obj.bucket, obj.key)
    row = results.get(table, row_id)
    if row and row.get("status") == results.PROCESSED:
        results.record_transient_error(table, row_id, error)
        return {"status": results.PROCESSED, "message": "fetched, but finishing failed",
                "error": error}
    now = results.now_iso()
    results.mark_failed(table, row_id, error, count_attempt=not lease.held, bucket=obj.bucket,
                        kind=KIND, finished_at=now, updated_at=now)
    lease.held = False
    return {"status": results.FAILED, "message": "failed: not retried", "error": error}


def _fetch(obj: S3Object, s: Settings, started: float, deadline: float | None,
           lease: _Lease) -> dict:
    s3, table = s3_client(), results_table(s.results_table)
    key, bucket, row_id = obj.key, obj.bucket, results.row_key(obj.bucket, obj.key)
    completed_key, failed_key = s.completed + key, s.failed + key
    refused = loop_refusal(s.fetch, {"the request file": s.completed,
                                     "a failed request file": s.failed,
                                     "the response": s.incoming})
    if refused:
        # Nothing is fetched, written or moved: the request stays, the row says why.
        now = results.now_iso()
        results.mark_failed(table, row_id, refused, count_attempt=True, bucket=bucket,
                            kind=KIND, finished_at=now, updated_at=now)
        return {"status": results.FAILED, "message": "refused: a recursive loop",
                "error": refused}
    row = results.get(table, row_id)
    source = _read_request_file(s3, bucket, key, obj.version_id)
    if source is None:
        if (row and row.get("status") in (results.PROCESSED, results.FAILED)) \
                or storage.head(s3, bucket, completed_key) or storage.head(s3, bucket, failed_key):
            return {"status": "DUPLICATE", "message": "already handled: duplicate delivery"}
        error = f"request file vanished from {s.fetch} before it was fetched"
        now = results.now_iso()
        results.mark_failed(table, row_id, error, count_attempt=True, bucket=bucket, kind=KIND,
                            finished_at=now, updated_at=now)
        return {"status": results.FAILED, "message": "failed", "error": error}
    body, etag, version, size, version_id = source
    if _finished(row, etag, version):
        # This version was finished (row written), then the move did not happen.
        processed = row["status"] == results.PROCESSED
        storage.move(s3, bucket, key, completed_key if processed else failed_key, etag, size,
                     version_id=version_id, resume=True)
        if processed:
            results.mark_moved(table, row_id, completed_key)
        return {"status": "DUPLICATE", "message": "already handled; finished the move",
                "output": row.get("output")}

    # Only the attempt holding the lease calls the API: two deliveries of one request
    # (at-least-once S3 and SQS, a replayed dead letter) never both fetch it.
    lease.held = results.claim(table, row_id, bucket=bucket, kind=KIND, version=FETCHER_VERSION,
                               started_at=results.now_iso(), etag=etag, holder=lease.holder,
                               until=lease.until, same_version={"request_version": version},
                               finished=(results.PROCESSED, results.FAILED))
    if not lease.held:
        row = results.get(table, row_id)
        if _finished(row, etag, version):
            # Finished by another attempt since this one looked; that attempt also moves
            # the request file (or its message comes back to finish the move).
            return {"status": "DUPLICATE", "message": "already handled by a concurrent attempt",
                    "output": row.get("output")}
        return {"status": BUSY, "message": "another attempt is fetching this request; retry "
                                           "when its lease ends",
                "lease_until": (row or {}).get(results.LEASE_UNTIL)}
    url = None
    try:
        request = parse_request(key, body)
        url = safe_http.public_url(request.url)
        safe_http.check_url(request.url, s.allow_private)
        out_bucket = s.raw_bucket or bucket        # the raw bucket, where incoming/ is
        done = _fetch_and_write(s3, s, out_bucket, request, key, version, deadline)
        finished = results.now_iso()
        results.mark_processed(table, row_id, bucket=bucket, kind=KIND, etag=etag,
                               request_version=version, size=size, url=url,
                               output=f"s3://{out_bucket}/{done['output_key']}",
                               http_status=done["http_status"], bytes=done["bytes"],
                               http_attempts=done["http_attempts"], location=completed_key,
                               finished_at=finished, updated_at=finished,
                               duration_ms=_ms(started), processor_version=FETCHER_VERSION,
                               tally={"responses_fetched": 1})
        lease.held = False     # mark_processed removed it
    except Exception as e:  # noqa: BLE001 - transient ones propagate and are retried
        if not isinstance(e, PermanentError) and failures.is_transient(e):
            raise
        error = str(e) if isinstance(e, PermanentError) else failures.describe(e)
        finished = results.now_iso()
        extra = {"url": url} if url else {}
        results.mark_failed(table, row_id, error, bucket=bucket, kind=KIND, etag=etag,
                            request_version=version, size=size, location=failed_key,
                            finished_at=finished, updated_at=finished,
                            duration_ms=_ms(started), processor_version=FETCHER_VERSION,
                            **extra)
        lease.held = False     # mark_failed removed it
        storage.move(s3, bucket, key, failed_key, etag, size, version_id=version_id)
        return {"status": results.FAILED, "message": "failed: the request cannot be fetched",
                "error": error, **extra}
    # The row is PROCESSED: from here an error is never the request's (fetch_object).
    storage.move(s3, bucket, key, completed_key, etag, size, version_id=version_id)
    return {"status": results.PROCESSED, "message": "fetched", "url": url,
            "http_status": done["http_status"], "bytes": done["bytes"],
            "output": f"s3://{out_bucket}/{done['output_key']}"}


def _finished(row: dict | None, etag: str, version: str) -> bool:
    """Whether the row says this version of the request file was fetched or failed for good."""
    return bool(row) and row.get("etag") == etag and row.get("request_version") == version \
        and row.get("status") in (results.PROCESSED, results.FAILED)


def _read_request_file(s3, bucket: str, key: str, version_id: str | None = None):
    """(body, etag, version, size, VersionId) of the request file (the version the event
    names, else the current one), or None when it is gone."""
    try:
        r = s3.get_object(Bucket=bucket, Key=key, **({"VersionId": version_id}
                                                       if version_id else {}))
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound",
                                                        "NoSuchVersion"):
            return None
        raise
    with r["Body"] as stream:
        body = stream.read(MAX_REQUEST_FILE_BYTES + 1)
    # The version tells a re-upload of identical content (same ETag) from a redelivery:
    # "<LastModified>/<VersionId>" ("null" VersionId in an unversioned bucket).
    stamp = r["LastModified"].astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    version = f"{stamp}/{r.get('VersionId') or 'null'}"
    return body, r["ETag"], version, r["ContentLength"], r.get("VersionId") or None


def _fetch_and_write(s3, s: Settings, bucket: str, request: FetchRequest, key: str,
                     version: str, deadline: float | None) -> dict:
    stamp = version.split("/", 1)[0]
    output_key, found = _output_slot(s3, s, bucket, request.name, stamp, key, version)
    if found is not None:
        # An earlier attempt wrote the output, then died before the row: do not call again.
        meta = user_metadata.decode_all(found.get("Metadata"))
        return {"output_key": output_key, "http_status": int(meta.get(META_STATUS, 200)),
                "bytes": found["ContentLength"], "http_attempts": 0}
    response = safe_http.get(request.full_url, request.headers, timeout=s.timeout,
                             max_bytes=s.max_bytes, max_attempts=s.max_attempts,
                             allow_private=s.allow_private, deadline=deadline)
    data = extract(response.body, response.content_type, request.records)
    # S3 rejects the PUT unless the body it received has this MD5: written whole or not at all.
    md5 = base64.b64encode(hashlib.md5(data, usedforsecurity=False).digest()).decode()
    s3.put_object(Bucket=bucket, Key=output_key, Body=data, ContentType="application/json",
                  ContentMD5=md5,
                  Metadata=user_metadata.encode_all({
                      META_REQUEST: key, META_VERSION: version,
                      META_STATUS: str(response.status),
                      META_URL: safe_http.public_url(request.url)}))
    return {"output_key": output_key, "http_status": response.status, "bytes": len(data),
            "http_attempts": response.attempts}


def _output_slot(s3, s: Settings, bucket: str, name: str, stamp: str, key: str,
                 version: str):
    """The output key for this request version, and its object if one was already written.

    incoming/<name>-<stamp>.json, or -2, -3... when another request took that name in
    the same second; the processor later moves it to completed/ or failed/, so all
    three places are looked at.
    """
    for n in range(1, 100):
        relative = f"{name}-{stamp}.json" if n == 1 else f"{name}-{stamp}-{n}.json"
        taken = None
        for prefix in (s.incoming, s.completed, s.failed):
            found = storage.head(s3, bucket, prefix + relative)
            if found is not None:
                meta = user_metadata.decode_all(found.get("Metadata"))
                if meta.get(META_REQUEST) == key and meta.get(META_VERSION) == version:
                    return s.incoming + relative, found
                taken = found
        if taken is None:
            return s.incoming + relative, None
    raise PermanentError(f"too many outputs named {name!r} at {stamp}")


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


_LOG_KEYS = ("key", "status", "url", "http_status", "bytes", "output", "duration_ms", "error")


def _log(level: str, message: str, **fields) -> None:
    """One JSON line per request; a finished request also carries its metrics (EMF)."""
    status = fields.get("status")
    metrics = None
    if status in ("PROCESSED", "FAILED"):
        metrics = {"Fetches": (1, "Count"), "FetchFailures": (int(status == "FAILED"), "Count"),
                   "FetchedBytes": (fields.get("bytes") or 0, "Bytes"),
                   "DurationMs": (fields.get("duration_ms") or 0, "Milliseconds")}
    telemetry.log(level, message, first=_LOG_KEYS, metrics=metrics, function="fetcher",
                  **fields)
