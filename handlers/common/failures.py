"""Transient or permanent: whether retrying a failed attempt can ever help.

Transient (the SQS message is retried, then dead-lettered): what AWS or the network
may stop doing - throttling, 5xx, timeouts, dropped connections, missing resources
(any service error not named below), a written object that did not verify.
Permanent (a FAILED row with the reason, at once): everything else. That is a
programming error (TypeError, KeyError...) and a request botocore refuses before
sending it (ParamValidationError: non-ASCII metadata, a wrong parameter type), which
fails the same way on every attempt: retrying only hides the bug for
maxReceiveCount x the visibility timeout and then parks the file in the DLQ.
"""

from __future__ import annotations

from botocore.exceptions import (
    ChecksumError,
    ClientError,
    CredentialRetrievalError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    ResponseStreamingError,
)
from botocore.exceptions import (
    ConnectionError as BotocoreConnectionError,
)

# Service errors that a retry cannot cure: the request itself is invalid (InvalidArgument
# is also S3's 400 for a malformed VersionId, "Invalid version id specified"). The code
# decides, not the HTTP status: S3's RequestTimeout is a 400 that a retry cures, and
# DynamoDB throttles with 400s. (S3:
# docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html; DynamoDB:
# docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html.)
PERMANENT_CODES = frozenset({
    "InvalidArgument", "KeyTooLongError", "MetadataTooLarge", "EntityTooLarge",
    "InvalidDigest", "ValidationException", "SerializationException",
    "InvalidParameterValue", "MissingParameter",
})
_TRANSIENT_BOTOCORE = (HTTPClientError, BotocoreConnectionError, IncompleteReadError,
                       ResponseStreamingError, ChecksumError, NoCredentialsError,
                       CredentialRetrievalError)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code") not in PERMANENT_CODES
    if isinstance(exc, _TRANSIENT_BOTOCORE):
        return True
    # storage.VerifyError and safe_http.TransientError say so themselves.
    if getattr(exc, "transient", False):
        return True
    # Sockets and timeouts outside botocore (the fetcher's HTTP, s3transfer's threads).
    return isinstance(exc, (OSError, TimeoutError))


def describe(exc: BaseException) -> str:
    """One line for the results row: what went wrong, and that it is not retried."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, ClientError):
        return f"refused by AWS, not retried: {text}"
    return f"not retried (a bug or an invalid request, {type(exc).__name__}): {text}"
