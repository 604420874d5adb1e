"""The archiver's settings, and where each kind of processed object goes in the archive bucket.

Everything the processor writes to the processed bucket ages out, each kind under its
own part of the archive prefix (which the archive bucket's lifecycle rule covers):
  processed/YYYY/MM/DD/<name>   -> archive/YYYY/MM/DD/<name>
  processed/dt=YYYY-MM-DD/<name> -> archive/dt=YYYY-MM-DD/<name> (Hive-style, Parquet)
  rejects/YYYY/MM/DD/<name>     -> archive/rejects/YYYY/MM/DD/<name>
  thumbnails/YYYY/MM/DD/<name>  -> archive/thumbnails/YYYY/MM/DD/<name>
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from common import contract as env

# The processor's other outputs in the processed bucket (fixed prefixes, as
# handlers/processor.py writes them), with the row field that links to each.
OTHER_OUTPUTS = {"rejects/": "rejects", "thumbnails/": "thumbnail"}
DEFAULT_CONCURRENCY = 8
_DATED = re.compile(r"^(\d{4})/(\d{2})/(\d{2})/(.+)$")
# output.partition_by dt or year/month/day: the partition path stays as it is, so the
# archive prefix can be queried the same way (and never collides with rejects/).
_HIVE = re.compile(r"^(dt=\d{4}-\d{2}-\d{2}|year=\d{4}/month=\d{2}/day=\d{2})/.+$")


@dataclass(frozen=True)
class Settings:
    processed_bucket: str
    archive_bucket: str
    results_table: str
    processed: str = "processed/"
    archive: str = "archive/"
    retention_days: float = 30
    storage_class: str = "STANDARD_IA"
    concurrency: int = DEFAULT_CONCURRENCY

    @classmethod
    def from_env(cls) -> Settings:
        get = os.environ.get
        return cls(processed_bucket=get(env.PROCESSED_BUCKET, ""),
                   archive_bucket=get(env.ARCHIVE_BUCKET, ""),
                   results_table=get(env.RESULTS_TABLE, ""),
                   processed=get(env.PROCESSED_PREFIX) or "processed/",
                   archive=get(env.ARCHIVE_PREFIX) or "archive/",
                   retention_days=float(get(env.RETENTION_DAYS) or 30),
                   storage_class=get(env.STORAGE_CLASS) or "STANDARD_IA",
                   concurrency=int(get(env.ARCHIVER_CONCURRENCY) or DEFAULT_CONCURRENCY))


@dataclass(frozen=True)
class Area:
    """One kind of object the processor writes, and where it goes in the archive bucket."""
    source: str  # prefix in the processed bucket
    archive: str  # prefix in the archive bucket
    row_field: str  # the results row's field that names the object


def areas(s: Settings) -> list[Area]:
    """Outputs keep archive/YYYY/... (their archive keys from before rejects and thumbnails
    were archived too); the others go under archive/rejects/ and archive/thumbnails/, which
    an output's key (it always starts with a year) can never be."""
    found = [Area(s.processed, s.archive, "output")]
    found += [Area(prefix, f"{s.archive}{prefix}", field)
              for prefix, field in OTHER_OUTPUTS.items() if prefix != s.processed]
    return found


def area_of(s: Settings, key: str) -> Area | None:
    # The longest matching prefix, so a key is never archived twice when one configured
    # prefix lies inside another.
    return max((a for a in areas(s) if key.startswith(a.source)), key=lambda a: len(a.source),
               default=None)


def archive_key(s: Settings, key: str, last_modified: datetime) -> str:
    """processed/YYYY/MM/DD/<name> -> archive/YYYY/MM/DD/<name>, rejects/YYYY/MM/DD/<name>
    -> archive/rejects/YYYY/MM/DD/<name>, and the same for thumbnails/.

    The day stays in the key, so objects of different days with the same name never
    collide. A key without the date path is filed under its LastModified month and an
    `undated/` segment, which no dated key can produce.
    """
    area = area_of(s, key)
    if area is None:
        raise ValueError(f"{key!r} is under none of the prefixes the archiver takes")
    relative = key[len(area.source):]
    dated = _DATED.match(relative)
    if dated:
        year, month, day, rest = dated.groups()
        return f"{area.archive}{year}/{month}/{day}/{rest}"
    if _HIVE.match(relative):
        return f"{area.archive}{relative}"
    month = last_modified.astimezone(timezone.utc).strftime("%Y/%m")
    return f"{area.archive}{month}/undated/{relative}"
