"""GET an HTTP(S) URL for the fetcher: public addresses only, bounded retries, bounded body.

Server-side request forgery is the risk of a function that calls URLs users give it:
from inside a VPC or Lambda, 169.254.169.254 and private addresses are reachable.
Unless private addresses are allowed, three checks keep the call public:
  1. before any connection, the host is resolved and EVERY address must be public;
  2. each redirect is followed only after the same check on its target (scheme too);
  3. the socket's actual peer address is checked once connected, so DNS that answers
     differently the second time (rebinding) cannot slip through.
Proxies from the environment are ignored, so the checked address is the one called.

Failures are Permanent (the request or the API says no: retrying cannot help) or
Transient (connection errors, timeouts, 429, 5xx after the retries: SQS retries later).

HTTP sends URLs in ASCII: `ascii_url` IDNA-encodes an internationalized host and
percent-encodes (UTF-8) the rest, so a URL with "ü" in it is called, not failed on.
"""

from __future__ import annotations

import email.utils
import functools
import http.client
import ipaddress
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from common import contract

CHUNK_BYTES = 64 * 1024
BACKOFF_BASE_SECONDS = 0.5        # 0.5, 1, 2, ... between attempts
BACKOFF_CAP_SECONDS = 8
RETRY_AFTER_CAP_SECONDS = 30      # a Retry-After above this waits only this long
MAX_REDIRECTS = 5
USER_AGENT = "pipectl-fetcher/1.0"
_sleep = time.sleep               # between attempts (tests record the delays instead)


class PermanentError(Exception):
    """The request can never succeed as it is: FAILED, not retried."""


class TransientError(Exception):
    """It may work later: the SQS message is retried."""

    transient = True


class Refused(PermanentError):
    """The URL or an address it resolves to is not allowed."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    content_type: str
    attempts: int


def ascii_url(url: str) -> str:
    """The URL as it goes on the wire: a non-ASCII host as IDNA (xn--...), the path, query
    and fragment percent-encoded (contract.ascii_url: `pipectl fetch` encodes alike).
    PermanentError when the host is no valid domain name."""
    try:
        return contract.ascii_url(url)
    except contract.UnencodableHost as e:
        if e.deviation:
            raise PermanentError(f"host {e.host!r} has a character IDNA 2003 and 2008 encode "
                                 "differently (ß, ς, ZWJ, ZWNJ): write it as its xn-- name"
                                 ) from None
        raise PermanentError(f"host {e.host!r} is not a valid internationalized domain "
                             "name (IDNA)") from None


def public_url(url: str) -> str:
    """The URL without query string, fragment or credentials: safe to store and log."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def check_url(url: str, allow_private: bool, resolve=None) -> None:
    """Refuse non-HTTP(S) URLs and, unless allowed, hosts with any non-public address."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise Refused(f"invalid url: {e}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused(f"url scheme {scheme or '(none)'!r} is not allowed: use http or https")
    if not parts.hostname:
        raise Refused("url has no host")
    if parts.username is not None or parts.password is not None:
        raise Refused("credentials in the url are not supported: send them in headers")
    if allow_private:
        return
    try:
        infos = (resolve or socket.getaddrinfo)(
            parts.hostname, port or (443 if scheme == "https" else 80), type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        if e.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            raise PermanentError(f"host {parts.hostname!r} not found") from None
        raise TransientError(f"resolving {parts.hostname!r} failed: {e}") from None
    if not infos:
        raise PermanentError(f"host {parts.hostname!r} has no addresses")
    for info in infos:
        check_address(info[4][0], parts.hostname)  # type: ignore[arg-type]  # an IP string


def check_address(address: str, host: str) -> None:
    ip = ipaddress.ip_address(address.split("%", 1)[0])      # drop an IPv6 zone id
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind in ("loopback", "link_local", "multicast", "unspecified", "reserved", "private"):
        if getattr(ip, f"is_{kind}"):
            break
    else:
        if ip.is_global:
            return
        kind = "non-global"                                   # e.g. 100.64.0.0/10
    raise Refused(f"host {host!r} resolves to {kind.replace('_', '-')} address {ip}; "
                  "private addresses are not allowed (FETCH_ALLOW_PRIVATE)")


# --- the opener: guarded connections and redirects -------------------------------

def _guarded_connect(allow_private: bool, host: str):
    def connect(address, *args, **kwargs):
        sock = socket.create_connection(address, *args, **kwargs)
        if not allow_private:
            try:
                check_address(sock.getpeername()[0], host)
            except Refused:
                sock.close()
                raise
        return sock
    return connect


class _GuardedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, *args, allow_private: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_connect(allow_private, self.host)


class _GuardedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, *args, allow_private: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self._create_connection = _guarded_connect(allow_private, self.host)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, allow_private: bool):
        super().__init__()
        self._allow = allow_private

    def http_open(self, req):
        return self.do_open(functools.partial(_GuardedHTTPConnection,
                                              allow_private=self._allow), req)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, allow_private: bool):
        super().__init__()
        self._allow = allow_private
        self._ssl = ssl.create_default_context()

    def https_open(self, req):
        return self.do_open(functools.partial(_GuardedHTTPSConnection,
                                              allow_private=self._allow), req,
                            context=self._ssl)


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to a URL that passes check_url (scheme and addresses)."""

    max_redirections = MAX_REDIRECTS

    def __init__(self, allow_private: bool, resolve):
        super().__init__()
        self._allow, self._resolve = allow_private, resolve

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        try:
            check_url(newurl, self._allow, self._resolve)
        except Refused as e:
            raise Refused(f"redirect to {public_url(newurl)} refused: {e}") from None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(allow_private: bool, resolve) -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                       _HTTPHandler(allow_private), _HTTPSHandler(allow_private),
                                       _RedirectHandler(allow_private, resolve))


# --- the call ----------------------------------------------------------------------

def get(url: str, headers: dict[str, str], *, timeout: float, max_bytes: int,
        max_attempts: int, allow_private: bool, deadline: float | None = None,
        sleep=None, resolve=None) -> Response:
    """GET url with retries for connection errors, timeouts, 429 and 5xx; at most max_bytes."""
    sleep = sleep or _sleep
    opener = _opener(allow_private, resolve)
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json", **headers}
    last = "no attempt made"
    for attempt in range(1, max_attempts + 1):
        check_url(url, allow_private, resolve)   # again each time: DNS answers can change
        request = urllib.request.Request(url, headers=headers, method="GET")
        retry_after = None
        try:
            with opener.open(request, timeout=timeout) as response:
                body = _read_bounded(response, max_bytes)
                return Response(response.status, body,
                                response.headers.get("Content-Type", ""), attempt)
        except urllib.error.HTTPError as e:
            with e:
                if e.code != 429 and e.code < 500:
                    raise PermanentError(f"HTTP {e.code} {e.reason} from "
                                         f"{public_url(e.url or url)}") from None
                last = f"HTTP {e.code} {e.reason}"
                retry_after = _retry_after(e.headers.get("Retry-After"))
        except urllib.error.URLError as e:
            if isinstance(e.reason, PermanentError):
                raise e.reason from None
            last = f"connection failed: {e.reason}"
        except TimeoutError:
            last = f"timed out after {timeout:g}s"
        except (http.client.InvalidURL, UnicodeError) as e:
            # The URL itself: the same URL fails the same way every time.
            raise PermanentError(f"cannot send {public_url(url)}: {e}") from None
        except (http.client.HTTPException, ConnectionError, OSError) as e:
            last = f"connection failed: {type(e).__name__}: {e}"
        if attempt == max_attempts:
            break
        delay = min(BACKOFF_BASE_SECONDS * 2 ** (attempt - 1), BACKOFF_CAP_SECONDS)
        if retry_after is not None:
            delay = min(max(delay, retry_after), RETRY_AFTER_CAP_SECONDS)
        if deadline is not None and time.time() + delay + timeout > deadline:
            break            # no time left in this invocation: SQS retries the message
        sleep(delay)
    raise TransientError(f"{last} from {public_url(url)} after {attempt} "
                         f"attempt{'s' if attempt != 1 else ''}")


def _read_bounded(response, max_bytes: int) -> bytes:
    length = response.headers.get("Content-Length")
    if length and length.isdigit() and int(length) > max_bytes:
        raise PermanentError(f"response is {int(length)} bytes; at most {max_bytes} are "
                             "allowed (FETCH_MAX_BYTES)")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = response.read(CHUNK_BYTES)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise PermanentError(f"response is more than {max_bytes} bytes "
                                 "(FETCH_MAX_BYTES)")
        chunks.append(chunk)


def _retry_after(value: str | None) -> float | None:
    """Retry-After is delay-seconds or an HTTP-date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
