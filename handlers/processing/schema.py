"""Record schemas: which records of a file are valid, and every reason why not.

pipeline.yaml's `schemas:` list reaches the processor as one environment variable,
RECORD_SCHEMAS (JSON, written by deploy from the validated config). The first
schema whose `match` glob (on the object key) or `suffix` fits a file applies to
it. Rules are checked after normalization, so field names are the snake_case
ones and empty values are already gone: `required` also catches "" and null.

Each schema is compiled once per file into a list of small checks per field; a
record is checked in one pass that collects every reason, never only the first.
(A JSON Schema Draft 2020-12 validator was measured against this on 200k records:
see bench/validate.py and the report in the module docstring there.)

CSV values are all strings, so for a CSV file a string that spells the declared
type counts as that type ("42" is an integer, "true" a boolean), and min/max and
allowed compare the value it spells. JSON values must have the type itself.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from common import contract

ENV_VARIABLE = contract.RECORD_SCHEMAS
TYPES = contract.SCHEMA_TYPES     # what pipectl validate accepts in pipeline.yaml, too
RULES = contract.SCHEMA_RULES
MAX_SHOWN = 40                       # characters of a bad value quoted in a reason

_INTEGER = re.compile(r"^[+-]?\d+$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# RFC 3339 / ISO 8601 with seconds; the offset may be left out (taken as UTC by readers).
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?"
                       r"([Zz]|[+-]\d{2}:\d{2})?$")
_BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True)
class Schema:
    match: str | None = None           # glob on the whole object key
    suffix: str | None = None          # or a suffix such as ".csv" (case-insensitive)
    required: tuple[str, ...] = ()
    fields: Mapping[str, Mapping] = field(default_factory=dict)
    max_reject_ratio: float = 1.0      # a larger rejected share fails the whole file

    def applies_to(self, key: str) -> bool:
        if self.match is not None and not fnmatch.fnmatchcase(key, self.match):
            return False
        return self.suffix is None or key.lower().endswith(self.suffix.lower())

    @classmethod
    def from_dict(cls, d: Mapping) -> Schema:
        return cls(match=d.get("match"), suffix=d.get("suffix"),
                   required=tuple(d.get("required") or ()), fields=dict(d.get("fields") or {}),
                   max_reject_ratio=float(d.get("max_reject_ratio", 1.0)))

    def to_dict(self) -> dict:
        d = {"required": list(self.required), "fields": {k: dict(v) for k, v in
                                                          self.fields.items()},
             "max_reject_ratio": self.max_reject_ratio}
        if self.match is not None:
            d["match"] = self.match
        if self.suffix is not None:
            d["suffix"] = self.suffix
        return d


def load(environ: Mapping[str, str]) -> list[Schema]:
    """The schemas deploy passed in RECORD_SCHEMAS; [] when unset."""
    raw = (environ.get(ENV_VARIABLE) or "").strip()
    if not raw:
        return []
    data = json.loads(raw)
    if not isinstance(data, list):
        raise ValueError(f"{ENV_VARIABLE}: expected a JSON list of schemas")
    return [Schema.from_dict(d) for d in data]


def dumps(schemas: list[Schema]) -> str:
    return json.dumps([s.to_dict() for s in schemas], sort_keys=True, separators=(",", ":"))


def schema_for(key: str, schemas: list[Schema]) -> Schema | None:
    return next((s for s in schemas if s.applies_to(key)), None)


# --- compiled checks -----------------------------------------------------------------

def _show(value) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN - 3] + "..."


def _parse_date(value: str):
    return date.fromisoformat(value) if _DATE.match(value) else None


def _parse_datetime(value: str):
    if not _DATETIME.match(value):
        return None
    text = value.replace("t", "T").replace("z", "+00:00").replace("Z", "+00:00")
    return datetime.fromisoformat(text)


def _typed(kind: str, strings: bool) -> Callable[[object], tuple[bool, object]]:
    """(ok, the value as its type) for one declared type; strings: CSV rules."""

    def string(v):
        return (v.__class__ is str, v)

    def integer(v):
        if v.__class__ is int:
            return True, v
        if strings and v.__class__ is str and _INTEGER.match(v):
            return True, int(v)
        return False, v

    def number(v):
        if v.__class__ is int or v.__class__ is float:
            return True, v
        if strings and v.__class__ is str and _NUMBER.match(v):
            return True, float(v) if any(c in v for c in ".eE") else int(v)
        return False, v

    def boolean(v):
        if v.__class__ is bool:
            return True, v
        if strings and v.__class__ is str and v.lower() in _BOOLEANS:
            return True, _BOOLEANS[v.lower()]
        return False, v

    def parsed(parse):
        def check(v):
            if v.__class__ is not str:
                return False, v
            try:
                found = parse(v)
            except ValueError:          # 2024-02-30: the right shape, not a real day
                return False, v
            return (found is not None), found
        return check

    return {"string": string, "integer": integer, "number": number, "boolean": boolean,
            "date": parsed(_parse_date), "datetime": parsed(_parse_datetime)}[kind]


_ARTICLE = {"string": "a string", "integer": "an integer", "number": "a number",
            "boolean": "true or false", "date": "a date (YYYY-MM-DD)",
            "datetime": "a date-time (YYYY-MM-DDThh:mm:ss, optional offset)"}


def _bound(kind: str | None, raw, strings: bool):
    """A min/max from the config as the type compares it (dates parsed)."""
    if kind == "date":
        return _parse_date(str(raw))
    if kind == "datetime":
        return _parse_datetime(str(raw))
    return raw


def _field_check(name: str, rules: Mapping, strings: bool) -> Callable[[object, list], None]:
    kind = rules.get("type")
    typed = _typed(kind, strings) if kind else None
    allowed = rules.get("allowed")
    allowed_set = None
    if allowed is not None:
        try:
            allowed_set = frozenset(allowed)
        except TypeError:
            allowed_set = None
    allowed_text = ", ".join(str(a) for a in (allowed or ()))
    pattern = re.compile(rules["pattern"]) if rules.get("pattern") else None
    low, high = rules.get("min"), rules.get("max")
    low_v, high_v = _bound(kind, low, strings), _bound(kind, high, strings)
    # Strings (and values of no declared type that are strings) compare by length.
    by_length = kind == "string"
    expected = _ARTICLE.get(kind or "", "")

    def check(value, reasons: list) -> None:
        if typed is not None:
            ok, value_t = typed(value)
            if not ok:
                reasons.append(f"{name}: expected {expected}, got {_show(value)}")
                return
        else:
            value_t = value
        if allowed is not None:
            found = (value_t in allowed_set if allowed_set is not None and
                     value_t.__class__ is not dict and value_t.__class__ is not list
                     else value_t in allowed)
            # True == 1 in Python; a boolean is not the integer 1 here.
            if found and value_t.__class__ is bool and not any(a is value_t for a in allowed):
                found = False
            if not found:
                reasons.append(f"{name}: {_show(value)} is not one of {allowed_text}")
        if pattern is not None and value.__class__ is str and not pattern.search(value):
            reasons.append(f"{name}: {_show(value)} does not match {pattern.pattern!r}")
        if low is not None or high is not None:
            measured = len(value_t) if by_length and value_t.__class__ is str else value_t
            try:
                if low is not None and measured < low_v:
                    reasons.append(f"{name}: {_show(value)} is "
                                   f"{'shorter than' if by_length else 'below'} the minimum "
                                   f"{low}")
                if high is not None and measured > high_v:
                    reasons.append(f"{name}: {_show(value)} is "
                                   f"{'longer than' if by_length else 'above'} the maximum "
                                   f"{high}")
            except TypeError:           # min/max on a value of no comparable type
                reasons.append(f"{name}: {_show(value)} cannot be compared with min/max")

    return check


class Validator:
    """One schema compiled for one file; `reasons(record)` is [] for a valid record."""

    def __init__(self, schema: Schema, *, strings: bool = False):
        self.schema = schema
        self._required = tuple(schema.required)
        self._checks = tuple((name, _field_check(name, rules, strings))
                             for name, rules in schema.fields.items())

    def reasons(self, record: dict) -> list[str]:
        reasons: list[str] = []
        for name in self._required:
            if name not in record:
                reasons.append(f"{name}: required but missing or empty")
        get = record.get
        for name, check in self._checks:
            value = get(name)
            if value is not None:
                check(value, reasons)
        return reasons


def too_many_rejected(schema: Schema, rejected: int, total: int) -> str | None:
    """The FAILED reason when the rejected share passes max_reject_ratio, else None."""
    if total == 0 or rejected / total <= schema.max_reject_ratio:
        return None
    return (f"{rejected} of {total} records ({rejected / total:.0%}) failed the record schema; "
            f"at most {schema.max_reject_ratio:.0%} may be rejected (max_reject_ratio)")


class Screen:
    """What happens to each normalized record of one file: validated, rejected or accepted.

    `accept(record)` is transform.process_stream's hook: False keeps the record out of
    the output (it goes to the rejects file with its reasons), True lets it through
    (and into the record sink, if there is one). `open_rejects()` makes the rejects
    writer (an object with write/close/abort) on the first rejected record only.
    """

    def __init__(self, validator: Validator | None, open_rejects, sink=None,
                 metadata: dict | None = None):
        self._validator = validator
        self._open_rejects = open_rejects
        self._sink = sink
        self._metadata = metadata
        self._rejects: Any = None  # the rejects file, opened on the first reject
        self.rejected = 0
        self.seen = 0

    @property
    def active(self) -> bool:
        return self._validator is not None or self._sink is not None

    def accept(self, record: dict) -> bool:
        self.seen += 1
        if self._validator is not None:
            reasons = self._validator.reasons(record)
            if reasons:
                self.reject(record, reasons)
                return False
        if self._sink is not None:
            item = dict(record, _metadata=self._metadata) if self._metadata else record
            self._sink.put(item, self.seen)
        return True

    def reject(self, record: dict, reasons: list[str]) -> None:
        """The record goes to the rejects file with its reasons (also for a record the
        output format's types cannot hold: parquet_writer.py)."""
        self.rejected += 1
        if self._rejects is None:
            self._rejects = self._open_rejects()
        line = json.dumps({"record": record, "reasons": reasons}, ensure_ascii=False,
                          separators=(",", ":"))
        self._rejects.write(line.encode("utf-8", "surrogatepass") + b"\n")

    def finish(self) -> None:
        """Flush the sink and close the rejects file (before the output is closed)."""
        if self._sink is not None:
            self._sink.flush()
        if self._rejects is not None:
            rejects, self._rejects = self._rejects, None
            rejects.close()

    def abort(self) -> None:
        if self._rejects is not None:
            rejects, self._rejects = self._rejects, None
            rejects.abort()
