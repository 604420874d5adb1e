"""S3 user metadata that can carry any key: RFC 2047 encoded-words for what is not ASCII.

S3 user metadata travels as HTTP headers (x-amz-meta-*), so botocore refuses a
value that is not US-ASCII before sending it (ParamValidationError), while object
keys are any UTF-8. A value holding anything but printable ASCII is written as one
`=?UTF-8?B?<base64>?=` encoded-word, the form S3 itself returns for non-ASCII
metadata set over REST (docs.aws.amazon.com/AmazonS3/latest/userguide/UsingMetadata.html,
"User-defined object metadata"). An ASCII value that merely looks like an
encoded-word is encoded too, so decoding is never ambiguous. Everything that reads
metadata the handlers wrote decodes it here.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re

_ENCODED_WORD = re.compile(r"=\?utf-8\?([bq])\?([^?]*)\?=", re.IGNORECASE)
_PLAIN = re.compile(r"[\x20-\x7e]*")


def encode(value: str) -> str:
    """value as a header-safe ASCII string (unchanged when it is printable ASCII)."""
    if _PLAIN.fullmatch(value) and not _ENCODED_WORD.search(value):
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode("utf-8", "surrogatepass")).decode() + "?="


def decode(value: str | None) -> str | None:
    """The original of an encode()d value (or of S3's own encoded-words); None stays None."""
    if not value:
        return value
    words = value.split()
    if not words or not all(_ENCODED_WORD.fullmatch(w) for w in words):
        return value
    decoded = []
    for word in words:         # RFC 2047: whitespace between adjacent encoded-words is dropped
        kind, text = _ENCODED_WORD.fullmatch(word).groups()  # type: ignore[union-attr]  # all matched above
        try:
            raw = (base64.b64decode(text, validate=True) if kind.lower() == "b"
                   else quopri.decodestring(text.encode("ascii"), header=True))
            decoded.append(raw.decode("utf-8", "surrogatepass"))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return value         # not one of ours and not valid: keep it as written
    return "".join(decoded)


def encode_all(metadata: dict[str, str]) -> dict[str, str]:
    return {name: encode(value) for name, value in metadata.items()}


def decode_all(metadata: dict[str, str] | None) -> dict[str, str]:
    return {name: decode(value) or "" for name, value in (metadata or {}).items()}
