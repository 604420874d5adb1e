"""The archiver and the processor's other outputs: rejects/ files and thumbnails/ age out
with the outputs, under archive/rejects/ and archive/thumbnails/, and their rows follow."""

from __future__ import annotations

import io
import json
from datetime import timedelta

import pytest
from PIL import Image

from pipectl.naming import row_key

RAW, PROCESSED, ARCHIVE = "raw-bucket", "processed-bucket", "archive-bucket"  # as conftest.py
SCHEMA = [{"match": "incoming/orders/*", "required": ["order_id"],
           "fields": {"order_id": {"type": "integer", "min": 1}}, "max_reject_ratio": 0.5}]
UPLOADS = {
    "incoming/orders/day1.csv": "Order ID\n1\n0\n2\n",  # one reject: PROCESSED, with rejects
    "incoming/orders/bad.csv": "Order ID\n0\n-1\n3\n",  # two of three: FAILED, rejects kept
}


def jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (200, 100), "red").save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture
def world(aws_world, atomic_dynamodb, monkeypatch):
    import archiver
    import processor

    monkeypatch.setenv("ARCHIVE_BUCKET", ARCHIVE)
    monkeypatch.setenv("STORAGE_CLASS", "STANDARD_IA")
    monkeypatch.setenv("RETENTION_DAYS", "30")
    monkeypatch.setenv("RECORD_SCHEMAS", json.dumps(SCHEMA))
    monkeypatch.setenv("THUMBNAIL_WIDTH", "50")
    for name in ("ARCHIVE_PREFIX", "ARCHIVER_CONCURRENCY", "ARCHIVER_KILL_AFTER_COPIES",
                 "SINK_TABLE"):
        monkeypatch.delenv(name, raising=False)
    aws_world.s3.create_bucket(Bucket=ARCHIVE)
    archiver.reset_clients()
    for key, body in {**UPLOADS, "incoming/pets/cat.jpg": jpeg()}.items():
        aws_world.upload(key, body)
        result = processor.lambda_handler(aws_world.event(aws_world.message(key)), None)
        assert result == {"batchItemFailures": []}
    yield aws_world
    archiver.reset_clients()


def contents(world) -> dict[str, dict]:
    return {o["Key"]: o for o in world.s3.list_objects_v2(Bucket=PROCESSED).get("Contents", [])}


def day_of(world) -> str:
    """The date path the processor gave the outputs (the uploads' LastModified day)."""
    output = next(k for k in world.keys(PROCESSED, "processed/") if k.endswith("/day1.csv.jsonl"))
    return output.removeprefix("processed/")[:len("YYYY/MM/DD")]


def run(**event):
    import archiver

    return archiver.lambda_handler(event, None)


def test_the_processor_wrote_every_kind_of_output(world):
    day = day_of(world)
    assert sorted(contents(world)) == [
        f"processed/{day}/orders/day1.csv.jsonl", f"processed/{day}/pets/cat.jpg.jsonl",
        f"rejects/{day}/orders/bad.csv.jsonl", f"rejects/{day}/orders/day1.csv.jsonl",
        f"thumbnails/{day}/pets/cat.jpg"]


def test_rejects_and_thumbnails_age_out_by_the_same_rule_as_outputs(world):
    day = day_of(world)
    before = {k: world.s3.get_object(Bucket=PROCESSED, Key=k)["Body"].read()
              for k in contents(world)}
    newest = max(o["LastModified"] for o in contents(world).values())

    early = run(now=(newest + timedelta(days=29)).isoformat())
    assert (early["moved"], early["objects"]) == (0, [])
    assert len(contents(world)) == 5

    late = run(now=(newest + timedelta(days=31)).isoformat())

    assert (late["moved"], late["errors"]) == (5, 0)
    assert contents(world) == {}
    moved = [f"{day}/orders/day1.csv.jsonl", f"{day}/pets/cat.jpg.jsonl"]
    other = [f"rejects/{day}/orders/day1.csv.jsonl", f"rejects/{day}/orders/bad.csv.jsonl",
             f"thumbnails/{day}/pets/cat.jpg"]
    expected = {**{f"processed/{k}": f"archive/{k}" for k in moved},
                **{k: f"archive/{k}" for k in other}}
    assert {o["key"]: o["archive_key"] for o in late["objects"]} == expected
    assert world.keys(ARCHIVE) == sorted(expected.values())
    for key, target in expected.items():
        head = world.s3.head_object(Bucket=ARCHIVE, Key=target)
        assert head["StorageClass"] == "STANDARD_IA"
        assert world.s3.get_object(Bucket=ARCHIVE, Key=target)["Body"].read() == before[key]


def test_rows_follow_their_rejects_and_thumbnails_and_nothing_else_changes(world):
    day = day_of(world)
    failed_before = world.row("incoming/orders/bad.csv")

    summary = run(older_than_days=0)

    assert summary["errors"] == 0
    day1 = world.row("incoming/orders/day1.csv")
    assert (day1["status"], day1["output"]) == (
        "ARCHIVED", f"s3://{ARCHIVE}/archive/{day}/orders/day1.csv.jsonl")
    assert day1["rejects"] == f"s3://{ARCHIVE}/archive/rejects/{day}/orders/day1.csv.jsonl"
    cat = world.row("incoming/pets/cat.jpg")
    assert cat["status"] == "ARCHIVED"
    assert cat["thumbnail"] == f"s3://{ARCHIVE}/archive/thumbnails/{day}/pets/cat.jpg"
    # A FAILED file keeps its status and its place among recent failures (updated_at);
    # only the link to its rejects moved.
    failed = world.row("incoming/orders/bad.csv")
    assert failed == dict(failed_before,
                          rejects=f"s3://{ARCHIVE}/archive/rejects/{day}/orders/bad.csv.jsonl")
    counters = world.row("__counters__")
    assert (counters["ARCHIVED"], counters["PROCESSED"], counters["FAILED"]) == (2, 0, 1)
    rows = {o["key"]: o["row"] for o in summary["objects"]}
    assert rows[f"rejects/{day}/orders/bad.csv.jsonl"] == (
        f"s3://{RAW}/incoming/orders/bad.csv: rejects archived")
    assert rows[f"thumbnails/{day}/pets/cat.jpg"] == (
        f"s3://{RAW}/incoming/pets/cat.jpg: thumbnail archived")


def test_a_row_that_links_elsewhere_now_is_left_alone(world):
    day = day_of(world)
    elsewhere = f"s3://{PROCESSED}/thumbnails/2099/01/01/pets/cat.jpg"
    world.table.update_item(Key={"object_key": row_key(RAW, "incoming/pets/cat.jpg")},
                            UpdateExpression="SET thumbnail = :t",
                            ExpressionAttributeValues={":t": elsewhere})

    summary = run(older_than_days=0)

    assert summary["errors"] == 0
    assert world.row("incoming/pets/cat.jpg")["thumbnail"] == elsewhere
    thumb = next(o for o in summary["objects"] if o["key"].startswith("thumbnails/"))
    assert (thumb["status"], thumb["row"]) == (
        "moved", f"s3://{RAW}/incoming/pets/cat.jpg: left alone, its thumbnail is now {elsewhere}")
    assert f"archive/thumbnails/{day}/pets/cat.jpg" in world.keys(ARCHIVE)


def test_dry_run_groups_rejects_and_thumbnails_like_outputs(world):
    day = day_of(world)
    month = day[:7]
    sizes = {k: o["Size"] for k, o in contents(world).items()}

    plan = run(older_than_days=0, dry_run=True)

    def size(prefix: str) -> int:
        return sum(v for k, v in sizes.items() if k.startswith(prefix))
    assert [(g["month"], g["source_prefix"], g["archive_prefix"], g["objects"], g["bytes"])
            for g in plan["groups"]] == [
        (month, f"processed/{month}/", f"archive/{month}/", 2, size("processed/")),
        (month, f"rejects/{month}/", f"archive/rejects/{month}/", 2, size("rejects/")),
        (month, f"thumbnails/{month}/", f"archive/thumbnails/{month}/", 1, size("thumbnails/"))]
    assert sorted(contents(world)) == sorted(sizes) and world.keys(ARCHIVE) == []


def test_undated_rejects_are_filed_apart_from_undated_outputs(world):
    import archiver

    settings = archiver.Settings.from_env()
    when = contents(world)[next(iter(contents(world)))]["LastModified"]
    month = when.strftime("%Y/%m")
    assert archiver.archive_key(settings, "rejects/x.jsonl", when) == \
        f"archive/rejects/{month}/undated/x.jsonl"
    assert archiver.archive_key(settings, "processed/x.jsonl", when) == \
        f"archive/{month}/undated/x.jsonl"
    assert archiver.archive_key(settings, "processed/rejects/2024/01/02/x.jsonl", when) == \
        f"archive/{month}/undated/rejects/2024/01/02/x.jsonl"
