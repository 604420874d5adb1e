"""What the archive bucket's lifecycle rules will do to each archived object, and when.

Emulators store lifecycle rules but never apply them, so the rules are read from the
bucket and evaluated here, the way S3 documents it (days after creation, rounded up to
the next midnight UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from pipectl.aws import buckets, s3
from pipectl.aws.session import Aws
from pipectl.errors import NotFound
from pipectl.naming import Names


@dataclass
class Scheduled:
    key: str
    size: int
    storage_class: str
    last_modified: str
    transition: str | None = None  # "GLACIER on 2025-01-01"
    transition_at: str | None = None
    expires_at: str | None = None
    due: list[str] = field(default_factory=list)  # what AWS would have done by now


@dataclass
class LifecycleReport:
    bucket: str
    rules: list[dict]
    objects: list[Scheduled]
    notes: list[str] = field(default_factory=list)


def lifecycle(aws: Aws, names: Names, *, now: datetime | None = None) -> LifecycleReport:
    """Per archived object, when the bucket's lifecycle rules (read from the bucket, since
    emulators store them but never apply them) transition and expire it."""
    now = now or datetime.now(timezone.utc)
    client = aws.client("s3")
    bucket = names.bucket("archive")
    rules = buckets.lifecycle_rules_if_exists(client, bucket)
    if rules is None:
        raise NotFound(f"archive bucket '{bucket}' does not exist (run `pipectl deploy`)")
    enabled = [r for r in rules if r.get("Status") == "Enabled"]
    report = LifecycleReport(bucket=bucket, rules=enabled, objects=[])
    if not enabled:
        report.notes.append(f"bucket '{bucket}' has no enabled lifecycle rule: nothing will "
                            "transition or expire")
    for rule in enabled:
        _, tags, greater, _ = _rule_filter(rule)
        if tags:
            report.notes.append(f"rule {rule.get('ID')!r} filters on tags, which this listing "
                                "does not read: it is left out")
        elif greater is not None and rule.get("Transitions"):
            report.notes.append(
                f"rule {rule.get('ID')!r} transitions only objects larger than {greater:,} "
                f"bytes: smaller ones stay in their class (S3 bills STANDARD_IA as at least "
                f"128 KiB per object and charges each transition per object)")
    for obj in s3.listed_objects(client, bucket):
        report.objects.append(_schedule(obj, enabled, now))
    return report


def _rule_filter(rule: dict) -> tuple[str, bool, int | None, int | None]:
    """(prefix, has tags, size greater than, size less than) of a rule's filter."""
    f = rule.get("Filter")
    if f is None:
        return rule.get("Prefix", ""), False, None, None  # the old top-level Prefix form
    parts = f.get("And", f)
    tags = bool(parts.get("Tag") or parts.get("Tags"))
    return (parts.get("Prefix", ""), tags, parts.get("ObjectSizeGreaterThan"),
            parts.get("ObjectSizeLessThan"))


def _applies(rule: dict, obj: dict) -> bool:
    prefix, tags, greater, less = _rule_filter(rule)
    return (not tags and obj["Key"].startswith(prefix)
            and (greater is None or obj["Size"] > greater)
            and (less is None or obj["Size"] < less))


def _after(created: datetime, days: int) -> datetime:
    # S3 adds the days to the creation time and rounds up to the next midnight UTC.
    moment = created.astimezone(timezone.utc) + timedelta(days=days)
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight if moment == midnight else midnight + timedelta(days=1)


def _schedule(obj: dict, rules: list[dict], now: datetime) -> Scheduled:
    created = obj["LastModified"]
    item = Scheduled(key=obj["Key"], size=obj["Size"],
                     storage_class=obj.get("StorageClass") or "STANDARD",
                     last_modified=created.isoformat())
    transitions, expiries = [], []
    for rule in (r for r in rules if _applies(r, obj)):
        for t in rule.get("Transitions", []):
            when = (_after(created, t["Days"]) if "Days" in t
                    else t["Date"].astimezone(timezone.utc))
            if t.get("StorageClass") != item.storage_class:
                transitions.append((when, t.get("StorageClass")))
        expiration = rule.get("Expiration", {})
        if "Days" in expiration:
            expiries.append(_after(created, expiration["Days"]))
        elif "Date" in expiration:
            expiries.append(expiration["Date"].astimezone(timezone.utc))
    if transitions:
        when, storage_class = min(transitions, key=lambda t: t[0])
        item.transition, item.transition_at = storage_class, when.isoformat()
        if when <= now:
            item.due.append(f"transition to {storage_class}")
    if expiries:
        when = min(expiries)
        item.expires_at = when.isoformat()
        if when <= now:
            item.due.append("expiry")
    return item
