"""What deploy made for this pipeline and no longer wants, found by its ownership tags.

There is no state file, so "made by deploy" is read from AWS: everything deploy creates
carries pipectl's ownership tags (models.owner_tags). A resource counts as a stray only
when its tags name this pipeline and environment and the desired set has no resource of
that kind and name; an untagged one, or one tagged for another pipeline, is never touched.

Only resources whose names pipeline.yaml chooses can be left behind, so only those are
looked for: tables (`sink.table`, `results_table`), buckets (`buckets.<role>`) and the
alarm topic (`observability.alarm_email`). Functions, roles, log groups, queues, alarms,
mappings and the schedule have one name each per pipeline and are always desired.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from pipectl.aws import buckets, dynamodb, sns
from pipectl.aws.session import Aws
from pipectl.deploy.models import Notification, Resource, Stray, owner_tags, ownership
from pipectl.naming import Names

# Tags are read one resource at a time (no tagging API across services is needed); a few
# calls in flight keep an account with hundreds of buckets from taking minutes.
_READERS = 8


def strays(aws: Aws, names: Names, desired: Iterable[Resource]) -> list[Resource]:
    """Tagged as this pipeline's and not desired, in the order they may be deleted: the
    topic (alarms notify it, and they were updated first), tables, then buckets, each
    after its notification rules (a renamed raw bucket would still send to our queue)."""
    wanted = {(r.kind, r.name) for r in desired}
    owner = owner_tags(names.config.name, names.config.environment)
    s3, ddb, topics = aws.client("s3"), aws.client("dynamodb"), aws.client("sns")
    candidates: list[tuple[Stray, Callable[[], dict[str, str]]]] = []
    for arn in sns.topic_arns(topics):
        name = arn.rsplit(":", 1)[-1]
        # Topic names are pipectl's own (names.alarm_topic): only those can be ours.
        if name.startswith(f"{names.prefix}-"):
            candidates.append((Stray("topic", name, ref=arn),
                               functools.partial(sns.tags, topics, arn)))
    for name in dynamodb.table_names(ddb):
        candidates.append((Stray("table", name),
                           functools.partial(dynamodb.owned_tags, ddb, names.table_arn(name))))
    for name in buckets.names_in_region(s3, aws.region):
        candidates.append((Stray("bucket", name), functools.partial(buckets.owned_tags, s3, name)))
    unwanted = [(stray, read) for stray, read in candidates
                if (stray.kind, stray.name) not in wanted]
    with ThreadPoolExecutor(_READERS) as pool:
        tags = list(pool.map(lambda candidate: ownership(candidate[1]()), unwanted))
    found: list[Resource] = []
    for (stray, _), tagged in zip(unwanted, tags, strict=True):
        if tagged != owner:
            continue
        if stray.kind == "bucket" and (rules := _our_rules(s3, stray.name, names)):
            found.append(rules)
        found.append(stray)
    return found


def _our_rules(s3, bucket: str, names: Names) -> Notification | None:
    """pipectl's notification rules on a bucket it no longer wants, if any."""
    owned = names.notification_prefixes()
    rules = {r["Id"]: r for r in buckets.notifications(s3, bucket).get("QueueConfigurations", [])
             if r.get("Id", "").startswith(owned)}
    return Notification(name=bucket, queue_rules=rules, owned_prefixes=owned) if rules else None
