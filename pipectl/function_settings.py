"""The deployed functions' sections of pipeline.yaml: processor:, archiver: and fetcher:
(each one's Lambda settings), images: and limits: (what the processor enforces)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipectl.config_reader import Reader, between

STORAGE_CLASSES = ("STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".webp")
_DATA_SUFFIXES = (".json", ".jsonl", ".ndjson", ".csv", ".txt")
# gzip-compressed data files are decompressed as they stream (bounded by limits:).
SUPPORTED_SUFFIXES = (*_DATA_SUFFIXES, *(f"{s}.gz" for s in _DATA_SUFFIXES), *IMAGE_SUFFIXES)
# Lambda limits: batch size 1..10 for SQS without a batching window, up to 10,000 with one.
MAX_BATCH_SIZE = 10_000
_SCHEDULE = re.compile(r"^(cron\(\S+( \S+){5}\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\))$")


@dataclass(frozen=True)
class Processor:
    suffixes: tuple[str, ...] = (".json", ".jsonl", ".csv", ".txt")
    batch_size: int = 10
    batching_window: int = 0
    timeout: int = 60
    memory: int = 512
    max_receive_count: int = 3
    max_concurrency: int = 5
    runtime: str = "python3.12"
    architecture: str = "x86_64"

    @property
    def visibility_timeout(self) -> int:
        # AWS guidance for SQS event sources: at least six times the function timeout,
        # so a batch that is retried inside Lambda is not redelivered meanwhile.
        return 6 * self.timeout


@dataclass(frozen=True)
class Archiver:
    retention_days: int = 30
    storage_class: str = "STANDARD_IA"
    schedule: str = "cron(0 2 * * ? *)"
    glacier_after_days: int = 90
    expire_after_days: int = 365
    # Days a replaced or deleted version is kept in every bucket (they are versioned, and
    # each move, archive and re-upload leaves one) before S3 expires it.
    noncurrent_version_days: int = 30
    timeout: int = 300
    memory: int = 256


@dataclass(frozen=True)
class Fetcher:
    allow_private: bool = False  # let requests reach private and loopback addresses
    request_timeout: int = 10
    max_bytes: int = 50 * 1024 * 1024
    max_attempts: int = 3
    timeout: int = 120
    memory: int = 256

    @property
    def visibility_timeout(self) -> int:
        return 6 * self.timeout


@dataclass(frozen=True)
class Limits:
    """Caps the processor enforces instead of surprising anyone: a file past one is FAILED
    in bounded time and memory (the handler reads them from MAX_* environment variables)."""

    max_object_bytes: int = 5 * 1024 ** 3
    max_line_bytes: int = 1024 ** 2
    max_field_bytes: int = 256 * 1024
    max_columns: int = 1000
    max_nesting_depth: int = 32
    max_decompressed_bytes: int = 10 * 1024 ** 3
    max_compression_ratio: int = 100

    def environment(self) -> dict[str, str]:
        return {name.upper(): str(getattr(self, name)) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Images:
    thumbnail_width: int = 256
    max_pixels: int = 40_000_000  # larger images are refused as decompression bombs
    max_bytes: int = 20 * 1024 * 1024  # the most of an image file read into memory


def parse_processor(r: Reader, data: dict) -> Processor:
    d = Processor()
    p = r.section(data, "processor", set(Processor.__dataclass_fields__))

    def suffixes(v: list) -> str | None:
        bad = [s for s in v if s not in SUPPORTED_SUFFIXES]
        if not v or bad:
            return f"must be a non-empty list drawn from {', '.join(SUPPORTED_SUFFIXES)}"
        return None

    proc = Processor(
        suffixes=tuple(r.get(p, "processor.suffixes", list, list(d.suffixes), suffixes)),
        batch_size=r.get(p, "processor.batch_size", int, d.batch_size, between(1, MAX_BATCH_SIZE)),
        batching_window=r.get(p, "processor.batching_window", int, d.batching_window,
                              between(0, 300)),
        timeout=r.get(p, "processor.timeout", int, d.timeout, between(1, 900)),
        memory=r.get(p, "processor.memory", int, d.memory, between(128, 10240)),
        max_receive_count=r.get(p, "processor.max_receive_count", int, d.max_receive_count,
                                between(1, 1000)),
        # Lambda's MaximumConcurrency for SQS event sources is 2..1000.
        max_concurrency=r.get(p, "processor.max_concurrency", int, d.max_concurrency,
                              between(2, 1000)),
        runtime=r.get(p, "processor.runtime", str, d.runtime, lambda v: None if re.match(
            r"^python3\.\d+$", v) else "must be a Lambda Python runtime such as 'python3.12'"),
        architecture=r.get(p, "processor.architecture", str, d.architecture, lambda v: None if
                           v in ("x86_64", "arm64") else "must be 'x86_64' or 'arm64'"),
    )
    if proc.batch_size > 10 and proc.batching_window == 0:
        r.problem("processor.batch_size",
                  "above 10 needs processor.batching_window of at least 1 second (a Lambda rule)")
    return proc


def parse_archiver(r: Reader, data: dict) -> Archiver:
    d = Archiver()
    a = r.section(data, "archiver", set(Archiver.__dataclass_fields__))
    archiver = Archiver(
        retention_days=r.get(a, "archiver.retention_days", int, d.retention_days,
                             between(1, 36500)),
        storage_class=r.get(a, "archiver.storage_class", str, d.storage_class, lambda v: None if
                            v in STORAGE_CLASSES else
                            f"must be one of {', '.join(STORAGE_CLASSES)}"),
        schedule=r.get(a, "archiver.schedule", str, d.schedule, lambda v: None if
                       _SCHEDULE.match(v) else
                       "must be an EventBridge schedule: cron(m h dom mon dow yr) or rate(N unit)"),
        glacier_after_days=r.get(a, "archiver.glacier_after_days", int, d.glacier_after_days,
                                 between(1, 36500)),
        expire_after_days=r.get(a, "archiver.expire_after_days", int, d.expire_after_days,
                                between(1, 36500)),
        noncurrent_version_days=r.get(a, "archiver.noncurrent_version_days", int,
                                      d.noncurrent_version_days, between(1, 36500)),
        timeout=r.get(a, "archiver.timeout", int, d.timeout, between(1, 900)),
        memory=r.get(a, "archiver.memory", int, d.memory, between(128, 10240)),
    )
    if archiver.expire_after_days <= archiver.glacier_after_days:
        r.problem("archiver.expire_after_days", "must be later than archiver.glacier_after_days")
    return archiver


def parse_fetcher(r: Reader, data: dict) -> Fetcher:
    d = Fetcher()
    f = r.section(data, "fetcher", set(Fetcher.__dataclass_fields__))
    return Fetcher(
        allow_private=r.get(f, "fetcher.allow_private", bool, d.allow_private),
        request_timeout=r.get(f, "fetcher.request_timeout", int, d.request_timeout,
                              between(1, 300)),
        max_bytes=r.get(f, "fetcher.max_bytes", int, d.max_bytes, between(1, 1024 ** 3)),
        max_attempts=r.get(f, "fetcher.max_attempts", int, d.max_attempts, between(1, 10)),
        timeout=r.get(f, "fetcher.timeout", int, d.timeout, between(1, 900)),
        memory=r.get(f, "fetcher.memory", int, d.memory, between(128, 10240)),
    )


def parse_images(r: Reader, data: dict) -> Images:
    d = Images()
    i = r.section(data, "images", set(Images.__dataclass_fields__))
    return Images(
        thumbnail_width=r.get(i, "images.thumbnail_width", int, d.thumbnail_width,
                              between(16, 4096)),
        max_pixels=r.get(i, "images.max_pixels", int, d.max_pixels, between(1, 500_000_000)),
        max_bytes=r.get(i, "images.max_bytes", int, d.max_bytes, between(1, 1024 ** 3)),
    )


def parse_limits(r: Reader, data: dict) -> Limits:
    d = Limits()
    section = r.section(data, "limits", set(Limits.__dataclass_fields__))
    return Limits(**{name: r.get(section, f"limits.{name}", int, getattr(d, name),
                                 between(1, 10 ** 15))
                     for name in Limits.__dataclass_fields__})
