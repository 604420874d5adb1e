"""Results rows of archived objects, marked many in one transaction.

Each object's row would cost a GetItem and a transaction of its own (row_access.transition
reads the row to learn its status). The common case needs no read: the row is PROCESSED
and its output is still the object being archived (a rejects file's or thumbnail's row
still links to it). So the copy threads hand their rows to a RowMarker, which writes
every row waiting at that moment in one TransactWriteItems (group commit: while one
transaction is in flight, the rows that arrive wait and go together in the next, and
their threads go on copying), each update conditional on exactly that, with the
counters moved once for all of them. The originals are deleted only after.
A transaction that is cancelled (a row in any other state: already ARCHIVED after an
interrupted run, re-processed since, ...) sends each of its rows down the exact path
(move.mark_row), which reads the row and decides as before. With one copy thread a
transaction holds one row, written before the next object is copied, as before.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError
from common import results, telemetry
from common.clients import results_table

from archiving.layout import Settings, area_of
from archiving.move import RowTarget, mark_target, row_target, with_metadata

# TransactWriteItems takes at most 100 items: the rows, and the counters item once.
MAX_ROWS = 99
# A row is made PROCESSED right after its output is written, and its original is moved
# seconds later (updated_at again): rows are looked for in the index from the oldest
# object's time to this much after the newest. A row updated later still (a duplicate
# delivery's error, say) is not found there and its object takes the HeadObject way.
HINT_WINDOW = timedelta(hours=1)


def row_hints(s: Settings, entries: list[dict]) -> dict[str, RowTarget]:
    """Each entry's row (by the entry's key) as the status index knows it, where it does.

    The `source` metadata names an object's row, but only a HeadObject returns it. A
    PROCESSED row whose output (rejects, thumbnail) names the object is that row too,
    and the index has them all, 1 MB of rows a Query. The index is eventually
    consistent: a hint is used only through RowMarker, whose update is conditional on
    the row still naming the object, and a hint that fails it is dropped (the caller
    reads the metadata then). Without the index (an older table), no hints.
    """
    if not entries:
        return {}
    times = [datetime.fromisoformat(e["last_modified"]) for e in entries]
    wanted = {f"s3://{s.processed_bucket}/{e['key']}": e for e in entries}
    table = results_table(s.results_table)
    query = {"IndexName": results.STATUS_INDEX,
             "KeyConditionExpression": Key("status").eq(results.PROCESSED)
             & Key("updated_at").between((min(times) - timedelta(minutes=1)).isoformat(),
                                         (max(times) + HINT_WINDOW).isoformat()),
             "ProjectionExpression": "#k, #o, #r, #t",
             "ExpressionAttributeNames": {"#k": results.RESULTS_PARTITION_KEY, "#o": "output",
                                          "#r": "rejects", "#t": "thumbnail"}}
    hints: dict[str, RowTarget] = {}
    try:
        while True:
            page = table.query(**query)
            for row in page.get("Items", []):
                for field in ("output", "rejects", "thumbnail"):
                    entry = wanted.get(row.get(field))
                    if entry is not None and area_of(s, entry["key"]).row_field == field:  # type: ignore[union-attr]
                        hints[entry["key"]] = RowTarget(
                            row_key=row[results.RESULTS_PARTITION_KEY], field=field,
                            processed_uri=row[field],
                            archive_uri=f"s3://{s.archive_bucket}/{entry['archive_key']}")
            if "LastEvaluatedKey" not in page:
                return hints
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("ValidationException",
                                                           "ResourceNotFoundException"):
            raise
        return hints


@dataclass
class _Mark:
    entry: dict
    copy: dict
    target: RowTarget


class RowMarker:
    """move.mark_row for the copy threads, their rows batched into transactions.

    submit() hands a verified copy's row over; the thread that finds no transaction in
    flight writes every row waiting (its own and those that came meanwhile) and goes on
    while more wait, the others go back to copying. Each entry ends with status
    "delete" (row marked) or "error" (the original is kept), and its "row" saying what
    happened to the row; flush() writes what is still waiting when the copies are done.
    """

    def __init__(self, s: Settings):
        self._s = s
        self._lock = threading.Lock()
        self._pending: list[_Mark] = []
        self._busy = False

    def submit(self, entry: dict, copy: dict, hint: RowTarget | None) -> None:
        """hint: the entry's row from row_hints, else the copy's metadata names it."""
        target = hint
        if target is None:
            copy = with_metadata(self._s, entry, copy)
            found = row_target(self._s, entry, copy)
            if isinstance(found, str):
                _outcome(entry, found)
                return
            target = found
        with self._lock:
            self._pending.append(_Mark(entry, copy, target))
            if self._busy:
                return
            self._busy = True
        self._drain()

    def flush(self) -> None:
        with self._lock:
            if self._busy:      # only while a copy thread is still at it
                return
            self._busy = True
        self._drain()

    def _drain(self) -> None:
        try:
            while True:
                with self._lock:
                    batch = self._take()
                    if not batch:
                        self._busy = False
                        return
                self._commit(batch)
        except BaseException:
            with self._lock:
                self._busy = False
            raise

    def _take(self) -> list[_Mark]:
        # One transaction may not name an item twice: a row whose output and rejects
        # file are both in the batch waits for the next transaction.
        batch: list[_Mark] = []
        keys, rest = set(), []
        for mark in self._pending:
            if len(batch) < MAX_ROWS and mark.target.row_key not in keys:
                batch.append(mark)
                keys.add(mark.target.row_key)
            else:
                rest.append(mark)
        self._pending = rest
        return batch

    def _commit(self, batch: list[_Mark]) -> None:
        table = results_table(self._s.results_table)
        client = table.meta.client
        items = [{"Update": _update(table.name, m.target, self._s.storage_class)}
                 for m in batch]
        outputs = sum(m.target.field == "output" for m in batch)
        if outputs:
            items.append({"Update": {
                "TableName": table.name,
                "Key": {results.RESULTS_PARTITION_KEY: results.COUNTERS_KEY},
                **results.update_expression({}, {results.ARCHIVED: outputs,
                                                 results.PROCESSED: -outputs}, ())}})
        try:
            client.transact_write_items(TransactItems=items)
        except client.exceptions.TransactionCanceledException:
            # Some row is not in the common state: each takes the exact path.
            for m in batch:
                self._exactly(m)
            return
        except Exception as e:  # noqa: BLE001 - as a failed row write in mark_row would
            for m in batch:
                _failed(m.entry, e)
            return
        for m in batch:
            _outcome(m.entry, f"{m.target.row_key}: ARCHIVED" if m.target.field == "output"
                     else f"{m.target.row_key}: {m.target.field} archived")

    def _exactly(self, m: _Mark) -> None:
        # A hint is checked against the copy's metadata first: it may name another row.
        try:
            copy = with_metadata(self._s, m.entry, m.copy)
            target = row_target(self._s, m.entry, copy)
            _outcome(m.entry, target if isinstance(target, str) else mark_target(self._s, target))
        except Exception as e:  # noqa: BLE001 - one object's failure never stops the others
            _failed(m.entry, e)


def _outcome(entry: dict, row: str) -> None:
    entry["row"] = row
    entry["status"] = "delete"
    # Originals go 1,000 at a time, so "archived" lines come in bursts: this line per
    # verified copy is what lets a progress bar move.
    telemetry.log("INFO", "copied", key=entry["key"], status="COPIED")


def _failed(entry: dict, e: Exception) -> None:
    entry["status"], entry["error"] = "error", f"{type(e).__name__}: {e}"
    telemetry.log("ERROR", "not archived; the original is kept", key=entry["key"],
                  status="ERROR", error=entry["error"])


def _update(table: str, target: RowTarget, storage_class: str) -> dict:
    key = {results.RESULTS_PARTITION_KEY: target.row_key}
    if target.field != "output":
        # A rejects file or thumbnail: only the link moves (see move._relink).
        return {"TableName": table, "Key": key, "UpdateExpression": "SET #f = :to",
                "ConditionExpression": "#f = :from",
                "ExpressionAttributeNames": {"#f": target.field},
                "ExpressionAttributeValues": {":to": target.archive_uri,
                                              ":from": target.processed_uri}}
    # What results.mark_archived writes, from the state mark_target would have read.
    at = results.now_iso()
    update = results.update_expression(
        {"status": results.ARCHIVED, "output": target.archive_uri, "archived_at": at,
         "archived_from": target.processed_uri, "storage_class": storage_class,
         "updated_at": at}, None, ())
    update["ConditionExpression"] = "#c_status = :c_status AND #c_output = :c_output"
    update["ExpressionAttributeNames"].update({"#c_status": "status", "#c_output": "output"})
    update["ExpressionAttributeValues"].update({":c_status": results.PROCESSED,
                                                ":c_output": target.processed_uri})
    return {"TableName": table, "Key": key, **update}
