"""The names pipectl and the handlers share: environment, results table, record schemas.

Handlers never import pipectl, and pipectl cannot import the handlers as a package
(they are a pipeline's own directory, not on sys.path): pipectl loads this one file
by its path (pipectl/contract.py), so it must import nothing but the standard library.
A name spelled differently on the two sides fails quietly on AWS (a setting left at
its default, every file in the dead-letter queue), so each name is spelled here only;
tests/unit/test_contract.py checks that both sides agree with this module, and
tests/unit/test_contract_spelling.py that neither spells one of its names on its own.
"""

from __future__ import annotations

from enum import Enum
from urllib.parse import quote, urlsplit, urlunsplit

# --- environment variables -------------------------------------------------------
# Every function is given PIPELINE and ENVIRONMENT, which name the deployment in the
# console and in logs, whether or not its code reads them.
PIPELINE = "PIPELINE"
ENVIRONMENT = "ENVIRONMENT"
RESULTS_TABLE = "RESULTS_TABLE"
RAW_BUCKET = "RAW_BUCKET"
PROCESSED_BUCKET = "PROCESSED_BUCKET"
ARCHIVE_BUCKET = "ARCHIVE_BUCKET"
INCOMING_PREFIX = "INCOMING_PREFIX"
COMPLETED_PREFIX = "COMPLETED_PREFIX"
FAILED_PREFIX = "FAILED_PREFIX"
PROCESSED_PREFIX = "PROCESSED_PREFIX"
ARCHIVE_PREFIX = "ARCHIVE_PREFIX"
FETCH_PREFIX = "FETCH_PREFIX"
# processor
RECORD_SCHEMAS = "RECORD_SCHEMAS"        # JSON list of record schemas (processing/schema.py)
SINK_TABLE = "SINK_TABLE"
SINK_KEY = "SINK_KEY"
THUMBNAIL_WIDTH = "THUMBNAIL_WIDTH"
MAX_IMAGE_PIXELS = "MAX_IMAGE_PIXELS"
MAX_IMAGE_BYTES = "MAX_IMAGE_BYTES"
PROCESSOR_VERSION = "PROCESSOR_VERSION"  # what deploy derived (deploy/desired.processor_version)
OUTPUT_FORMAT = "OUTPUT_FORMAT"          # pipeline.yaml's output: (processing/output_format.py)
OUTPUT_COMPRESSION = "OUTPUT_COMPRESSION"
OUTPUT_ROW_GROUP_ROWS = "OUTPUT_ROW_GROUP_ROWS"
OUTPUT_PARTITION_BY = "OUTPUT_PARTITION_BY"
OUTPUT_VARIABLES = (OUTPUT_FORMAT, OUTPUT_COMPRESSION, OUTPUT_ROW_GROUP_ROWS,
                    OUTPUT_PARTITION_BY)
MAX_OBJECT_BYTES = "MAX_OBJECT_BYTES"    # the caps of processing/limits.py
MAX_LINE_BYTES = "MAX_LINE_BYTES"
MAX_FIELD_BYTES = "MAX_FIELD_BYTES"
MAX_COLUMNS = "MAX_COLUMNS"
MAX_NESTING_DEPTH = "MAX_NESTING_DEPTH"
MAX_DECOMPRESSED_BYTES = "MAX_DECOMPRESSED_BYTES"
MAX_COMPRESSION_RATIO = "MAX_COMPRESSION_RATIO"
LIMIT_VARIABLES = (MAX_OBJECT_BYTES, MAX_LINE_BYTES, MAX_FIELD_BYTES, MAX_COLUMNS,
                   MAX_NESTING_DEPTH, MAX_DECOMPRESSED_BYTES, MAX_COMPRESSION_RATIO)
# archiver
RETENTION_DAYS = "RETENTION_DAYS"
STORAGE_CLASS = "STORAGE_CLASS"
ARCHIVER_CONCURRENCY = "ARCHIVER_CONCURRENCY"
# fetcher
FETCH_ALLOW_PRIVATE = "FETCH_ALLOW_PRIVATE"
FETCH_REQUEST_TIMEOUT = "FETCH_REQUEST_TIMEOUT"
FETCH_MAX_BYTES = "FETCH_MAX_BYTES"
FETCH_MAX_ATTEMPTS = "FETCH_MAX_ATTEMPTS"

# What `pipectl deploy` gives each function (pipectl/deploy/desired.py).
_SHARED = (PIPELINE, ENVIRONMENT, RESULTS_TABLE)
FUNCTION_ENVIRONMENT: dict[str, tuple[str, ...]] = {
    "processor": (*_SHARED, RAW_BUCKET, PROCESSED_BUCKET, INCOMING_PREFIX, COMPLETED_PREFIX,
                  FAILED_PREFIX, PROCESSED_PREFIX, RECORD_SCHEMAS, SINK_TABLE, SINK_KEY,
                  THUMBNAIL_WIDTH, MAX_IMAGE_PIXELS, MAX_IMAGE_BYTES, PROCESSOR_VERSION,
                  *LIMIT_VARIABLES, *OUTPUT_VARIABLES),
    "archiver": (*_SHARED, PROCESSED_BUCKET, ARCHIVE_BUCKET, PROCESSED_PREFIX, ARCHIVE_PREFIX,
                 RETENTION_DAYS, STORAGE_CLASS),
    "fetcher": (*_SHARED, RAW_BUCKET, INCOMING_PREFIX, COMPLETED_PREFIX, FAILED_PREFIX,
                FETCH_PREFIX, FETCH_ALLOW_PRIVATE, FETCH_REQUEST_TIMEOUT, FETCH_MAX_BYTES,
                FETCH_MAX_ATTEMPTS),
}
# Given only when pipeline.yaml has record schemas, a sink or an output: other than the
# default (so a pipeline without them deploys the environment it always had).
WHEN_CONFIGURED = (RECORD_SCHEMAS, SINK_TABLE, SINK_KEY, *OUTPUT_VARIABLES)
# Read with a default, never deployed: a knob for whoever runs the function by hand.
NOT_DEPLOYED: dict[str, tuple[str, ...]] = {"archiver": (ARCHIVER_CONCURRENCY,)}

# Set by Lambda, by the SDK's own configuration, or by pipectl's local runtime
# (AWS_LAMBDA_FUNCTION_TIMEOUT: Lambda itself tells a function its time through the
# context only), never by deploy.
AWS_LAMBDA_FUNCTION_NAME = "AWS_LAMBDA_FUNCTION_NAME"
AWS_LAMBDA_FUNCTION_TIMEOUT = "AWS_LAMBDA_FUNCTION_TIMEOUT"
AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
AWS_REGION = "AWS_REGION"
AWS_DEFAULT_REGION = "AWS_DEFAULT_REGION"
RUNTIME_ENVIRONMENT = (AWS_LAMBDA_FUNCTION_NAME, AWS_LAMBDA_FUNCTION_TIMEOUT, AWS_ENDPOINT_URL,
                       AWS_REGION, AWS_DEFAULT_REGION)

# Test hooks (tests/server): read once, at a cold start, by the entry module.
PIPECTL_FAULT = "PIPECTL_FAULT"
PIPECTL_FAULT_MARKER = "PIPECTL_FAULT_MARKER"
ARCHIVER_KILL_AFTER_COPIES = "ARCHIVER_KILL_AFTER_COPIES"
TEST_HOOK_ENVIRONMENT = (PIPECTL_FAULT, PIPECTL_FAULT_MARKER, ARCHIVER_KILL_AFTER_COPIES)


def environment_names() -> frozenset[str]:
    """Every environment variable any function reads or is given."""
    return frozenset({name for names in FUNCTION_ENVIRONMENT.values() for name in names}
                     | {name for names in NOT_DEPLOYED.values() for name in names}
                     | set(RUNTIME_ENVIRONMENT) | set(TEST_HOOK_ENVIRONMENT))


# --- the results table -----------------------------------------------------------

class Status(str, Enum):
    """A results row's status. A str, so it is written to DynamoDB and compared with what
    is read back as the plain string."""

    PROCESSING = "PROCESSING"
    PROCESSED = "PROCESSED"
    FAILED = "FAILED"
    ARCHIVED = "ARCHIVED"

    def __str__(self) -> str:   # "PROCESSED" in messages, not "Status.PROCESSED"
        return self.value


RESULT_STATUSES: tuple[str, ...] = tuple(s.value for s in Status)
RESULTS_PARTITION_KEY = "object_key"
STATUS_INDEX = "by-status"
STATUS_INDEX_KEYS = ("status", "updated_at")
# Items in the table that are not results: no `status`, so not in the index.
COUNTERS_KEY = "__counters__"   # rows per status, and the TALLIES, kept by the handlers
ARCHIVER_KEY = "__archiver__"   # the last archiver run, read by `pipectl status`
# Totals the counters item keeps beside the row counts, added in the transaction that
# makes a row PROCESSED, so an attempt that loses a race or is retried never adds twice.
TALLIES = ("records_rejected", "thumbnails", "responses_fetched")
# The __archiver__ item's fields (besides the partition key).
ARCHIVER_RUN_KEYS = ("run_id", "last_run_at", "finished_at", "remaining", "skipped_glacier",
                     "moved", "bytes", "errors", "duration_ms", "invocations")
# What one archiver invocation returns (`pipectl archive` adds the invocations up).
ARCHIVER_SUMMARY_KEYS = ("dry_run", "started_at", "run_id", "now", "cutoff", "storage_class",
                         "archive_bucket", "moved", "bytes", "skipped_glacier", "errors",
                         "remaining", "truncated", "groups", "objects", "objects_listed",
                         "duration_ms")
ARCHIVER_GROUP_KEYS = ("month", "source_prefix", "archive_prefix", "objects", "bytes")
# The row attributes that say which processor version wrote the row and which before it.
VERSION_FIELD, PREVIOUS_VERSION_FIELD = "processor_version", "previous_version"
# `pipectl reprocess`: the key its messages add to an S3 notification record (S3 never
# writes it), and the S3 Batch Operations job's UserArguments carrying the same marker.
REPROCESS_MARKER = "pipectlReprocess"
BATCH_RUN_ARGUMENT, BATCH_VERSION_ARGUMENT = "pipectlReprocessRunId", "pipectlReprocessVersion"


def row_key(bucket: str, key: str) -> str:
    """A result row's partition key: bucket and key together, as one key may name objects
    in two buckets (the row also carries `bucket` and `key` attributes)."""
    return f"s3://{bucket}/{key}"


# --- record schemas (pipeline.yaml `schemas:`, checked by processing/schema.py) ---------
SCHEMA_TYPES = ("string", "integer", "number", "boolean", "date", "datetime")
SCHEMA_RULES = ("type", "allowed", "pattern", "min", "max")
SINK_HASH_KEY = "record_id"     # the sink table's key when pipeline.yaml names none


# --- URLs as HTTP sends them (`pipectl fetch` writes them, the fetcher calls them) ----
# What RFC 3986 lets a path, query or fragment carry as it is ("%" too: escapes already
# there stay as they are); everything else is percent-encoded as UTF-8.
URL_SAFE = "/:@!$&'()*+,;=-._~%"
# Python's "idna" codec is IDNA 2003, which maps these away (straße -> strasse); IDNA 2008,
# which registries use now, keeps them: a different domain. Refused rather than guessed.
IDNA_DEVIATIONS = ("\u00df", "\u03c2", "\u200c", "\u200d")   # ß ς ZWNJ ZWJ


class UnencodableHost(ValueError):
    """The host has no one ASCII form; each side words the refusal for its own reader."""

    def __init__(self, host: str, deviation: bool):
        super().__init__(host)
        self.host, self.deviation = host, deviation


def ascii_url(url: str) -> str:
    """The URL as it goes on the wire: a non-ASCII host as IDNA (xn--...), the path, query
    and fragment percent-encoded. UnencodableHost when the host is no valid domain name, or
    has a character IDNA 2003 and 2008 encode differently (deviation)."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if hostport.startswith("[") or ":" not in hostport:
        host, port = hostport, ""
    else:
        host, colon, port = hostport.rpartition(":")
        port = colon + port
    if not host.isascii():
        if any(c in host for c in IDNA_DEVIATIONS):
            raise UnencodableHost(host, deviation=True)
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UnencodableHost(host, deviation=False) from None
    netloc = quote(userinfo, safe=URL_SAFE) + at + host + port
    return urlunsplit((parts.scheme, netloc, *(quote(part, safe=URL_SAFE + "?")
                                               for part in (parts.path, parts.query,
                                                            parts.fragment))))
