"""The archiver keeps Hive-style partition paths (output.partition_by dt, year/month/day)."""

from __future__ import annotations

from datetime import datetime, timezone

from archiving.layout import Settings, archive_key

S = Settings(processed_bucket="p", archive_bucket="a", results_table="t")
WHEN = datetime(2030, 5, 6, tzinfo=timezone.utc)


def test_parquet_outputs_keep_their_partition_path_in_the_archive():
    assert archive_key(S, "processed/dt=2026-01-02/users.csv.parquet", WHEN) == \
        "archive/dt=2026-01-02/users.csv.parquet"
    assert archive_key(S, "processed/year=2026/month=01/day=02/a.jsonl.gz", WHEN) == \
        "archive/year=2026/month=01/day=02/a.jsonl.gz"
    assert archive_key(S, "rejects/dt=2026-01-02/users.csv.jsonl", WHEN) == \
        "archive/rejects/dt=2026-01-02/users.csv.jsonl"
    # something that only looks like a partition is filed as undated, as before
    assert archive_key(S, "processed/dt=soon/x.parquet", WHEN) == \
        "archive/2030/05/undated/dt=soon/x.parquet"
