"""The archiver handler under mock_aws: processed output -> verified copy -> row ARCHIVED."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from pipectl.naming import row_key

RAW, PROCESSED, ARCHIVE = "raw-bucket", "processed-bucket", "archive-bucket"  # as conftest.py
FILES = {
    "incoming/orders.csv": "Order ID,Customer Name\n1,Ada\n2,Grace\n",
    "incoming/users.json": '[{"User Name": "John"}, {"User Name": "Jane"}]',
    "incoming/sub/notes.txt": "one two\nthree\n",
}


class Crash(BaseException):
    """Stands for the process dying: nothing in the handler catches it."""


@pytest.fixture
def world(aws_world, atomic_dynamodb, monkeypatch):
    import archiver
    import processor

    monkeypatch.setenv("ARCHIVE_BUCKET", ARCHIVE)
    monkeypatch.setenv("STORAGE_CLASS", "STANDARD_IA")
    monkeypatch.setenv("RETENTION_DAYS", "30")
    for name in ("ARCHIVE_PREFIX", "ARCHIVER_CONCURRENCY", "ARCHIVER_KILL_AFTER_COPIES"):
        monkeypatch.delenv(name, raising=False)
    aws_world.s3.create_bucket(Bucket=ARCHIVE)
    aws_world.s3.put_bucket_versioning(Bucket=ARCHIVE,
                                       VersioningConfiguration={"Status": "Enabled"})
    archiver.reset_clients()
    for key, body in FILES.items():
        aws_world.upload(key, body)
        result = processor.lambda_handler(aws_world.event(aws_world.message(key)), None)
        assert result == {"batchItemFailures": []}
    yield aws_world
    archiver.reset_clients()


def processed_objects(world) -> dict[str, dict]:
    found = world.s3.list_objects_v2(Bucket=PROCESSED).get("Contents", [])
    return {o["Key"]: o for o in found}


def later(world, days: float) -> str:
    newest = max(o["LastModified"] for o in processed_objects(world).values())
    return (newest + timedelta(days=days)).isoformat()


def run(world, **event):
    import archiver

    return archiver.lambda_handler(event, None)


def test_only_objects_older_than_the_retention_move(world):
    # given outputs written just now and a retention of 30 days
    # when the archiver runs 29 days later, nothing is old enough
    early = run(world, now=later(world, 29))
    assert (early["moved"], early["objects"]) == (0, [])
    assert len(processed_objects(world)) == 3
    # when it runs 31 days later, everything is
    late = run(world, now=later(world, 31))
    assert late["moved"] == 3 and late["errors"] == 0
    assert processed_objects(world) == {}


def test_dry_run_lists_exactly_what_the_real_run_moves_and_changes_nothing(world):
    before = processed_objects(world)
    plan = run(world, older_than_days=0, dry_run=True)

    assert processed_objects(world) == before
    assert world.keys(ARCHIVE) == []
    planned = {o["key"] for o in plan["objects"] if o["action"] == "move"}
    assert planned == set(before)
    assert sum(g["objects"] for g in plan["groups"]) == 3
    assert sum(g["bytes"] for g in plan["groups"]) == sum(o["Size"] for o in before.values())
    assert world.row("__archiver__") is None  # a dry run is not a run

    done = run(world, older_than_days=0, now=plan["now"])
    assert {o["key"] for o in done["objects"] if o["status"] == "moved"} == planned
    assert done["moved"] == 3 and done["bytes"] == sum(o["Size"] for o in before.values())


def test_copies_keep_content_metadata_and_get_the_configured_storage_class(world):
    before = {k: world.read(PROCESSED, k) for k in processed_objects(world)}

    summary = run(world, older_than_days=0)

    assert summary["errors"] == 0
    for key, body in before.items():
        target = "archive/" + key.removeprefix("processed/")
        head = world.s3.head_object(Bucket=ARCHIVE, Key=target)
        assert head["StorageClass"] == "STANDARD_IA"
        assert head["Metadata"]["source"].startswith(f"s3://{RAW}/incoming/")
        assert world.read(ARCHIVE, target) == body
    day = datetime.now(timezone.utc).strftime("%Y/%m/%d")
    assert f"archive/{day}/sub/notes.txt.jsonl" in world.keys(ARCHIVE)


def test_rows_end_archived_and_the_counters_follow(world):
    summary = run(world, older_than_days=0)

    for key in FILES:
        row = world.row(key)
        assert row["status"] == "ARCHIVED"
        assert row["output"].startswith(f"s3://{ARCHIVE}/archive/")
        assert row["archived_from"].startswith(f"s3://{PROCESSED}/processed/")
        assert world.s3.head_object(Bucket=ARCHIVE, Key=row["output"].split("/", 3)[3])
    counters = world.row("__counters__")
    assert (counters["ARCHIVED"], counters["PROCESSED"]) == (3, 0)
    record = world.row("__archiver__")
    assert (record["moved"], record["errors"], record["bytes"]) == (3, 0, summary["bytes"])
    assert record["last_run_at"]

    # a second run finds nothing and counts nothing twice
    again = run(world, older_than_days=0)
    assert again["moved"] == 0
    assert world.row("__counters__")["ARCHIVED"] == 3


def test_a_run_killed_after_some_copies_is_finished_by_the_next_run(world, monkeypatch):
    import archiver

    monkeypatch.setenv("ARCHIVER_CONCURRENCY", "1")
    copies = []

    def crash_after_two():
        copies.append(1)
        if len(copies) == 2:
            raise Crash

    monkeypatch.setattr(archiver, "_after_copy", crash_after_two)
    with pytest.raises(Crash):
        run(world, older_than_days=0)
    # the crash came after the second copy, before its row was marked and before the
    # batch's deletes: every original is still there, one row is marked
    assert len(processed_objects(world)) == 3
    assert len(world.keys(ARCHIVE)) == 2
    assert world.row("__counters__")["ARCHIVED"] == 1

    monkeypatch.setattr(archiver, "_after_copy", lambda: None)
    summary = run(world, older_than_days=0)

    assert (summary["moved"], summary["errors"]) == (3, 0)
    assert processed_objects(world) == {}
    # every object archived once: no key was copied a second time
    versions = world.versions(ARCHIVE, "archive/")
    assert len(versions) == 3 and len({v["Key"] for v in versions}) == 3
    assert world.row("__counters__")["ARCHIVED"] == 3


def test_an_object_in_glacier_is_reported_not_copied(world):
    world.s3.put_object(Bucket=PROCESSED, Key="processed/2020/01/02/cold.jsonl", Body=b"{}\n",
                        StorageClass="GLACIER")

    summary = run(world, older_than_days=0)

    assert summary["skipped_glacier"] == 1 and summary["errors"] == 0
    cold = [o for o in summary["objects"] if o["key"].endswith("cold.jsonl")]
    assert cold[0]["action"] == "skip_glacier" and cold[0]["storage_class"] == "GLACIER"
    assert "archive/2020/01/02/cold.jsonl" not in world.keys(ARCHIVE)
    assert "processed/2020/01/02/cold.jsonl" in processed_objects(world)


def test_a_copy_that_does_not_match_is_replaced_before_the_original_goes(world):
    key = next(k for k in processed_objects(world) if k.endswith("orders.csv.jsonl"))
    target = "archive/" + key.removeprefix("processed/")
    world.s3.put_object(Bucket=ARCHIVE, Key=target, Body=b"truncated",
                        StorageClass="STANDARD_IA")
    body = world.read(PROCESSED, key)

    assert run(world, older_than_days=0)["errors"] == 0

    assert world.read(ARCHIVE, target) == body


def test_a_multipart_output_is_verified_by_sha256(world):
    from common import storage

    big = (json.dumps({"n": 1, "_metadata": {"source": f"s3://{RAW}/incoming/big.csv"}})
           + "\n") * 200_000
    assert len(big) > storage.PART_SIZE
    writer = storage.ObjectWriter(world.s3, PROCESSED, "processed/2024/05/17/big.jsonl")
    writer.write(big.encode())
    writer.close()
    assert "-" in world.s3.head_object(Bucket=PROCESSED,
                                       Key="processed/2024/05/17/big.jsonl")["ETag"]

    summary = run(world, older_than_days=0)

    big_entry = next(o for o in summary["objects"] if o["key"].endswith("big.jsonl"))
    assert big_entry["status"] == "moved"
    # no metadata on this one: the row key came from the first record, and there is no row
    assert big_entry["row"] == f"no row for s3://{RAW}/incoming/big.csv"
    assert world.read(ARCHIVE, "archive/2024/05/17/big.jsonl") == big


def test_failed_deletes_are_errors_and_the_next_run_finishes_them(world, monkeypatch):
    import archiver

    s3 = archiver.s3_client()
    real = s3.delete_objects

    def refuse_one(**kwargs):
        first = kwargs["Delete"]["Objects"][0]["Key"]
        kwargs["Delete"]["Objects"] = kwargs["Delete"]["Objects"][1:]
        r = real(**kwargs)
        r["Errors"] = [{"Key": first, "Code": "AccessDenied", "Message": "Access Denied"}]
        return r

    monkeypatch.setattr(s3, "delete_objects", refuse_one)
    summary = run(world, older_than_days=0)
    assert (summary["moved"], summary["errors"]) == (2, 1)
    failed = next(o for o in summary["objects"] if o["status"] == "error")
    assert failed["error"] == "delete failed: AccessDenied: Access Denied"
    assert list(processed_objects(world)) == [failed["key"]]

    monkeypatch.setattr(s3, "delete_objects", real)
    again = run(world, older_than_days=0)
    assert (again["moved"], again["errors"]) == (1, 0)
    assert processed_objects(world) == {} and world.row("__counters__")["ARCHIVED"] == 3


def test_a_row_processed_again_since_keeps_its_newer_output(world):
    row = world.row("incoming/orders.csv")
    world.table.update_item(
        Key={"object_key": row_key(RAW, "incoming/orders.csv")}, UpdateExpression="SET #o = :o",
        ExpressionAttributeNames={"#o": "output"},
        ExpressionAttributeValues={":o": f"s3://{PROCESSED}/elsewhere.jsonl"})

    summary = run(world, older_than_days=0)

    assert summary["moved"] == 3
    assert world.row("incoming/orders.csv")["status"] == row["status"] == "PROCESSED"
    assert world.row("__counters__")["ARCHIVED"] == 2


def test_a_malformed_request_fails_the_invocation(world):
    with pytest.raises(ValueError, match="older_than_days must be a number"):
        run(world, older_than_days="soon")
    assert world.row("__archiver__") is None  # no run was recorded


def test_a_run_out_of_time_defers_the_rest_to_the_next_run(world):
    import archiver

    class NoTimeLeft:
        def get_remaining_time_in_millis(self):
            return 0

    summary = archiver.lambda_handler({"older_than_days": 0}, NoTimeLeft())

    assert (summary["moved"], summary["remaining"], summary["truncated"]) == (0, 3, True)
    assert len(processed_objects(world)) == 3 and world.keys(ARCHIVE) == []
    assert run(world, older_than_days=0)["moved"] == 3


# --- one run in several invocations: the __archiver__ item adds them up ---------------

class Chunks:
    """Lambda's clock for a run that has time for one object per invocation: every copy
    takes 'a second' of an invocation that may work for 0.8 s."""

    def __init__(self, monkeypatch):
        import archiver

        self.clock = 0.0
        monkeypatch.setenv("ARCHIVER_CONCURRENCY", "1")
        monkeypatch.setattr(archiver, "time", self)
        monkeypatch.setattr(archiver, "_after_copy", self.tick)

    def monotonic(self) -> float:
        return self.clock

    def tick(self) -> None:
        self.clock += 1

    def get_remaining_time_in_millis(self) -> int:
        return 1000  # less a fifth for the margin: 0.8 s of work


def test_a_run_continued_over_invocations_records_the_whole_run(world, monkeypatch):
    import archiver

    context = Chunks(monkeypatch)
    sizes = sum(o["Size"] for o in processed_objects(world).values())
    first = archiver.lambda_handler({"older_than_days": 0}, context)
    assert (first["moved"], first["remaining"], first["truncated"]) == (1, 2, True)
    follow = {"older_than_days": 0, "now": first["now"], "run_id": first["run_id"]}
    chunks = [first] + [archiver.lambda_handler(follow, context) for _ in range(2)]

    assert [c["moved"] for c in chunks] == [1, 1, 1] and chunks[-1]["remaining"] == 0
    record = world.row("__archiver__")
    assert (record["run_id"], record["last_run_at"]) == (first["run_id"], first["started_at"])
    assert (record["moved"], record["bytes"], record["errors"], record["invocations"],
            record["remaining"]) == (3, sizes, 0, 3, 0)

    # a new run (no run_id: the schedule's event, or the next `pipectl archive`) starts fresh
    fresh = archiver.lambda_handler({"older_than_days": 0}, context)
    assert fresh["run_id"] != first["run_id"]
    record = world.row("__archiver__")
    assert (record["run_id"], record["moved"], record["bytes"], record["invocations"]) == (
        fresh["run_id"], 0, 0, 1)


def test_a_continuation_does_not_add_to_a_run_started_since(world, monkeypatch):
    import archiver

    context = Chunks(monkeypatch)
    first = archiver.lambda_handler({"older_than_days": 0}, context)
    other = archiver.lambda_handler({"older_than_days": 0}, context)  # e.g. the schedule
    assert (first["moved"], other["moved"]) == (1, 1)

    archiver.lambda_handler({"older_than_days": 0, "run_id": first["run_id"]}, context)

    record = world.row("__archiver__")
    assert (record["run_id"], record["moved"], record["invocations"]) == (other["run_id"], 1, 1)


def test_pipectl_archive_carries_the_run_across_invocations_and_status_shows_it(
        world, monkeypatch):
    from types import SimpleNamespace

    import archiver
    import boto3

    from pipectl.ops import archive as ops
    from pipectl.ops.results import last_archiver_run

    context = Chunks(monkeypatch)
    sizes = sum(o["Size"] for o in processed_objects(world).values())
    runner = ops.Runner(aws=None, config=None, names=SimpleNamespace(function=lambda f: f),
                        remote=False)
    monkeypatch.setattr(runner, "_invoke", lambda event: archiver.lambda_handler(event, context))

    done = runner.run(ops.request("0d", dry_run=False))

    assert (done.invocations, done.moved, done.bytes, done.remaining) == (3, 3, sizes, 0)
    assert done.run_id == world.row("__archiver__")["run_id"]
    shown = last_archiver_run(boto3.client("dynamodb"),
                              SimpleNamespace(results_table=world.table.name))
    assert (shown["moved"], shown["bytes"], shown["errors"]) == (3, sizes, 0)


def test_an_output_with_a_non_ascii_name_is_archived_and_its_row_follows(world):
    import processor

    # given a processed file whose name (and so its output's `source` metadata) is not ASCII
    key = "incoming/été/données café.csv"
    world.upload(key, "a\n1\n")
    assert processor.lambda_handler(world.event(world.message(key)), None) == {
        "batchItemFailures": []}

    # when the archiver runs past the retention
    late = run(world, now=later(world, 31))

    # then the output moved and the row, found through the decoded metadata, says so
    assert late["errors"] == 0
    row = world.row(key)
    assert row["status"] == "ARCHIVED"
    assert row["output"].endswith("/été/données café.csv.jsonl")
