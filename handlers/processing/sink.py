"""The record sink: every accepted record also becomes an item in a DynamoDB table.

Configured by SINK_TABLE and SINK_KEY (deploy writes both from pipeline.yaml's
`sink:`). The partition key is the record's SINK_KEY field as a string, or, with
no key, "record_id": a SHA-256 of the record without _metadata, so the same
record always lands on the same item. Reprocessing a file therefore rewrites the
same items instead of adding new ones.

Items go out in BatchWriteItem calls of 25 (the API's limit). DynamoDB may accept
part of a batch and hand the rest back as UnprocessedItems (throttling, a hot
partition); those are retried with exponential backoff and jitter, and if they
still are not written the error is transient, so SQS retries the whole file
(idempotent: same keys).
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Mapping
from decimal import Context, Decimal, Inexact, Rounded

from boto3.dynamodb.types import TypeSerializer

HASH_KEY = "record_id"
BATCH_SIZE = 25                    # BatchWriteItem takes at most 25 put/delete requests
MAX_ITEM_BYTES = 400 * 1024        # DynamoDB's item size limit (names + values)
RETRY_ATTEMPTS = 8                 # BatchWriteItem calls for one batch before giving up
BACKOFF_BASE, BACKOFF_CAP = 0.05, 5.0   # seconds: 0.05, 0.1, 0.2 ... capped, full jitter

# DynamoDB numbers: up to 38 significant digits, magnitude 1E-130 .. 9.99..E+125.
_DYNAMO = Context(prec=38, traps=[Inexact, Rounded])
_MAX_EXP, _MIN_EXP = 125, -130


class PermanentRecordError(Exception):
    """A record the sink can never store (no key, too large); the file fails."""


class SinkError(Exception):
    """Items still unprocessed after every retry (transient: SQS retries the file)."""


def to_dynamo(value):
    """A JSON value as DynamoDB holds it: numbers as Decimal, maps and lists recursively.

    Floats go through their shortest repr (Decimal(str(x))), never their binary
    expansion. A number DynamoDB cannot hold exactly (more than 38 digits, or out
    of its range) is kept as its decimal string rather than rounded.
    """
    if value.__class__ is bool or value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        number = Decimal(value) if isinstance(value, int) else Decimal(str(value))
        return number if _fits(number) else str(value)
    if isinstance(value, dict):
        return {k: to_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_dynamo(v) for v in value]
    raise TypeError(f"cannot store a {type(value).__name__} in DynamoDB")


def _fits(number: Decimal) -> bool:
    if not number.is_finite():
        return False
    if number.is_zero():
        return True
    try:
        _DYNAMO.plus(number)        # Inexact/Rounded when it has more than 38 digits
    except (Inexact, Rounded):
        return False
    return _MIN_EXP <= number.adjusted() <= _MAX_EXP


def record_id(record: Mapping) -> str:
    """A deterministic id for a record: the same fields and values, the same id."""
    body = {k: v for k, v in record.items() if k != "_metadata"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class RecordSink:
    """Buffers items and writes them 25 at a time; call flush() at the end of the file."""

    def __init__(self, client, table: str, key: str | None = None, *,
                 sleep: Callable[[float], None] = time.sleep,
                 attempts: int = RETRY_ATTEMPTS):
        self._client = client
        self._table = table
        self._key = key or None
        self._sleep = sleep
        self._attempts = attempts
        self._serialize = TypeSerializer().serialize
        # Keyed by partition key: one batch must not name the same key twice
        # (DynamoDB refuses the whole call), and the later record wins, as on a rewrite.
        self._pending: dict[str, dict] = {}
        self._written: set[str] = set()
        self.items_written = 0
        self.items_removed = 0
        self.calls = 0

    @property
    def key_attribute(self) -> str:
        return self._key or HASH_KEY

    def put(self, record: dict, number: int | None = None) -> None:
        item = to_dynamo(record)
        if self._key is None:
            key = record_id(record)
            item[HASH_KEY] = key
        else:
            key = self._key_value(record, number)
            item[self._key] = key
        size = len(json.dumps(record, ensure_ascii=False, default=str).encode("utf-8",
                                                                                "surrogatepass"))
        if size > MAX_ITEM_BYTES:
            raise PermanentRecordError(f"{self._where(number)} is about {size} bytes; a DynamoDB "
                                       f"item holds at most {MAX_ITEM_BYTES} (the sink table)")
        self._written.add(key)
        if key in self._pending:
            self._pending.pop(key)
        elif len(self._pending) >= BATCH_SIZE:
            self.flush()
        self._pending[key] = {"PutRequest": {"Item": {
            name: self._serialize(value) for name, value in item.items()}}}

    def _key_value(self, record: dict, number: int | None) -> str:
        value = record.get(self._key)
        if value is None or isinstance(value, (dict, list)):
            what = "has no" if value is None else "has a map or list as its"
            raise PermanentRecordError(f"{self._where(number)} {what} {self._key!r}, the sink "
                                       "table's key")
        text = json.dumps(value) if isinstance(value, bool) else str(value)
        if not text:
            raise PermanentRecordError(f"{self._where(number)}: {self._key!r} is empty")
        return text

    @staticmethod
    def _where(number: int | None) -> str:
        return f"record {number}" if number is not None else "a record"

    def flush(self) -> None:
        if not self._pending:
            return
        requests = list(self._pending.values())
        self._pending = {}
        self._write(requests)
        self.items_written += len(requests)

    def keys_of(self, lines) -> set[str]:
        """The item keys of the records in an output file (JSON Lines, as the processor
        wrote it): the items that output put in this table."""
        keys = set()
        for line in lines:
            if not line.strip():
                continue
            record = json.loads(line)
            if self._key is None:
                keys.add(record_id(record))
            elif isinstance(record.get(self._key), (str, int, float, bool)):
                keys.add(self._key_value(record, None))
        return keys

    def remove_stale(self, old_keys: set[str]) -> None:
        """A re-run replaces a file's items: after its own are written (flush first), the
        items of the old output that this run did not write again are deleted, so a record
        the new version changes does not leave its old item behind."""
        self.flush()
        stale = sorted(old_keys - self._written)
        for first in range(0, len(stale), BATCH_SIZE):
            self._write([{"DeleteRequest": {"Key": {self.key_attribute: {"S": key}}}}
                         for key in stale[first:first + BATCH_SIZE]])
        self.items_removed += len(stale)

    def _write(self, requests: list[dict]) -> None:
        total = len(requests)
        for attempt in range(self._attempts):
            if attempt:
                # Full jitter: concurrent writers that were throttled together spread out.
                self._sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt)))
            self.calls += 1
            r = self._client.batch_write_item(RequestItems={self._table: requests})
            requests = (r.get("UnprocessedItems") or {}).get(self._table) or []
            if not requests:
                return
        raise SinkError(f"{len(requests)} of {total} items were still unprocessed by "
                        f"{self._table} after {self._attempts} attempts (throttled?)")
