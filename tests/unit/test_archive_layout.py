"""Where the archiver files each kind of object, and the archive lifecycle covering all of it."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path

import archiver
import pytest

from pipectl import config as config_module
from pipectl.deploy.desired import (
    ARCHIVE_EXPIRY_RULE,
    ARCHIVE_LIFECYCLE_RULE,
    GLACIER_MIN_BYTES,
    bucket,
)
from pipectl.naming import Names
from pipectl.ops.lifecycle import _applies
from tests.helpers import ACCOUNT

ROOT = Path(__file__).resolve().parents[2]
WHEN = datetime(2024, 5, 17, 12, tzinfo=timezone.utc)
KEYS = ("processed/2024/05/17/orders.jsonl", "rejects/2024/05/17/orders.jsonl",
        "thumbnails/2024/05/17/pets/cat.jpg", "processed/odd.jsonl", "rejects/odd.jsonl",
        "thumbnails/odd.png")


def settings(archive_prefix: str) -> archiver.Settings:
    return archiver.Settings(processed_bucket="p", archive_bucket="a", results_table="t",
                             archive=archive_prefix)


@pytest.mark.parametrize("archive_prefix", ["archive/", "cold/storage/"])
def test_every_archived_key_is_distinct_and_under_the_lifecycle_rule(archive_prefix):
    cfg = config_module.load(ROOT / "pipeline.yaml")
    cfg = dataclasses.replace(cfg, prefixes=dataclasses.replace(cfg.prefixes,
                                                                archive=archive_prefix))
    desired = bucket(cfg, Names(cfg, ACCOUNT, "us-east-1"), "archive", tls_only=True)
    tiering = desired.lifecycle_rules[ARCHIVE_LIFECYCLE_RULE]
    expiry = desired.lifecycle_rules[ARCHIVE_EXPIRY_RULE]

    targets = [archiver.archive_key(settings(archive_prefix), k, WHEN) for k in KEYS]

    assert len(set(targets)) == len(KEYS)
    # Every archived object expires; only those of 128 KiB or more go to Glacier.
    for size in (0, 1, GLACIER_MIN_BYTES - 1, GLACIER_MIN_BYTES, 5 * 1024 ** 3):
        assert all(_applies(expiry, {"Key": t, "Size": size}) for t in targets), targets
        assert all(_applies(tiering, {"Key": t, "Size": size}) == (size >= GLACIER_MIN_BYTES)
                   for t in targets), (size, targets)
    assert targets[1] == f"{archive_prefix}rejects/2024/05/17/orders.jsonl"
    assert targets[2] == f"{archive_prefix}thumbnails/2024/05/17/pets/cat.jpg"


def test_a_key_outside_every_area_is_refused():
    with pytest.raises(ValueError, match="'completed/x.csv' is under none of the prefixes"):
        archiver.archive_key(settings("archive/"), "completed/x.csv", WHEN)


def test_the_archivers_role_may_take_every_kind_it_archives():
    # moto evaluates no IAM, so a prefix missing here would pass every other test and
    # fail the whole run on AWS with AccessDenied.
    from fnmatch import fnmatchcase

    from pipectl.deploy.policies import archiver_policy

    cfg = config_module.load(ROOT / "pipeline.yaml")
    names = Names(cfg, ACCOUNT, "us-east-1")
    statements = archiver_policy(cfg, names)["Statement"]
    bucket_arn = f"arn:aws:s3:::{names.bucket('processed')}"

    def allowed(action: str, resource: str) -> bool:
        for s in statements:
            actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
            resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
            if action in actions and any(fnmatchcase(resource, r) for r in resources):
                return True
        return False

    for key in KEYS:
        assert allowed("s3:GetObject", f"{bucket_arn}/{key}"), key
        assert allowed("s3:DeleteObject", f"{bucket_arn}/{key}"), key
    listing = next(s for s in statements if s["Sid"] == "ListProcessed")
    prefixes = listing["Condition"]["StringLike"]["s3:prefix"]
    assert {"processed/*", "rejects/*", "thumbnails/*"} <= set(prefixes), prefixes
