"""A results row read and written: consistent reads, UpdateItem expressions, and the
status transition that moves the row and the `__counters__` item in one transaction.

results.py says what each change of a row means (claim, PROCESSED, FAILED, ...); this
module says how one is made safely when attempts race: every transition is conditional
on the status the row had, and a condition that fails returns the row as it stands
(ALL_OLD), so the write is tried again from it without a read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from common.contract import COUNTERS_KEY, RESULTS_PARTITION_KEY

# A transition whose expected old status changed under it (a concurrent attempt) is
# re-read and retried; more than this many collisions in a row is a transient error.
TRANSITION_ATTEMPTS = 5


class Contention(Exception):
    """A row kept changing under this attempt (transient: the message comes back later)."""

    transient = True


def identity(row: str) -> dict:
    """The bucket and key attributes of a row keyed by row_key (none for other items)."""
    if not row.startswith("s3://"):
        return {}
    bucket, _, key = row[len("s3://"):].partition("/")
    return {"bucket": bucket, "key": key}


@dataclass(frozen=True)
class Guard:
    """An extra condition on a transition: `condition` for DynamoDB, `allows` for the row read.

    They must agree; `allows` tells a lost race (give up) from a status that merely
    changed between the read and the write (read again and retry).
    """

    condition: str
    names: dict
    values: dict
    allows: Callable[[dict | None], bool]


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def get(table, key: str) -> dict | None:
    # Strongly consistent: the row decides whether a delivery is a duplicate.
    item = table.get_item(Key={RESULTS_PARTITION_KEY: key}, ConsistentRead=True).get("Item")
    return None if item is None else _row(item)


def _row(item: dict) -> dict:
    return {k: int(v) if isinstance(v, Decimal) else v for k, v in item.items()}


class _Unread:
    """The row is not known: _transition reads it."""

    def __repr__(self) -> str:
        return "UNREAD"


UNREAD: Any = _Unread()
_DESERIALIZE = TypeDeserializer().deserialize


def _row_at_failure(exc: Exception) -> dict | None | _Unread:
    """The row as a failed condition found it: TransactWriteItems returns it in the
    cancellation reason of the item that asked (ReturnValuesOnConditionCheckFailure
    ALL_OLD), as DynamoDB's AttributeValue maps (an error's fields are not converted to
    Python types as a response's are). No item there: the row did not exist."""
    reasons = getattr(exc, "response", {}).get("CancellationReasons") or [{}]
    item = reasons[0].get("Item")
    if item is None:
        return None if reasons[0].get("Code") == "ConditionalCheckFailed" else UNREAD
    return _row({name: _DESERIALIZE(value) for name, value in item.items()})


class Changed(Exception):
    """A transition asked to try once (`once`) found the row other than the caller thought."""

    def __init__(self, row: dict | None):
        super().__init__("the row changed")
        self.row = row


def update_expression(values: dict, add: dict | None, remove: tuple[str, ...]) -> dict:
    """UpdateItem arguments that SET values, ADD add (counters) and REMOVE remove."""
    names, attrs, parts = {}, {}, []
    sets = []
    for i, (name, value) in enumerate(values.items()):
        names[f"#s{i}"], attrs[f":s{i}"] = name, value
        sets.append(f"#s{i} = :s{i}")
    if sets:
        parts.append("SET " + ", ".join(sets))
    if add:
        adds = []
        for i, (name, value) in enumerate(add.items()):
            names[f"#a{i}"], attrs[f":a{i}"] = name, value
            adds.append(f"#a{i} :a{i}")
        parts.append("ADD " + ", ".join(adds))
    if remove:
        for i, name in enumerate(remove):
            names[f"#r{i}"] = name
        parts.append("REMOVE " + ", ".join(f"#r{i}" for i in range(len(remove))))
    return {"UpdateExpression": " ".join(parts), "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": attrs}


def update(table, key: str, values: dict, add: dict | None = None,
            remove: tuple[str, ...] = ()) -> dict:
    """Change a row without changing its status (status changes go through transition)."""
    values = {**identity(key), **values, "updated_at": values.get("updated_at") or now_iso()}
    r = table.update_item(Key={RESULTS_PARTITION_KEY: key}, ReturnValues="ALL_NEW",
                          **update_expression(values, add, remove))
    return r.get("Attributes", {})


def transition(table, key: str, values: dict, add: dict | None = None,
                remove: tuple[str, ...] = (), guard: Guard | None = None,
                tally: dict[str, int] | None = None, row: Any = UNREAD,
                once: bool = False) -> bool:
    """Set the row's status (values["status"]) and move one count between counters, atomically.

    The row update is conditional on the status the row had, so two attempts racing on
    one object never count twice. With a guard, the update is also conditional on it;
    False when the guard no longer allows the change.

    row: the row as the caller knows it (None: no row), so the write needs no read
    before it; when the row turns out different, the failed condition returns it and the
    write is tried again from it (once: Changed(row) is raised instead, for the caller to
    decide again). UNREAD: the row is read first.
    """
    new = values["status"]
    values = {**identity(key), **values, "updated_at": values.get("updated_at") or now_iso()}
    client = table.meta.client
    for _ in range(TRANSITION_ATTEMPTS):
        if row is UNREAD:
            row = get(table, key)
        if guard is not None and not guard.allows(row):
            return False
        old = row.get("status") if row else None
        row_update = {"TableName": table.name, "Key": {RESULTS_PARTITION_KEY: key},
                      "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                      **update_expression(values, add, remove)}
        if old is None:
            row_update["ConditionExpression"] = "attribute_not_exists(#st)"
        else:
            row_update["ConditionExpression"] = "#st = :old_status"
            row_update["ExpressionAttributeValues"][":old_status"] = old
        row_update["ExpressionAttributeNames"]["#st"] = "status"
        if guard is not None:
            row_update["ConditionExpression"] += f" AND ({guard.condition})"
            row_update["ExpressionAttributeNames"].update(guard.names)
            row_update["ExpressionAttributeValues"].update(guard.values)
        counts = {new: 1}
        if old is not None:
            counts[old] = counts.get(old, 0) - 1
        counts.update(tally or {})
        items = [{"Update": row_update}]
        if any(counts.values()):
            items.append({"Update": {"TableName": table.name,
                                     "Key": {RESULTS_PARTITION_KEY: COUNTERS_KEY},
                                     **update_expression({}, {k: v for k, v in counts.items() if v},
                                                   ())}})
        try:
            client.transact_write_items(TransactItems=items)
            return True
        except client.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" not in reasons:
                raise
            row = _row_at_failure(exc)
            if once:
                raise Changed(get(table, key) if row is UNREAD else row) from None
    raise Contention(f"results row {key!r} kept changing under this attempt; retrying later")
