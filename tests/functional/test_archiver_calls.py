"""The archiver's requests per object: one CopyObject each, the rest shared by the batch."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.helpers import count_calls

RAW, PROCESSED, ARCHIVE = "raw-bucket", "processed-bucket", "archive-bucket"  # as conftest.py
FILES = 12


@pytest.fixture
def world(aws_world, atomic_dynamodb, monkeypatch):
    import archiver
    import processor

    monkeypatch.setenv("ARCHIVE_BUCKET", ARCHIVE)
    monkeypatch.setenv("STORAGE_CLASS", "STANDARD_IA")
    for name in ("ARCHIVE_PREFIX", "ARCHIVER_CONCURRENCY", "ARCHIVER_KILL_AFTER_COPIES"):
        monkeypatch.delenv(name, raising=False)
    aws_world.s3.create_bucket(Bucket=ARCHIVE)
    for i in range(FILES):
        key = f"incoming/batch/file-{i}.csv"
        aws_world.upload(key, f"Order ID,Name\n{i},Ada\n")
        assert processor.lambda_handler(aws_world.event(aws_world.message(key)), None) == \
            {"batchItemFailures": []}
    archiver.reset_clients()
    yield aws_world
    archiver.reset_clients()


@pytest.fixture
def calls():
    """Every request the archiver's clients make, as service.Operation -> count."""
    import archiver

    yield from count_calls(archiver.reset_clients)


def run(**event):
    import archiver

    return archiver.lambda_handler(event, None)


def s3_calls(counted: Counter) -> Counter:
    return Counter({k: v for k, v in counted.items() if k.startswith("s3.")})


@pytest.mark.parametrize("concurrency", ["1", "8"])
def test_each_object_costs_one_copy_and_the_batch_shares_the_rest(world, calls, monkeypatch,
                                                                  concurrency):
    monkeypatch.setenv("ARCHIVER_CONCURRENCY", concurrency)

    summary = run(older_than_days=0)

    assert (summary["moved"], summary["errors"]) == (FILES, 0)
    # listings: processed/, rejects/, thumbnails/ and the archive range; one delete
    assert s3_calls(calls) == Counter({"s3.CopyObject": FILES, "s3.ListObjectsV2": 4,
                                       "s3.DeleteObjects": 1})
    # no row is read: found in the index, marked by conditional transactions
    assert calls["dynamodb.Query"] == 1 and calls["dynamodb.GetItem"] == 0
    assert calls["dynamodb.TransactWriteItems"] <= FILES
    if concurrency == "1":  # one row per transaction, marked before the next copy
        assert calls["dynamodb.TransactWriteItems"] == FILES
    assert world.row("__counters__")["ARCHIVED"] == FILES
    for i in range(FILES):
        row = world.row(f"incoming/batch/file-{i}.csv")
        assert row["status"] == "ARCHIVED" and row["output"].startswith(f"s3://{ARCHIVE}/")


def test_a_row_the_index_does_not_find_is_found_by_the_copys_metadata(world, calls):
    # given a row updated long after its output was written: outside the index window
    world.table.update_item(
        Key={"object_key": f"s3://{RAW}/incoming/batch/file-0.csv"},
        UpdateExpression="SET updated_at = :late",
        ExpressionAttributeValues={":late": "2999-01-01T00:00:00+00:00"})

    summary = run(older_than_days=0)

    assert (summary["moved"], summary["errors"]) == (FILES, 0)
    assert calls["s3.HeadObject"] == 1 and calls["s3.CopyObject"] == FILES
    assert world.row("incoming/batch/file-0.csv")["status"] == "ARCHIVED"
    assert world.row("__counters__")["ARCHIVED"] == FILES


def test_a_row_that_changed_since_the_index_was_read_takes_the_exact_path(world, calls,
                                                                           monkeypatch):
    # given: between the index query and the rows' transaction, a file is processed again
    # and its row points at a newer output
    from archiving import rows

    row_hints = rows.row_hints

    def then_reprocessed(s, entries):
        hints = row_hints(s, entries)
        world.table.update_item(
            Key={"object_key": f"s3://{RAW}/incoming/batch/file-3.csv"},
            UpdateExpression="SET #o = :newer", ExpressionAttributeNames={"#o": "output"},
            ExpressionAttributeValues={":newer": f"s3://{PROCESSED}/processed/newer.jsonl"})
        return hints

    import archiver
    monkeypatch.setattr(archiver, "row_hints", then_reprocessed)

    summary = run(older_than_days=0)

    # every object is archived, the re-processed row keeps its newer output, and the
    # counters move for the others only
    assert (summary["moved"], summary["errors"]) == (FILES, 0)
    kept = world.row("incoming/batch/file-3.csv")
    assert (kept["status"], kept["output"]) == ("PROCESSED",
                                                f"s3://{PROCESSED}/processed/newer.jsonl")
    counters = world.row("__counters__")
    assert (counters["ARCHIVED"], counters["PROCESSED"]) == (FILES - 1, 1)
    rows_left = [o for o in summary["objects"] if "left alone" in o.get("row", "")]
    assert len(rows_left) == 1
