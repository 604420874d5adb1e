"""Results rows of archived objects, marked many in one transaction.

Each object's row would cost a GetItem and a transaction of its own (results._transition
reads the row to learn its status). The common case needs no read: the row is PROCESSED
and its output is still the object being archived (a rejects file's or thumbnail's row
still links to it). So the copy threads hand their rows to a RowMarker, which writes
every row waiting at that moment in one TransactWriteItems (group commit: while one
transaction is in flight, the rows that arrive wait and go together in the next),
each update conditional on exactly that, with the counters moved once for all of them.
A transaction that is cancelled (a row in any other state: already ARCHIVED after an
interrupted run, re-processed since, ...) sends each of its rows down the exact path
(move.mark_target), which reads the row and decides as before. With one copy thread a
transaction holds one row, written before the next object is copied, as before.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from common import results
from common.clients import results_table

from archiving.layout import Settings
from archiving.move import RowTarget, mark_target, row_target

# TransactWriteItems takes at most 100 items: the rows, and the counters item once.
MAX_ROWS = 99


@dataclass
class _Mark:
    target: RowTarget
    done: bool = False
    result: str | None = None  # None when done: take the exact path
    error: BaseException | None = None


class RowMarker:
    """move.mark_row for many threads at once, their rows batched into transactions."""

    def __init__(self, s: Settings):
        self._s = s
        self._cond = threading.Condition()
        self._pending: list[_Mark] = []
        self._busy = False
        self.transactions = 0

    def mark(self, entry: dict, copy: dict) -> str:
        target = row_target(self._s, entry, copy)
        if isinstance(target, str):
            return target
        mark = _Mark(target)
        with self._cond:
            self._pending.append(mark)
            while not mark.done:
                if self._busy:
                    self._cond.wait()
                    continue
                self._busy = True
                batch = self._take()
                self._cond.release()
                try:
                    self._commit(batch)
                finally:
                    self._cond.acquire()
                    self._busy = False
                    self._cond.notify_all()
        if mark.error is not None:
            raise mark.error
        return mark.result if mark.result is not None else mark_target(self._s, target)

    def _take(self) -> list[_Mark]:
        # One transaction may not name an item twice: a row whose output and rejects
        # file are both in the batch waits for the next transaction.
        batch, keys, rest = [], set(), []
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
            self.transactions += 1
            client.transact_write_items(TransactItems=items)
            for m in batch:
                m.result = (f"{m.target.row_key}: ARCHIVED" if m.target.field == "output"
                            else f"{m.target.row_key}: {m.target.field} archived")
        except client.exceptions.TransactionCanceledException:
            pass  # some row is not in the common state: every row of it takes the exact path
        except BaseException as e:
            for m in batch:
                m.error = e
            raise
        finally:
            for m in batch:
                m.done = True


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
