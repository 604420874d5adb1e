"""`pipectl fetch`: write an HTTP fetch request file and upload it under the raw bucket's fetch/.

The fetcher function (handlers/fetcher.py) does the calling; this only builds and
checks the request, so a bad URL or option is a usage error before any AWS call.
A URL with non-ASCII characters is written as HTTP sends it (see ascii_url).
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from pipectl.aws import s3
from pipectl.contract import contract
from pipectl.errors import UsageError

FETCH_PREFIX = "fetch/"      # the fetcher's S3 notification filter; see handlers/fetcher.py
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")     # as the fetcher sanitizes names
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True)
class FetchRequest:
    url: str
    name: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, Any] = field(default_factory=dict)
    records: str | None = None

    def document(self) -> dict[str, Any]:
        """The request file's content (fields left out when empty)."""
        doc: dict[str, Any] = {"url": self.url, "method": self.method, "name": self.name}
        if self.headers:
            doc["headers"] = dict(self.headers)
        if self.query:
            doc["query"] = dict(self.query)
        if self.records is not None:
            doc["records"] = self.records
        return doc


@dataclass(frozen=True)
class FetchSubmission:
    bucket: str
    request_key: str
    request: dict[str, Any]


def build_request(url: str, *, name: str | None = None, records: str | None = None,
                  headers: Sequence[str] = (), query: Sequence[str] = ()) -> FetchRequest:
    """Check the command line's pieces and make the request; UsageError names what is wrong."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise UsageError(f"'{url}' is not a valid URL: {exc}") from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise UsageError(f"'{url}' is not an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise UsageError("credentials in the URL are not supported: use --header")
    url = ascii_url(url)
    if records is not None and records and not records.startswith("/"):
        raise UsageError(f"--records: '{records}' is not a JSON pointer (e.g. /data/items)")
    chosen = sanitize_name(name if name is not None else _name_from(parts.path, parts.hostname))
    if not chosen:
        raise UsageError(f"--name: '{name}' has no usable characters (A-Z a-z 0-9 . _ -)")
    return FetchRequest(url=url, name=chosen, headers=_headers(headers), query=_query(query),
                        records=records)


def submit(client: Any, bucket: str, request: FetchRequest,
           prefix: str = FETCH_PREFIX) -> FetchSubmission:
    """Upload the request file to s3://bucket/<prefix><name>.json, which triggers the fetcher."""
    key = f"{prefix}{request.name}.json"
    document = request.document()
    with tempfile.TemporaryDirectory(prefix="pipectl-fetch-") as tmp:
        path = Path(tmp) / "request.json"
        path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        s3.upload_file(client, path, bucket, key)
    return FetchSubmission(bucket=bucket, request_key=key, request=document)


def ascii_url(url: str) -> str:
    """The URL as HTTP sends it: a non-ASCII host IDNA-encoded (xn--...), path, query and
    fragment percent-encoded as UTF-8, exactly as the fetcher encodes it (the encoding is
    the handlers' contract.ascii_url); UsageError for a host that has no such form."""
    try:
        return contract.ascii_url(url)
    except contract.UnencodableHost as exc:
        if exc.deviation:
            # Python's codec is IDNA 2003, which maps these away (straße -> strasse); IDNA
            # 2008, which registries use, keeps them: another domain. Refused, not guessed.
            raise UsageError(f"'{exc.host}': IDNA 2003 and 2008 encode ß, ς, ZWJ and ZWNJ "
                             "differently; write the host as its xn-- name") from None
        raise UsageError(f"'{exc.host}' is not a valid internationalized domain name "
                         "(IDNA)") from None


def sanitize_name(name: str) -> str:
    return _UNSAFE_NAME.sub("-", name).strip("-.")[:100]


def _name_from(path: str, host: str | None) -> str:
    last = PurePosixPath(path).name if path.strip("/") else ""
    return PurePosixPath(last).stem if last else (host or "")


def _headers(values: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for text in values:
        name, sep, value = text.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not _HEADER_NAME.match(name) or "\r" in value or "\n" in value:
            raise UsageError(f"--header: '{text}' is not 'Name: value'")
        found[name] = value
    return found


def _query(values: Sequence[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for text in values:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise UsageError(f"--query: '{text}' is not 'key=value'")
        if key in found:     # repeated keys become a list, as in a query string
            previous = found[key]
            found[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            found[key] = value
    return found
