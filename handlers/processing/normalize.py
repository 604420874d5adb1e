"""Record normalization: snake_case field names, empty values dropped (and counted)."""

from __future__ import annotations

import re

from processing.limits import LIMIT_DEFAULTS, PermanentError

# --- field names -----------------------------------------------------------------

_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")      # "HTTPStatus" -> "HTTP_Status"
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")           # "firstName"  -> "first_Name"
_SEPARATORS = re.compile(r"[\W_]+")                 # spaces, hyphens, punctuation
_names: dict[str, str] = {}


def snake_case(name: str) -> str:
    """'User Name' -> 'user_name', 'HTTPStatus Code' -> 'http_status_code'. Cached."""
    try:
        return _names[name]
    except KeyError:
        pass
    converted = _CAMEL.sub(r"\1_\2", _ACRONYM.sub(r"\1_\2", name.strip()))
    converted = _SEPARATORS.sub("_", converted).strip("_").lower() or "_"
    if len(_names) < 100_000:   # JSON keys are data; don't let odd files grow the cache forever
        _names[name] = converted
    return converted


# --- records ---------------------------------------------------------------------

def _is_empty(value) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value or value.isspace()
    if isinstance(value, (list, dict)):
        return not value
    return False


class TooDeep(PermanentError):
    """A record nests objects/arrays deeper than MAX_NESTING_DEPTH (the caller adds where)."""


class FloatSeen(Exception):
    """normalize(floats=False) met a float: the record must be read by the exact rules."""


def normalize(record: dict, max_depth: int = LIMIT_DEFAULTS["MAX_NESTING_DEPTH"],
              floats: bool = True) -> tuple[dict, int]:
    """Drop null/blank/empty values (counted) and snake_case the keys, recursively.

    The record itself is depth 1; a non-empty object or array inside it one more.
    Two keys that become the same name ("User Name", "user_name") are kept apart as
    CSV headers are: the later one gets a suffix, "user_name_2".
    floats=False: raise FloatSeen at the first float (json_reader's fast path).
    """
    out = {}
    dropped = 0
    skipped = 0
    names = _names
    for key, value in record.items():
        # Exact classes first (what a JSON parser makes), no call per value: this loop
        # is most of the time a JSON Lines record takes.
        cls = value.__class__
        if cls is str:
            if not value or value.isspace():
                dropped += 1
                skipped += 1
                continue
        elif value is None:
            dropped += 1
            skipped += 1
            continue
        elif cls is float:
            if not floats:
                raise FloatSeen
        elif cls is not int and cls is not bool:
            if isinstance(value, dict) and value:
                if max_depth <= 1:
                    raise TooDeep(max_depth)
                value, inner = normalize(value, max_depth - 1, floats)
                dropped += inner
                if not value:           # every value inside was empty
                    skipped += 1
                    continue
            elif isinstance(value, list) and value:
                if max_depth <= 1:
                    raise TooDeep(max_depth)
                value, inner = _normalize_list(value, max_depth - 1, floats)
                dropped += inner
            elif _is_empty(value):
                dropped += 1
                skipped += 1
                continue
        try:
            out[names[key]] = value
        except KeyError:
            out[snake_case(key)] = value
    if len(out) + skipped != len(record):      # rare: two keys became one name
        out = _renamed_apart(record, max_depth)
    return out, dropped


def _renamed_apart(record: dict, max_depth: int) -> dict:
    # The slow path, only for a record whose keys collided: one key at a time, in order.
    out: dict = {}
    for key, value in record.items():
        kept, _ = normalize({key: value}, max_depth)
        if kept:
            ((name, value),) = kept.items()
            candidate, n = name, 1
            while candidate in out:
                n += 1
                candidate = f"{name}_{n}"
            out[candidate] = value
    return out


def _normalize_list(values: list, max_depth: int, floats: bool = True) -> tuple[list, int]:
    # Elements keep their positions (a list is data, not a record); only the
    # dicts inside are normalized.
    dropped = 0
    out = []
    for value in values:
        if isinstance(value, dict):
            if value:
                if max_depth <= 1:
                    raise TooDeep(max_depth)
                value, inner = normalize(value, max_depth - 1, floats)
                dropped += inner
        elif isinstance(value, list):
            if value:
                if max_depth <= 1:
                    raise TooDeep(max_depth)
                value, inner = _normalize_list(value, max_depth - 1, floats)
                dropped += inner
        elif not floats and value.__class__ is float:
            raise FloatSeen
        out.append(value)
    return out, dropped
