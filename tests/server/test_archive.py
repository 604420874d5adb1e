"""`pipectl archive` against a moto server: deploy, upload, process, then archive."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from tests.server.conftest import deploy_and_process

pytestmark = pytest.mark.server

UPLOADS = {
    "incoming/orders.csv": b"Order ID,Customer Name\n1,Ada\n2,Grace\n",
    "incoming/users.json": b'{"User Name": "John", "Age": 7}',
    "incoming/notes.txt": b"one two\nthree\n",
    "incoming/more/events.jsonl": b'{"a": 1}\n{"a": 2}\n',
}


@pytest.fixture
def processed(pipectl, client, names):
    """The pipeline deployed, four files uploaded and processed."""
    s3 = deploy_and_process(pipectl, client, names, UPLOADS)
    assert len(keys(s3, names["processed"])) == len(UPLOADS)
    return s3


def keys(s3, bucket: str, prefix: str = "") -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def test_dry_run_lists_exactly_what_the_run_then_moves(pipectl, processed, names):
    s3 = processed
    before = keys(s3, names["processed"])

    plan = pipectl("-o", "json", "archive", "--dry-run", "--older-than", "0d")
    assert plan.code == 0, plan.err
    planned = {o["key"] for o in plan.json()["objects"] if o["action"] == "move"}
    assert planned == before
    assert keys(s3, names["processed"]) == before and keys(s3, names["archive"]) == set()

    run = pipectl("-o", "json", "archive", "--older-than", "0d", "--yes")
    assert run.code == 0, run.err
    data = run.json()
    assert {o["key"] for o in data["objects"] if o["status"] == "moved"} == planned
    assert data["moved"] == len(UPLOADS) and data["errors"] == 0
    assert keys(s3, names["processed"]) == set()
    archived = keys(s3, names["archive"], "archive/")
    assert archived == {"archive/" + k.removeprefix("processed/") for k in planned}
    for key in archived:  # the class pipeline.yaml configures
        assert s3.head_object(Bucket=names["archive"], Key=key)["StorageClass"] == "STANDARD_IA"

    rows = {r["key"]: r for r in pipectl("-o", "json", "results").json()["results"]}
    assert {k: r["status"] for k, r in rows.items()} == {k: "ARCHIVED" for k in UPLOADS}
    status = pipectl("-o", "json", "status").json()
    assert status["results"]["ARCHIVED"] == len(UPLOADS)
    assert status["results"]["PROCESSED"] == 0
    assert status["archiver"]["moved"] == len(UPLOADS) and status["archiver"]["errors"] == 0


def test_a_run_killed_halfway_is_finished_by_the_next(pipectl, processed, names):
    s3 = processed
    killed = pipectl("archive", "--older-than", "0d", "--yes",
                     env={"ARCHIVER_KILL_AFTER_COPIES": "2", "ARCHIVER_CONCURRENCY": "1"})
    assert killed.code == 1
    assert killed.err.strip().splitlines()[-1] == (
        "error: the archiver stopped mid-run (Runtime exited with error: signal: SIGKILL); "
        "nothing is lost: run `pipectl archive` again to finish")
    assert len(keys(s3, names["processed"])) == len(UPLOADS)  # no original deleted yet
    assert len(keys(s3, names["archive"])) == 2

    again = pipectl("-o", "json", "archive", "--older-than", "0d", "--yes")
    assert again.code == 0, again.err
    assert again.json()["moved"] == len(UPLOADS)
    assert keys(s3, names["processed"]) == set()
    versions = s3.list_object_versions(Bucket=names["archive"]).get("Versions", [])
    assert len(versions) == len(UPLOADS) == len({v["Key"] for v in versions})  # copied once
    status = pipectl("-o", "json", "status").json()
    assert status["results"]["ARCHIVED"] == len(UPLOADS)


def test_glacier_objects_are_reported_and_the_default_retention_keeps_new_output(
        pipectl, processed, names):
    s3 = processed
    s3.put_object(Bucket=names["processed"], Key="processed/2020/01/02/cold.jsonl",
                  Body=b"{}\n", StorageClass="GLACIER")

    fresh = pipectl("-o", "json", "archive", "--dry-run")  # retention_days: 30
    assert fresh.code == 0, fresh.err
    assert fresh.json()["groups"] == []

    run = pipectl("archive", "--older-than", "0d", "--yes")
    assert run.code == 0, run.err
    assert "1 objects are already in a Glacier class and were not copied" in run.err
    assert f"Archived {len(UPLOADS)} objects" in run.out
    assert "processed/2020/01/02/cold.jsonl" in keys(s3, names["processed"])
    assert "archive/2020/01/02/cold.jsonl" not in keys(s3, names["archive"])


def test_lifecycle_lists_dates_from_the_buckets_own_rules(pipectl, processed, names):
    assert pipectl("archive", "--older-than", "0d", "--yes").code == 0
    s3 = processed
    # Under 128 KiB an archived file stays in STANDARD_IA; at 128 KiB it may go to Glacier.
    s3.put_object(Bucket=names["archive"], Key="archive/2020/01/big.jsonl",
                  Body=b"x" * (128 * 1024), StorageClass="STANDARD_IA")
    rules = s3.get_bucket_lifecycle_configuration(Bucket=names["archive"])["Rules"]
    tiering = next(r for r in rules if r["ID"] == "pipectl-archive-tiering")
    tiering["Transitions"][0]["Days"] = 10  # the bucket, not pipeline.yaml, decides
    s3.put_bucket_lifecycle_configuration(Bucket=names["archive"],
                                          LifecycleConfiguration={"Rules": rules})

    listed = pipectl("-o", "json", "archive", "--lifecycle")
    table = pipectl("archive", "--lifecycle")

    assert listed.code == 0, listed.err
    objects = {o["key"]: o for o in listed.json()["objects"]}
    assert len(objects) == len(UPLOADS) + 1
    for key, o in objects.items():
        created = datetime.fromisoformat(o["last_modified"]).astimezone(timezone.utc)
        midnight = created.replace(hour=0, minute=0, second=0, microsecond=0)
        if key.endswith("big.jsonl"):
            assert o["transition"] == "GLACIER"
            assert datetime.fromisoformat(o["transition_at"]) == midnight + timedelta(days=11)
        else:
            assert o["size"] < 128 * 1024 and o["transition"] is None, o
        assert datetime.fromisoformat(o["expires_at"]) == midnight + timedelta(days=366)
        assert o["due"] == []
    note = ("rule 'pipectl-archive-tiering' transitions only objects larger than 131,071 "
            "bytes: smaller ones stay in their class")
    assert any(n.startswith(note) for n in listed.json()["notes"])
    assert table.code == 0 and note in " ".join(table.err.split()), table.err


def test_remote_on_the_emulator_fails_in_one_line(pipectl):
    assert pipectl("deploy", "--yes").code == 0

    remote = pipectl("archive", "--remote", "--yes", "--older-than", "0d")

    assert remote.code == 1
    lines = remote.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: invoking pipectl-demo-dev-archiver failed:"), remote.err
