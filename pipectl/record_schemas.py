"""Record schemas in pipeline.yaml: the contract records must meet after normalization
(required fields, types, allowed values, patterns, bounds), checked by
handlers/processing/schema.py."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipectl.config_reader import Reader
from pipectl.contract import contract

# Record schema field types and rules per field, as handlers/processing/schema.py checks
# them (the names: handlers/common/contract.py).
SCHEMA_TYPES: tuple[str, ...] = contract.SCHEMA_TYPES
SCHEMA_RULES: tuple[str, ...] = contract.SCHEMA_RULES
_FIELD = re.compile(r"^[a-z0-9_]+$")            # a name as normalization leaves it
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_MOMENT = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?"
                     r"([Zz]|[+-]\d{2}:\d{2})?$")


@dataclass(frozen=True)
class RecordSchema:
    """Rules for the records of the files a glob (on the key) or a suffix matches."""

    match: str | None = None
    suffix: str | None = None
    required: tuple[str, ...] = ()
    fields: dict[str, dict] = field(default_factory=dict)  # name -> {type, allowed, ...}
    max_reject_ratio: float = 1.0  # a larger rejected share fails the whole file

    def to_dict(self) -> dict:
        """As handlers/processing/schema.py reads it from RECORD_SCHEMAS."""
        d = {"required": list(self.required), "fields": self.fields,
             "max_reject_ratio": self.max_reject_ratio}
        d.update({k: v for k, v in (("match", self.match), ("suffix", self.suffix)) if v})
        return d


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def field_name(r: Reader, key: str, name) -> bool:
    if not isinstance(name, str) or not _FIELD.match(name):
        r.problem(key, f"must be a lower snake_case field name as normalization writes it, "
                       f"such as 'email_address' (got {name!r})")
        return False
    return True


def parse_schemas(r: Reader, data: dict) -> tuple[RecordSchema, ...]:
    raw = data.get("schemas")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        r.problem("schemas", "must be a list of record schemas")
        return ()
    known = {"match", "suffix", "required", "fields", "max_reject_ratio"}
    found = []
    for i, item in enumerate(raw):
        key = f"schemas[{i}]"
        if not isinstance(item, dict):
            r.problem(key, "must be a mapping with match (or suffix), required, fields")
            continue
        for unknown in sorted(set(map(str, item)) - known):
            r.problem(f"{key}.{unknown}", f"unknown setting (known: {', '.join(sorted(known))})")
        match = r.get(item, f"{key}.match", str, None)
        suffix = r.get(item, f"{key}.suffix", str, None, lambda v: None if
                       re.match(r"^\.[A-Za-z0-9.]+$", v) else "must be a suffix such as '.csv'")
        if match is None and suffix is None and "match" not in item and "suffix" not in item:
            r.problem(key, "needs match (a glob on the key, e.g. 'incoming/orders/*') "
                           "or suffix (e.g. '.csv')")
        required = r.get(item, f"{key}.required", list, [])
        required = [n for j, n in enumerate(required)
                    if field_name(r, f"{key}.required[{j}]", n)]
        ratio = r.get(item, f"{key}.max_reject_ratio", (int, float), 1.0, lambda v: None if
                      _number(v) and 0 <= v <= 1 else "must be a number from 0 to 1")
        fields = {}
        raw_fields = r.get(item, f"{key}.fields", dict, {})
        for name, rules in raw_fields.items():
            fkey = f"{key}.fields.{name}"
            if field_name(r, fkey, name):
                checked = _field_rules(r, fkey, rules)
                if checked is not None:
                    fields[name] = checked
        found.append(RecordSchema(match=match, suffix=suffix, required=tuple(required),
                                  fields=fields, max_reject_ratio=float(ratio)))
    return tuple(found)


def _field_rules(r: Reader, key: str, rules) -> dict | None:
    if not isinstance(rules, dict):
        r.problem(key, f"must be a mapping of rules ({', '.join(SCHEMA_RULES)})")
        return None
    before = len(r.problems)
    for unknown in sorted(set(map(str, rules)) - set(SCHEMA_RULES)):
        r.problem(f"{key}.{unknown}", f"unknown rule (known: {', '.join(SCHEMA_RULES)})")
    kind = r.get(rules, f"{key}.type", str, None, lambda v: None if v in SCHEMA_TYPES else
                 f"must be one of {', '.join(SCHEMA_TYPES)}")
    allowed = r.get(rules, f"{key}.allowed", list, None, lambda v: None if v and all(
        isinstance(a, (str, int, float, bool)) for a in v) else
        "must be a non-empty list of strings, numbers or booleans")
    pattern = r.get(rules, f"{key}.pattern", str, None)
    if pattern is not None:
        try:
            re.compile(pattern)
        except re.error as exc:
            r.problem(f"{key}.pattern", f"is not a valid regular expression: {exc}")
    bounds = {}
    for bound in ("min", "max"):
        if rules.get(bound) is None:
            continue
        value = rules[bound]
        if kind in ("date", "datetime"):
            text = value.isoformat() if hasattr(value, "isoformat") else value
            shape = _DAY if kind == "date" else _MOMENT
            if not isinstance(text, str) or not shape.match(text):
                r.problem(f"{key}.{bound}", f"must be a {kind} such as "
                          f"{'2024-01-31' if kind == 'date' else '2024-01-31T12:00:00Z'} "
                          f"(got {value!r})")
            else:
                bounds[bound] = text
        elif kind == "boolean":
            r.problem(f"{key}.{bound}", "does not apply to booleans")
        elif not _number(value) or (kind == "string" and not isinstance(value, int)):
            what = "a whole number (a length)" if kind == "string" else "a number"
            r.problem(f"{key}.{bound}", f"must be {what} (got {value!r})")
        else:
            bounds[bound] = value
    if len(bounds) == 2 and bounds["min"] > bounds["max"]:
        r.problem(f"{key}.max", f"must not be below min ({bounds['min']!r})")
    if len(r.problems) > before:
        return None
    out: dict = {k: v for k, v in (("type", kind), ("allowed", allowed), ("pattern", pattern))
                 if v is not None}
    return out | bounds
