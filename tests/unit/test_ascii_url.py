"""URLs with non-ASCII characters: `pipectl fetch` and the fetcher encode them alike.

HTTP sends URLs in ASCII: the host as IDNA (RFC 5891 "xn--" labels), the rest
percent-encoded UTF-8 (RFC 3986 section 2.1). The encoding is the handlers'
contract.ascii_url, which pipectl/ops/fetch.py and handlers/fetching/safe_http.py both
call; each words its own refusal (a usage error, a FAILED request).
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pytest
from fetching import safe_http
from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl.errors import UsageError
from pipectl.ops import fetch

LABELS = st.text(st.characters(codec="utf-8", categories=("Ll", "Lo", "Nd")),
                 min_size=1, max_size=20)
# Not "%" (an escape), "#" or "?" (delimiters); not tab, CR, LF: urlsplit drops them, as
# the WHATWG URL standard does.
PATHS = st.text(st.characters(codec="utf-8", exclude_characters="%#?\t\r\n"), max_size=40)


def both(url: str):
    try:
        mine = fetch.ascii_url(url)
    except UsageError:
        mine = "refused"
    try:
        theirs = safe_http.ascii_url(url)
    except safe_http.PermanentError:
        theirs = "refused"
    return mine, theirs


@given(host=st.lists(LABELS, min_size=1, max_size=3).map(".".join), path=PATHS,
       query=PATHS, port=st.one_of(st.none(), st.integers(1, 65535)))
@settings(max_examples=150, deadline=None)
def test_pipectl_and_the_fetcher_encode_every_url_alike(host, path, query, port):
    url = f"https://{host}{f':{port}' if port else ''}/{path}?{query}"
    mine, theirs = both(url)
    assert mine == theirs
    if mine != "refused":
        # ASCII on the wire, and decoding gives the path and query back unchanged
        assert mine.isascii() and " " not in mine
        parts = urlsplit(mine)
        assert unquote(parts.path) == "/" + path and unquote(parts.query) == query
        assert parts.port == port


@pytest.mark.parametrize("url, wire", [
    ("https://bücher.example/ü", "https://xn--bcher-kva.example/%C3%BC"),
    ("http://例え.テスト:8080/a b", "http://xn--r8jz45g.xn--zckzah:8080/a%20b"),
    # already encoded: nothing changes, escapes are not encoded twice
    ("https://api.example.com/a%20b?x=1&y=%2B#top", "https://api.example.com/a%20b?x=1&y=%2B#top"),
    ("http://[::1]:80/ü", "http://[::1]:80/%C3%BC"),
])
def test_hand_picked_urls(url, wire):
    assert both(url) == (wire, wire)


@pytest.mark.parametrize("host", ["straße.de", "ς.example", "a\u200db.example",
                                  "ü" * 64 + ".example"])
def test_hosts_without_one_ascii_form_are_refused_by_both(host):
    assert both(f"https://{host}/") == ("refused", "refused")
