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
from dataclasses import dataclass
from datetime import timezone

from botocore.exceptions import ClientError
from common import attempt, failures, results, storage, telemetry, user_metadata
from common.attempt import Attempt, Outcome, Result
from common.clients import reset_clients, results_table, s3_client  # noqa: F401 (tests reset them)
from common.contract import (
    COMPLETED_PREFIX,
    FAILED_PREFIX,
    FETCH_ALLOW_PRIVATE,
    FETCH_MAX_ATTEMPTS,
    FETCH_MAX_BYTES,
    FETCH_PREFIX,
    FETCH_REQUEST_TIMEOUT,
    INCOMING_PREFIX,
    RAW_BUCKET,
    RESULTS_TABLE,
)
from common.invocation import Busy, each_created_object, loop_refusal, sqs_batch
from common.s3_event import S3Object
from fetching import safe_http
from fetching.request import MAX_REQUEST_FILE_BYTES, FetchRequest, extract, parse_request
from fetching.safe_http import PermanentError, TransientError

# The environment's defaults (the variables' names: common/contract.py).
DEFAULT_FETCH_PREFIX = "fetch/"
DEFAULT_INCOMING_PREFIX = "incoming/"
DEFAULT_COMPLETED_PREFIX = "completed/"
DEFAULT_FAILED_PREFIX = "failed/"
DEFAULT_ALLOW_PRIVATE = "false"
DEFAULT_REQUEST_TIMEOUT = 10.0   # seconds
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
DEFAULT_MAX_ATTEMPTS = 3

FETCHER_VERSION = "1.0.0"
KIND = "fetch"
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
                   deadline: float | None = None) -> bool | Busy:
    """True when the message is done with (fetched, skipped or permanently failed)."""
    return each_created_object(message, context, settings.fetch, _log, lambda obj, fields:
                               fetch_object(obj, settings, deadline, **fields),
                               bucket=settings.raw_bucket)


def fetch_object(obj: S3Object, s: Settings, deadline: float | None = None,
                 **fields) -> bool | Busy:
    """Handle one request file; False for a transient failure, Busy (also false) for a
    request another attempt is fetching right now: SQS delivers the message again later."""
    handler = attempt.Handler(results_table=s.results_table, log=_log, done="fetched",
                              row_fields={"kind": KIND}, transient_error=_transient_error)
    return attempt.run(obj, handler, lambda a: _fetch(a, s, deadline), deadline=deadline,
                       **fields)


def _transient_error(e: Exception) -> str:
    return str(e) if isinstance(e, TransientError) else f"{type(e).__name__}: {e}"


def _fetch(a: Attempt, s: Settings, deadline: float | None) -> Result:
    s3, table, obj = s3_client(), a.table, a.obj
    key, bucket, row_id = obj.key, obj.bucket, a.row_id
    completed_key, failed_key = s.completed + key, s.failed + key
    refused = loop_refusal(s.fetch, {"the request file": s.completed,
                                     "a failed request file": s.failed,
                                     "the response": s.incoming})
    if refused:
        # Nothing is fetched, written or moved: the request stays, the row says why.
        return a.refuse(refused)
    row = results.get(table, row_id)
    source = _read_request_file(s3, bucket, key, obj.version_id)
    if source is None:
        if attempt.already_handled(s3, row, bucket, completed_key, failed_key):
            return Result(Outcome.DUPLICATE, "already handled: duplicate delivery")
        return a.vanished(attempt.gone_reason(
            s3, obj, f"request file vanished from {s.fetch} before it was fetched"))
    body, etag, version, size, version_id = source
    if _finished(row, etag, version):
        # This version was finished (row written), then the move did not happen.
        processed = row["status"] == results.PROCESSED  # type: ignore[index]  # _finished: a row
        storage.move(s3, bucket, key, completed_key if processed else failed_key, etag, size,
                     version_id=version_id, resume=True)
        if processed:
            results.mark_moved(table, row_id, completed_key)
        return Result(Outcome.DUPLICATE, "already handled; finished the move",
                      fields={"output": row.get("output")})  # type: ignore[union-attr]

    # Only the attempt holding the lease calls the API: two deliveries of one request
    # (at-least-once S3 and SQS, a replayed dead letter) never both fetch it.
    if not a.claim(bucket=bucket, kind=KIND, version=FETCHER_VERSION,
                   started_at=results.now_iso(), etag=etag,
                   same_version={"request_version": version},
                   finished=(results.PROCESSED, results.FAILED), row=row):
        row = results.get(table, row_id)
        if _finished(row, etag, version):
            # Finished by another attempt since this one looked; that attempt also moves
            # the request file (or its message comes back to finish the move).
            return Result(Outcome.DUPLICATE, "already handled by a concurrent attempt",
                          fields={"output": row.get("output")})  # type: ignore[union-attr]
        return a.busy("another attempt is fetching this request; retry when its lease ends",
                      row)
    url = None
    try:
        request = parse_request(key, body)
        url = safe_http.public_url(request.url)
        safe_http.check_url(request.url, s.allow_private)
        out_bucket = s.raw_bucket or bucket        # the raw bucket, where incoming/ is
        done = _fetch_and_write(s3, s, out_bucket, request, key, version, deadline)
        finished = results.now_iso()
        a.processed(bucket=bucket, kind=KIND, etag=etag, request_version=version, size=size,
                    url=url, output=f"s3://{out_bucket}/{done['output_key']}",
                    http_status=done["http_status"], bytes=done["bytes"],
                    http_attempts=done["http_attempts"], location=completed_key,
                    finished_at=finished, updated_at=finished, duration_ms=a.ms(),
                    processor_version=FETCHER_VERSION, tally={"responses_fetched": 1})
    except Exception as e:  # noqa: BLE001 - transient ones propagate and are retried
        if not isinstance(e, PermanentError) and failures.is_transient(e):
            raise
        error = str(e) if isinstance(e, PermanentError) else failures.describe(e)
        finished = results.now_iso()
        extra = {"url": url} if url else {}
        a.failed(error, bucket=bucket, kind=KIND, etag=etag, request_version=version,
                 size=size, location=failed_key, finished_at=finished, updated_at=finished,
                 duration_ms=a.ms(), processor_version=FETCHER_VERSION, **extra)
        storage.move(s3, bucket, key, failed_key, etag, size, version_id=version_id)
        return Result(Outcome.FAILED, "failed: the request cannot be fetched", error=error,
                      fields=extra)
    # The row is PROCESSED: from here an error is never the request's (attempt.run).
    storage.move(s3, bucket, key, completed_key, etag, size, version_id=version_id)
    return Result(Outcome.PROCESSED, "fetched", fields={
        "url": url, "http_status": done["http_status"], "bytes": done["bytes"],
        "output": f"s3://{out_bucket}/{done['output_key']}"})


def _finished(row: dict | None, etag: str, version: str) -> bool:
    """Whether the row says this version of the request file was fetched or failed for good."""
    return row is not None and bool(row) and row.get("etag") == etag \
        and row.get("request_version") == version \
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


_LOG_KEYS = ("key", "status", "url", "http_status", "bytes", "output", "duration_ms", "error")


def _log(level: str, message: str, **fields) -> None:
    """One JSON line per request; a finished request also carries its metrics (EMF)."""
    status = fields.get("status")
    metrics = None
    if status in (results.PROCESSED, results.FAILED):
        metrics = {"Fetches": (1, "Count"),
                   "FetchFailures": (int(status == results.FAILED), "Count"),
                   "FetchedBytes": (fields.get("bytes") or 0, "Bytes"),
                   "DurationMs": (fields.get("duration_ms") or 0, "Milliseconds")}
    telemetry.log(level, message, first=_LOG_KEYS, metrics=metrics, function="fetcher",
                  **fields)
