"""The processor's caps, and the error every breach of them (or any bad input) becomes.

Every resource a file can make the processor spend is capped by `Limits` (read
from the environment, see LIMIT_DEFAULTS); breaching a cap is a PermanentError
raised in bounded time and memory, never a MemoryError or a timeout.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields

from common import contract as env

# The one place the processor's caps are named. Each is an environment variable of
# the processor function (pipeline.yaml -> deploy); unset means the default here.
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
LIMIT_DEFAULTS: dict[str, int] = {
    env.MAX_OBJECT_BYTES: 5 * GiB,          # the object as stored (compressed size for .gz),
                                            # checked from ContentLength before reading
    env.MAX_LINE_BYTES: 1 * MiB,            # one CSV / JSON Lines line; for .json one record
    env.MAX_FIELD_BYTES: 256 * KiB,         # one CSV field (characters)
    env.MAX_COLUMNS: 1000,                  # CSV header width
    env.MAX_NESTING_DEPTH: 32,              # JSON objects/arrays inside a record
    env.MAX_DECOMPRESSED_BYTES: 10 * GiB,   # what a .gz file may inflate to
    env.MAX_COMPRESSION_RATIO: 100,         # decompressed / compressed bytes, for .gz
}
# The whole file's ratio is judged only past this much output: tiny files compress oddly
# well. (Each 128 KiB step of output is judged too: byte_readers.Gunzip.)
RATIO_FLOOR_BYTES = 1 * MiB


@dataclass(frozen=True)
class Limits:
    max_object_bytes: int = LIMIT_DEFAULTS["MAX_OBJECT_BYTES"]
    max_line_bytes: int = LIMIT_DEFAULTS["MAX_LINE_BYTES"]
    max_field_bytes: int = LIMIT_DEFAULTS["MAX_FIELD_BYTES"]
    max_columns: int = LIMIT_DEFAULTS["MAX_COLUMNS"]
    max_nesting_depth: int = LIMIT_DEFAULTS["MAX_NESTING_DEPTH"]
    max_decompressed_bytes: int = LIMIT_DEFAULTS["MAX_DECOMPRESSED_BYTES"]
    max_compression_ratio: int = LIMIT_DEFAULTS["MAX_COMPRESSION_RATIO"]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Limits:
        """Limits from MAX_* variables; a value that is not a positive integer is an error."""
        values = {}
        for f in fields(cls):
            name = f.name.upper()
            raw = (environ.get(name) or "").strip()
            if not raw:
                continue
            try:
                value = int(raw)
            except ValueError:
                value = 0
            if value <= 0:
                raise ValueError(f"{name}={raw!r}: expected a positive whole number "
                                 f"(default {LIMIT_DEFAULTS[name]})")
            values[f.name] = value
        return cls(**values)


DEFAULT_LIMITS = Limits()


class PermanentError(Exception):
    """The input can never be processed as it is; retrying will not help."""
