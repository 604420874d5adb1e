"""Records -> Parquet, one row group at a time, streamed to the caller's `write`.

Only output_format.Encoding imports this module, and only for `format: parquet`, so
pyarrow is loaded (and packaged) only by a pipeline that asks for Parquet.

Types. A field a `schemas:` entry types gets that type (string, integer -> int64,
number -> double, boolean, date -> date32, datetime -> timestamp[us, UTC]; a CSV
value spelling the type is converted as the schema's validator reads it). Every
other field gets the type its values have in the first row group: the type most of
them have, with an integer column widened to double when floats are among them.
After that the schema is fixed: a record whose value the column cannot hold exactly
(a string in an integer column, an integer past 2**53 in a double column, a field the
first row group never had) goes to rejects/ with the reason, never cast. `_metadata`
is a struct column (processed_at as a timestamp).

Memory: the records of one row group, their Arrow columns, and whatever the Parquet
writer holds of the row group being written; `write` receives the bytes as each row
group is written, so the multipart upload sends parts as they fill.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq

from processing import schema
from processing.jsonl_writer import Counts

DECLARED = {"string": pa.string(), "integer": pa.int64(), "number": pa.float64(),
            "boolean": pa.bool_(), "date": pa.date32(),
            "datetime": pa.timestamp("us", tz="UTC")}
METADATA_TYPE = pa.struct([("processed_at", pa.timestamp("us", tz="UTC")),
                           ("environment", pa.string()), ("processor_version", pa.string()),
                           ("source", pa.string())])
_INT64 = (-2 ** 63, 2 ** 63 - 1)
_EXACT_FLOAT = 2 ** 53                  # integers up to this are exact as a double
# Types whose values need no conversion and fit when their class is exactly this one
# (bool is no int here, an int no float): checked for a whole column at once.
_SAME_CLASS = {pa.string(): str, pa.bool_(): bool, pa.float64(): float}
_WORDS = {pa.string(): "a string", pa.int64(): "an integer", pa.float64(): "a number",
          pa.bool_(): "true or false", pa.date32(): "a date",
          pa.timestamp("us", tz="UTC"): "a date-time"}


class _Sink:
    """A write-only file for pyarrow: bytes go straight on to the object writer."""

    closed = False

    def __init__(self, write: Callable[[bytes], None]):
        self._write = write
        self.position = 0

    def write(self, data) -> int:
        data = bytes(data)
        self._write(data)
        self.position += len(data)
        return len(data)

    def tell(self) -> int:
        return self.position

    def flush(self) -> None:
        pass

    def writable(self) -> bool:
        return True


def _describe(t: pa.DataType) -> str:
    return _WORDS.get(t, f"a {t}")


def _show(value) -> str:
    return schema._show(value)


# value -> (fits the column, the value as stored)
Fit = Callable[[object], tuple[bool, object]]


def _scalar_fit(t: pa.DataType) -> Fit | None:
    """(fits, value as stored) for the scalar types; None for nested types."""
    if t == pa.string():
        return lambda v: (v.__class__ is str, v)
    if t == pa.bool_():
        return lambda v: (v.__class__ is bool, v)
    if t == pa.int64():
        return lambda v: (v.__class__ is int and _INT64[0] <= v <= _INT64[1], v)
    if t == pa.float64():
        return lambda v: ((True, v) if v.__class__ is float else
                          (v.__class__ is int and -_EXACT_FLOAT <= v <= _EXACT_FLOAT, v))
    if t == pa.date32():
        return lambda v: (v.__class__ is date, v)
    if pa.types.is_timestamp(t):
        return lambda v: (v.__class__ is datetime, v)
    return None


def _declared_fit(kind: str, strings: bool) -> Fit:
    typed = schema._typed(kind, strings)
    store = _scalar_fit(DECLARED[kind])

    def fit(v):
        ok, value = typed(v)
        if not ok:
            return False, v
        if kind == "number" and value.__class__ is int:
            return store(value)
        if kind == "datetime" and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)  # no offset: UTC, as schema.py reads it
        return store(value) if kind != "datetime" else (True, value)

    return fit


def _kind(v) -> str:
    return "nested" if isinstance(v, (dict, list)) else v.__class__.__name__


def _inferred(values: list) -> pa.DataType:
    """The column type most of the first row group's values have."""
    kinds: dict[str, int] = {}
    for v in values:
        kinds[_kind(v)] = kinds.get(_kind(v), 0) + 1
    if "int" in kinds and "float" in kinds:
        kinds["float"] += kinds.pop("int")       # 1 and 1.5 in one column: numbers
    top = max(kinds, key=lambda k: kinds[k])     # ties: the first seen (dicts keep order)
    simple = {"str": pa.string(), "bool": pa.bool_(), "int": pa.int64(),
              "float": pa.float64()}
    if top in simple:
        return simple[top]
    nested = [v for v in values if _kind(v) == "nested"]
    try:
        return pa.array(nested).type
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(nested[:1]).type         # mixed shapes: the first one's wins


def _strip_nulls(value):
    """What a nested value read back from Arrow looks like with its absent fields gone
    (normalization already dropped nulls and empties from the record)."""
    if isinstance(value, dict):
        return {k: _strip_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_strip_nulls(v) for v in value]
    return value


def _nested_fit(t: pa.DataType) -> Fit:
    return lambda v: (_nested_fits(v, t), v)


def _nested_fits(value, t: pa.DataType) -> bool:
    try:
        stored = pa.array([value], type=t).to_pylist()[0]
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        return False
    # A struct drops keys it has no field for, and ints would pass as floats: only an
    # exact round trip (types included) counts as fitting.
    return _same(_strip_nulls(stored), value)


def _same(a, b) -> bool:
    if a.__class__ is not b.__class__:
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    return a == b


class RowGroups:
    """The writer transform.process_stream fills: add() records, a row group per
    `row_group_rows`, close() writes the footer."""

    def __init__(self, write: Callable[[bytes], None], metadata: dict, counts: Counts, *,
                 compression: str, row_group_rows: int, declared: Mapping[str, Mapping],
                 strings: bool, reject: Callable[[dict, list], None]):
        self._sink = _Sink(write)
        self._counts = counts
        self._compression = compression
        self.flush_lines = row_group_rows
        self._declared = {name: rules["type"] for name, rules in declared.items()
                          if rules.get("type")}
        self._strings = strings
        self._reject = reject
        self._rows: list[dict] = []
        self._schema: pa.Schema | None = None
        self._fits: dict[str, Fit] = {}
        self._writer: pq.ParquetWriter | None = None
        self._first_rows = 0
        self._metadata_rows: pa.Array | None = None
        meta = dict(metadata)
        meta["processed_at"] = datetime.fromisoformat(meta["processed_at"])
        self._metadata = {k: meta.get(k) for k in METADATA_TYPE.names}

    def add(self, record: dict) -> None:
        self._rows.append(record)
        if len(self._rows) >= self.flush_lines:
            self.flush()

    # The JSON Lines fast path's records (transform.py) hold values, not text: Parquet
    # encodes them like any other record.
    add_plain = add

    def flush(self) -> None:
        rows, self._rows = self._rows, []
        if not rows:
            return
        if self._schema is None:
            self._schema = self._infer(rows)
        table = self._table(rows, self._schema)
        if table.num_rows:
            self._open().write_table(table, row_group_size=table.num_rows)
            self._counts.records_out += table.num_rows
        del table
        # Arrow's allocator keeps freed pages for reuse; a Lambda's memory is the limit
        # that matters here, so they go back after each row group.
        pa.default_memory_pool().release_unused()

    def close(self) -> None:
        self.flush()
        if self._schema is None:
            self._schema = self._infer([])      # no record: the declared columns only
        self._open().close()

    def _open(self) -> pq.ParquetWriter:
        if self._writer is None:
            self._writer = pq.ParquetWriter(pa.PythonFile(self._sink, mode="w"), self._schema,
                                            compression=self._compression)
        return self._writer

    def _infer(self, rows: list[dict]) -> pa.Schema:
        """The file's schema, from the declared types and the first row group's values;
        each column's fit goes to self._fits."""
        self._first_rows = len(rows)
        names = dict.fromkeys(self._declared)
        for record in rows:
            names.update(dict.fromkeys(record))
        fields = []
        for name in names:
            if name == "_metadata":
                continue
            if name in self._declared:
                kind = self._declared[name]
                t, fit = DECLARED[kind], _declared_fit(kind, self._strings)
            else:
                t = _inferred([r[name] for r in rows if name in r])
                fit = _scalar_fit(t) or _nested_fit(t)
            fields.append(pa.field(name, t))
            self._fits[name] = fit
        return pa.schema([*fields, pa.field("_metadata", METADATA_TYPE)])

    def _table(self, rows: list[dict], schema: pa.Schema) -> pa.Table:
        """The row group's columns; a record any of whose values does not fit is rejected
        whole (with every reason), so no row is half written."""
        data = schema.remove(schema.get_field_index("_metadata"))
        known = frozenset(data.names)
        reasons: dict[int, list[str]] = {}
        for i, record in enumerate(rows):
            if not known.issuperset(record):
                reasons[i] = [self._unknown(n) for n in record if n not in known]
        if not reasons and all(f.type in _SAME_CLASS and f.type != pa.float64() for f in data):
            # Only string and boolean columns: Arrow's own conversion refuses every value
            # of another JSON type (ArrowTypeError / ArrowInvalid), so it checks in C.
            try:
                table = pa.Table.from_pylist(rows, schema=data)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                pass                        # find the records that do not fit, below
            else:
                return table.append_column(schema.field("_metadata"),
                                           self._metadata_column(len(rows)))
        columns = []
        for f in data:
            values = [record.get(f.name) for record in rows]
            same = _SAME_CLASS.get(f.type)
            if same is not None and all(v is None or v.__class__ is same for v in values):
                columns.append(values)      # nothing to convert: the common case, in C
                continue
            fit = self._fits[f.name]
            stored: list[object] = []
            for i, value in enumerate(values):
                if value is None:
                    stored.append(None)
                    continue
                ok, value_t = fit(value)
                stored.append(value_t)
                if not ok:
                    reasons.setdefault(i, []).append(
                        f"{f.name}: expected {_describe(f.type)} (the column's Parquet type), "
                        f"got {_show(value)}")
            columns.append(stored)
        if reasons:
            for i in sorted(reasons):
                self._reject(rows[i], reasons[i])
            keep = [i for i in range(len(rows)) if i not in reasons]
            columns = [[column[i] for i in keep] for column in columns]
        kept = len(rows) - len(reasons)
        arrays = [pa.array(column, type=f.type) for column, f in zip(columns, data, strict=True)]
        arrays.append(self._metadata_column(kept))
        return pa.Table.from_arrays(arrays, schema=schema)

    def _metadata_column(self, rows: int) -> pa.Array:
        # The same struct on every row: built once for a whole row group, then sliced.
        if self._metadata_rows is None or len(self._metadata_rows) < rows:
            self._metadata_rows = pa.array([self._metadata] * max(rows, self.flush_lines),
                                           type=METADATA_TYPE)
        return self._metadata_rows.slice(0, rows)

    def _unknown(self, name: str) -> str:
        if name == "_metadata":
            return "_metadata: the name of the processor's own column"
        return (f"{name}: not a column of this file's Parquet schema (its columns are the "
                f"schema's fields and those of the first {self._first_rows} records)")
