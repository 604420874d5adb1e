"""pipeline.yaml -> frozen dataclasses. Every problem is reported with file, line and key path.

The sections with a module of their own: the deployed functions' (function_settings.py),
output: (output_format.py) and schemas: (record_schemas.py); config_reader.py reads the
values and keeps their lines."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from pipectl.config_reader import Reader, between, line_map
from pipectl.contract import contract
from pipectl.errors import ConfigError
from pipectl.function_settings import (
    Archiver,
    Fetcher,
    Images,
    Limits,
    Processor,
    parse_archiver,
    parse_fetcher,
    parse_images,
    parse_limits,
    parse_processor,
)
from pipectl.output_format import Output, parse_output
from pipectl.record_schemas import RecordSchema, field_name, parse_schemas

CONFIG_FILE = "pipeline.yaml"
DEFAULT_EMULATOR_PORT = 4567
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


@dataclass(frozen=True)
class Target:
    name: str
    emulator: bool  # the embedded moto server: pipectl starts it, no account needed
    region: str
    profile: str | None = None
    endpoint_url: str | None = None
    port: int = DEFAULT_EMULATOR_PORT


@dataclass(frozen=True)
class Prefixes:
    incoming: str = "incoming/"
    completed: str = "completed/"
    failed: str = "failed/"
    processed: str = "processed/"
    archive: str = "archive/"
    fetch: str = "fetch/"


@dataclass(frozen=True)
class Observability:
    log_retention_days: int = 30
    alarm_email: str | None = None  # SNS topic + email subscription for the alarms
    oldest_message_alarm_seconds: int = 900
    tracing: bool = False  # X-Ray active tracing on the functions


@dataclass(frozen=True)
class Sink:
    """A DynamoDB table that receives every accepted record as an item."""

    table: str
    key: str | None = None  # the record field that is the partition key; None: a hash


SINK_HASH_KEY: str = contract.SINK_HASH_KEY


# CloudWatch Logs accepts only these retention periods.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096,
                      1827, 2192, 2557, 2922, 3288, 3653)


@dataclass(frozen=True)
class Buckets:
    """Explicit bucket names; None means the deterministic default from naming.py."""

    raw: str | None = None
    processed: str | None = None
    archive: str | None = None


@dataclass(frozen=True)
class PipelineConfig:
    name: str
    environment: str
    region: str
    targets: dict[str, Target]
    default_target: str
    buckets: Buckets = Buckets()
    prefixes: Prefixes = Prefixes()
    processor: Processor = Processor()
    archiver: Archiver = Archiver()
    fetcher: Fetcher = Fetcher()
    observability: Observability = Observability()
    results_table: str | None = None
    schemas: tuple[RecordSchema, ...] = ()
    sink: Sink | None = None
    images: Images = Images()
    limits: Limits = field(default_factory=lambda: Limits())
    output: Output = Output()
    path: Path = field(default=Path(CONFIG_FILE), compare=False)

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def handlers_dir(self) -> Path:
        return self.directory / "handlers"

    def target(self, name: str | None) -> Target:
        name = name or self.default_target
        if name not in self.targets:
            known = ", ".join(sorted(self.targets))
            raise ConfigError([f"{self.path}: unknown target '{name}' (known: {known})"])
        return self.targets[name]


def find_config(explicit: Path | None) -> Path:
    if explicit is not None:
        return explicit
    return Path.cwd() / CONFIG_FILE


def load(path: Path) -> PipelineConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [f"{path}: not found (run `pipectl init` to write one, or pass --config)"]
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    return parse(text, path)


def parse(text: str, path: Path = Path(CONFIG_FILE)) -> PipelineConfig:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        reason = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{where}: invalid YAML: {reason}"]) from None
    reader = Reader(path, line_map(node))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{path}:1: the top level must be a mapping of settings"])
    config = _build(reader, data)
    if reader.problems:
        raise ConfigError([message for _, message in sorted(reader.problems,
                                                            key=lambda p: p[0])])
    return config


def _prefix(v: str) -> str | None:
    if not v.endswith("/") or v.startswith("/") or len(v) < 2:
        return "must be a key prefix ending in '/' such as 'incoming/'"
    return None


def _build(r: Reader, data: dict) -> PipelineConfig:
    top = {
        "pipeline", "environment", "region", "default_target", "targets", "buckets",
        "prefixes", "processor", "archiver", "fetcher", "results", "observability", "limits",
        "schemas", "sink", "images", "output",
    }
    for unknown in sorted(set(map(str, data)) - top):
        r.problem(unknown, f"unknown setting (known: {', '.join(sorted(top))})")

    name = r.get(data, "pipeline", str, None, lambda v: None if _NAME.match(v) else
                 "must be 3-40 lowercase letters, digits or hyphens")
    if "pipeline" not in data:
        r.problem("pipeline", "is required: the pipeline's name, e.g. 'pipeline: orders'")
    environment = r.get(data, "environment", str, "dev", lambda v: None if _NAME.match(v) or
                        re.match(r"^[a-z0-9]{1,3}$", v) else
                        "must be lowercase letters, digits or hyphens")
    region = r.get(data, "region", str, "us-east-1", lambda v: None if _REGION.match(v) else
                   "must be an AWS region such as 'eu-west-1'")
    targets = _targets(r, data, region)
    default_target = r.get(data, "default_target", str, "local")
    if default_target not in targets:
        r.problem("default_target", f"names no target (known: {', '.join(sorted(targets))})")

    b = r.section(data, "buckets", {"raw", "processed", "archive"})
    bucket_check = lambda v: None if _BUCKET.match(v) else "must be a valid S3 bucket name"  # noqa: E731
    buckets = Buckets(**{role: r.get(b, f"buckets.{role}", str, None, bucket_check)
                         for role in ("raw", "processed", "archive")})

    p = r.section(data, "prefixes", set(Prefixes.__dataclass_fields__))
    prefixes = Prefixes(**{k: r.get(p, f"prefixes.{k}", str, getattr(Prefixes, k), _prefix)
                           for k in Prefixes.__dataclass_fields__})
    raw_prefixes = [prefixes.incoming, prefixes.completed, prefixes.failed, prefixes.fetch]
    if len(set(raw_prefixes)) != len(raw_prefixes):
        r.problem("prefixes", "incoming, completed, failed and fetch must be different prefixes")
    else:
        _refuse_loops(r, prefixes, buckets)

    processor = parse_processor(r, data)
    archiver = parse_archiver(r, data)
    observability = _observability(r, data)
    fetcher = parse_fetcher(r, data)
    t = r.section(data, "results", {"table"})
    table = r.get(t, "results.table", str, None, lambda v: None if _TABLE.match(v)
                  else "must be a valid DynamoDB table name")
    schemas = parse_schemas(r, data)
    sink = _sink(r, data)
    images = parse_images(r, data)
    limits = parse_limits(r, data)
    output = parse_output(r, data)

    return PipelineConfig(
        name=name or "pipeline", environment=environment, region=region, targets=targets,
        default_target=default_target, buckets=buckets, prefixes=prefixes,
        processor=processor, archiver=archiver, fetcher=fetcher, observability=observability,
        results_table=table, schemas=schemas, sink=sink, images=images, limits=limits,
        output=output, path=r.path,
    )


def url_problem(value: str) -> str | None:
    """Why value is not an endpoint URL botocore can call (None when it is one)."""
    if not re.match(r"^https?://", value):
        return "must start with http:// or https://, e.g. http://127.0.0.1:4567"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - urlsplit checks the port only when asked for it
    except ValueError:
        return "has a port outside 1-65535 or a malformed host"
    if not parts.hostname:
        return "has no host name"
    if parts.port == 0:
        return "has a port outside 1-65535"
    return None


# The processor's other outputs, beside prefixes.processed in the processed bucket (as
# handlers/processor.py and deploy/policies.py have them).
_OTHER_OUTPUTS = {"rejects": "rejects/", "thumbnails": "thumbnails/"}


def _refuse_loops(r: Reader, p: Prefixes, buckets: Buckets) -> None:
    """No prefix the pipeline writes to may lie under one that triggers it, nor the other
    way round: an object written there would trigger the pipeline again, for ever (a
    recursive loop, the runaway bill AWS warns about for S3-triggered functions)."""
    triggers = {"incoming": (p.incoming, "processing"), "fetch": (p.fetch, "the fetcher")}
    writes = {"completed": p.completed, "failed": p.failed,
              "incoming": p.incoming}                      # the fetcher's responses
    # Only the raw bucket triggers anything; the others matter when they are the raw one.
    if buckets.raw is not None and buckets.processed == buckets.raw:
        writes.update({"processed": p.processed, **_OTHER_OUTPUTS})
    if buckets.raw is not None and buckets.archive == buckets.raw:
        writes["archive"] = p.archive
    for name, written in writes.items():
        for trigger, (prefix, what) in triggers.items():
            if name == trigger:
                continue
            where = f"prefixes.{name}" if name in Prefixes.__dataclass_fields__ else name
            if written.startswith(prefix):
                r.problem(where, f"'{written}' lies under prefixes.{trigger} ('{prefix}'), "
                          f"which triggers {what}: everything written there would trigger it "
                          "again (a recursive loop); choose a prefix outside it")
            elif prefix.startswith(written):
                r.problem(f"prefixes.{trigger}", f"'{prefix}' lies under {where} "
                          f"('{written}'), which the pipeline writes to: what it writes there "
                          f"can trigger {what} (a recursive loop); choose prefixes that do "
                          "not contain each other")


def _targets(r: Reader, data: dict, region: str) -> dict[str, Target]:
    raw = data.get("targets")
    if raw is None:
        return {"local": Target(name="local", emulator=True, region=region)}
    if not isinstance(raw, dict):
        r.problem("targets", "must be a mapping of target name to settings")
        return {"local": Target(name="local", emulator=True, region=region)}
    targets = {}
    for tname, settings in raw.items():
        key = f"targets.{tname}"
        settings = r.section(raw, key, {"emulator", "profile", "region", "endpoint_url", "port"})
        emulator = r.get(settings, f"{key}.emulator", bool, tname == "local")
        targets[str(tname)] = Target(
            name=str(tname),
            emulator=emulator,
            region=r.get(settings, f"{key}.region", str, region),
            profile=r.get(settings, f"{key}.profile", str, None),
            endpoint_url=r.get(settings, f"{key}.endpoint_url", str, None, url_problem),
            port=r.get(settings, f"{key}.port", int, DEFAULT_EMULATOR_PORT, between(1, 65535)),
        )
    return targets


def _observability(r: Reader, data: dict) -> Observability:
    d = Observability()
    o = r.section(data, "observability", set(Observability.__dataclass_fields__))
    return Observability(
        log_retention_days=r.get(o, "observability.log_retention_days", int,
                                 d.log_retention_days, lambda v: None if v in LOG_RETENTION_DAYS
                                 else "must be a CloudWatch Logs retention period such as 30"),
        alarm_email=r.get(o, "observability.alarm_email", str, None, lambda v: None if
                          re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", v) else
                          "must be an email address"),
        oldest_message_alarm_seconds=r.get(o, "observability.oldest_message_alarm_seconds", int,
                                           d.oldest_message_alarm_seconds, between(60, 1209600)),
        tracing=r.get(o, "observability.tracing", bool, d.tracing),
    )


def _sink(r: Reader, data: dict) -> Sink | None:
    s = r.section(data, "sink", {"table", "key"})
    if not s:
        return None
    table = r.get(s, "sink.table", str, None, lambda v: None if _TABLE.match(v) else
                  "must be a valid DynamoDB table name")
    if "table" not in s:
        r.problem("sink.table", "is required: the DynamoDB table that receives the records")
    key = r.get(s, "sink.key", str, None)
    if key is not None and not field_name(r, "sink.key", key):
        key = None
    return Sink(table=table, key=key) if table else None
