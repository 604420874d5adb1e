"""The fetcher's request files and responses: strict parsing, JSON pointers. No AWS here."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from urllib.parse import urlencode, urlsplit, urlunsplit

import yaml

from fetching.safe_http import PermanentError, ascii_url

REQUEST_SUFFIXES = {".json": "json", ".yaml": "yaml", ".yml": "yaml"}
MAX_REQUEST_FILE_BYTES = 64 * 1024
REQUEST_FIELDS = ("url", "method", "headers", "query", "records", "name")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True)
class FetchRequest:
    url: str
    name: str
    headers: dict = field(default_factory=dict)
    query: dict = field(default_factory=dict)
    records: str | None = None

    @property
    def full_url(self) -> str:
        """The URL with `query` appended to any query string it already has."""
        parts = urlsplit(self.url)
        added = urlencode({k: [_text(x) for x in (v if isinstance(v, list) else [v])]
                           for k, v in self.query.items()}, doseq=True)
        query = "&".join(q for q in (parts.query, added) if q)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def parse_request(key: str, body: bytes) -> FetchRequest:
    """Parse and strictly validate a request file; PermanentError says what is wrong."""
    path = PurePosixPath(key)
    suffix = path.suffix.lower()
    if suffix not in REQUEST_SUFFIXES:
        raise PermanentError(f"unsupported request file type {suffix or '(none)'!r}: "
                             "expected .json, .yaml or .yml")
    if len(body) > MAX_REQUEST_FILE_BYTES:
        raise PermanentError(f"request file is larger than {MAX_REQUEST_FILE_BYTES} bytes")
    try:
        text = body.decode("utf-8-sig")
        doc = json.loads(text) if REQUEST_SUFFIXES[suffix] == "json" else yaml.safe_load(text)
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as e:
        raise PermanentError(f"request file is not valid {REQUEST_SUFFIXES[suffix].upper()}: "
                             f"{str(e).splitlines()[0] if str(e) else e}") from None
    if not isinstance(doc, dict):
        raise PermanentError("request file must hold an object with at least 'url'")
    unknown = sorted(str(k) for k in doc if k not in REQUEST_FIELDS)
    if unknown:
        raise PermanentError(f"unknown field(s) {', '.join(map(repr, unknown))} in the request "
                             f"(allowed: {', '.join(REQUEST_FIELDS)})")
    url = doc.get("url")
    if not isinstance(url, str) or not url.strip():
        raise PermanentError("'url' is required and must be a non-empty string")
    method = doc.get("method", "GET")
    if not isinstance(method, str) or method.upper() != "GET":
        raise PermanentError(f"method {method} not supported (only GET)")
    headers = _string_map(doc.get("headers"), "headers")
    for name, value in headers.items():
        if not _HEADER_NAME.match(name) or "\r" in value or "\n" in value:
            raise PermanentError(f"headers: {name!r} is not a valid header")
    query = doc.get("query") or {}
    if not isinstance(query, dict):
        raise PermanentError("'query' must be a mapping of parameter to value(s)")
    for k, v in query.items():
        values = v if isinstance(v, list) else [v]
        if not isinstance(k, str) or not all(_scalar(x) for x in values):
            raise PermanentError(f"query: {k!r} must map to a string, number, boolean "
                                 "or a list of them")
    records = doc.get("records")
    if records is not None and (not isinstance(records, str)
                                or (records and not records.startswith("/"))):
        raise PermanentError(f"'records' must be a JSON pointer such as '/data/items', "
                             f"not {records!r}")
    name = doc.get("name", path.name[: -len(path.suffix)] if path.suffix else path.name)
    if not isinstance(name, str):
        raise PermanentError("'name' must be a string")
    safe = sanitize_name(name)
    if not safe:
        raise PermanentError(f"'name' {name!r} has no usable characters ([A-Za-z0-9._-])")
    return FetchRequest(url=ascii_url(url.strip()), name=safe, headers=headers, query=query,
                        records=records)


def sanitize_name(name: str) -> str:
    return _UNSAFE_NAME.sub("-", name).strip("-.")[:100]


def extract(body: bytes, content_type: str, pointer: str | None) -> bytes:
    """The bytes to write: the body as is, or the JSON value at `pointer`."""
    try:
        doc = json.loads(body.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise PermanentError(f"response is not JSON (content-type "
                             f"{content_type or 'not given'})") from None
    if pointer is None:
        return body
    value = resolve_pointer(doc, pointer)
    if not isinstance(value, (list, dict)):
        raise PermanentError(f"records {pointer!r} is a {type(value).__name__}, "
                             "expected a list or an object")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def resolve_pointer(doc, pointer: str):
    """RFC 6901: "" is the whole document; "~1" is "/" and "~0" is "~" in a token."""
    value, seen = doc, ""
    for token in pointer.split("/")[1:] if pointer else []:
        token = token.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict) and token in value:
            value = value[token]
        elif isinstance(value, list) and token.isdigit() and int(token) < len(value) \
                and (token == "0" or not token.startswith("0")):
            value = value[int(token)]
        else:
            raise PermanentError(f"records {pointer!r}: nothing at {token!r} under "
                                 f"{seen or 'the top'} of the response")
        seen += "/" + token
    return value


def _string_map(value, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and _scalar(v)
                                              for k, v in value.items()):
        raise PermanentError(f"'{what}' must be a mapping of names to strings")
    return {k: str(v) for k, v in value.items()}


def _scalar(value) -> bool:
    return isinstance(value, (str, int, float, bool))


def _text(value) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)
