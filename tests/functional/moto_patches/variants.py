"""Plain and patched moto side by side: what every moto-patch test uses."""

from __future__ import annotations

import pytest

from pipectl.local import moto_patches
from pipectl.local.moto_patches import patch_moto

TABLE, RANGED = "results", "ranged"


def plain(monkeypatch) -> None:
    """moto as released, even if an earlier test in this process patched it for good."""
    for p in moto_patches._patches():
        while getattr(moto_patches._current(p), "moto_patch", False):
            monkeypatch.setattr(p.owner, p.name, moto_patches._current(p).replaces)


def use(variant: str, monkeypatch) -> None:
    plain(monkeypatch)
    if variant == "patched":
        assert patch_moto(monkeypatch.setattr)


def on_plain_and_patched(run, *args) -> dict:
    """What run(*args) observes on plain moto and on patched moto, by variant."""
    observed = {}
    for name in ("plain", "patched"):
        with pytest.MonkeyPatch.context() as monkeypatch:
            use(name, monkeypatch)
            observed[name] = run(*args)
    return observed


def make_tables(client) -> None:
    stream = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        StreamSpecification=stream)
    client.create_table(TableName=RANGED, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "S"}])


def scan(client, table: str) -> list[dict]:
    items = client.scan(TableName=table, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item.get("sk", {}).get("S", "")))
