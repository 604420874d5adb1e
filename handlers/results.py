"""The results table: one row per source object, always changed with UpdateItem.

UpdateItem (never PutItem) keeps what earlier attempts wrote, `attempts` above all.
The schema is shared with pipectl/naming.py (handlers never import pipectl).
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

RESULTS_PARTITION_KEY = "object_key"
STATUS_INDEX = "by-status"
STATUS_INDEX_KEYS = ("status", "updated_at")
RESULT_STATUSES = ("PROCESSING", "PROCESSED", "FAILED", "ARCHIVED")

PROCESSING, PROCESSED, FAILED = "PROCESSING", "PROCESSED", "FAILED"
MAX_ERROR_CHARS = 1000


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def get(table, key: str) -> dict | None:
    # Strongly consistent: the row decides whether a delivery is a duplicate.
    item = table.get_item(Key={RESULTS_PARTITION_KEY: key}, ConsistentRead=True).get("Item")
    if item is None:
        return None
    return {k: int(v) if isinstance(v, Decimal) else v for k, v in item.items()}


def _update(table, key: str, values: dict, add: dict | None = None,
            remove: tuple[str, ...] = ()) -> dict:
    values = dict(values, updated_at=values.get("updated_at") or now_iso())
    names, attrs, sets = {}, {}, []
    for i, (name, value) in enumerate(values.items()):
        names[f"#s{i}"] = name
        attrs[f":s{i}"] = value
        sets.append(f"#s{i} = :s{i}")
    expression = "SET " + ", ".join(sets)
    if add:
        adds = []
        for i, (name, value) in enumerate(add.items()):
            names[f"#a{i}"] = name
            attrs[f":a{i}"] = value
            adds.append(f"#a{i} :a{i}")
        expression += " ADD " + ", ".join(adds)
    if remove:
        for i, name in enumerate(remove):
            names[f"#r{i}"] = name
        expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove)))
    r = table.update_item(Key={RESULTS_PARTITION_KEY: key}, UpdateExpression=expression,
                          ExpressionAttributeNames=names, ExpressionAttributeValues=attrs,
                          ReturnValues="ALL_NEW")
    return r.get("Attributes", {})


def mark_started(table, key: str, bucket: str, kind: str | None, version: str,
                 started_at: str) -> None:
    values = {"status": PROCESSING, "bucket": bucket, "started_at": started_at,
              "updated_at": started_at, "processor_version": version}
    if kind:
        values["kind"] = kind
    # A retry of a file that failed before must not keep the old reason.
    _update(table, key, values, add={"attempts": 1}, remove=("error", "finished_at"))


def mark_processed(table, key: str, **fields) -> None:
    _update(table, key, dict(fields, status=PROCESSED), remove=("error",))


def mark_failed(table, key: str, error: str, count_attempt: bool = False, **fields) -> None:
    _update(table, key, dict(fields, status=FAILED, error=error[:MAX_ERROR_CHARS]),
            add={"attempts": 1} if count_attempt else None)


def mark_moved(table, key: str, location: str) -> None:
    _update(table, key, {"location": location})


def record_transient_error(table, key: str, error: str) -> None:
    _update(table, key, {"last_error": error[:MAX_ERROR_CHARS]})
