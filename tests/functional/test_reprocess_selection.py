"""What `pipectl reprocess` selects, against a deployment under mock_aws."""

from __future__ import annotations

import boto3
import pytest

from pipectl.deploy.desired import processor_version
from pipectl.errors import UsageError
from pipectl.ops.reprocess import ALREADY_CURRENT, Selection, reprocess


@pytest.fixture
def table(deployed, cfg):
    """Rows of three versions: the deployed one, 'old' and 'older', written in time order."""
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    raw = deployed.bucket("raw")
    current = processor_version(cfg)

    def put(key: str, status: str, version: str | None, at: str, size: int = 10) -> None:
        item = {"object_key": {"S": f"s3://{raw}/{key}"}, "key": {"S": key},
                "bucket": {"S": raw}, "status": {"S": status}, "updated_at": {"S": at},
                "size": {"N": str(size)}, "etag": {"S": '"e"'}}
        if version:
            item["processor_version"] = {"S": version}
        ddb.put_item(TableName=deployed.results_table, Item=item)

    put("incoming/a.csv", "PROCESSED", "older", "2026-01-01T00:00:00+00:00")
    put("incoming/b.json", "PROCESSED", "older", "2026-01-02T00:00:00+00:00")
    put("incoming/c.csv", "FAILED", "old", "2026-01-03T00:00:00+00:00", size=7)
    put("incoming/d.csv", "PROCESSED", "old", "2026-01-04T00:00:00+00:00")
    put("incoming/e.csv", "PROCESSED", current, "2026-01-05T00:00:00+00:00")
    put("incoming/f.csv", "PROCESSING", "old", "2026-01-06T00:00:00+00:00")
    put("incoming/g.csv", "ARCHIVED", "older", "2026-01-07T00:00:00+00:00")
    put("incoming/h.csv", "FAILED", None, "2026-01-08T00:00:00+00:00")
    return deployed


def selected(aws, names, **options) -> list[str]:
    report = reprocess(aws, names, Selection(**options), dry_run=True)
    assert report.sent == 0 and report.calls == 0
    return [c.key for c in report.selected]


def test_not_current_is_every_finished_row_the_deployed_version_did_not_write(aws, table):
    report = reprocess(aws, table, Selection(not_current=True), dry_run=True)
    assert sorted(c.key for c in report.selected) == [
        "incoming/a.csv", "incoming/b.json", "incoming/c.csv", "incoming/d.csv",
        "incoming/h.csv"]
    assert report.by_status == {"PROCESSED": 3, "FAILED": 2}
    assert report.bytes == 10 * 4 + 7


def test_status_glob_time_and_max_narrow_it(aws, table):
    assert selected(aws, table, statuses=("FAILED",)) == ["incoming/c.csv", "incoming/h.csv"]
    assert selected(aws, table, key_filter="incoming/*.json") == ["incoming/b.json"]
    assert selected(aws, table, since="2026-01-02T00:00:00+00:00",
                    until="2026-01-04T00:00:00+00:00", statuses=("PROCESSED",)) == [
        "incoming/b.json", "incoming/d.csv"]
    # oldest first, so --max takes the files that waited longest
    assert selected(aws, table, statuses=("PROCESSED",), max_files=2) == [
        "incoming/a.csv", "incoming/b.json"]


def test_rows_the_deployed_version_processed_are_skipped_and_counted(aws, table):
    report = reprocess(aws, table, Selection(statuses=("PROCESSED",)), dry_run=True)
    assert "incoming/e.csv" not in [c.key for c in report.selected]
    assert report.skipped == {ALREADY_CURRENT: 1}


def test_older_than_version_is_what_other_versions_wrote_before_it(aws, table):
    assert sorted(selected(aws, table, older_than_version="old")) == [
        "incoming/a.csv", "incoming/b.json"]
    with pytest.raises(UsageError, match="no results row was written by version 'nope'"):
        selected(aws, table, older_than_version="nope")


def test_stranded_is_an_object_in_incoming_without_a_row(aws, table):
    s3 = boto3.client("s3", region_name="us-east-1")
    raw = table.bucket("raw")
    for key in ("incoming/a.csv", "incoming/lost 1.csv", "incoming/sub/lost2.json",
                "incoming/sub/", "completed/x.csv"):
        s3.put_object(Bucket=raw, Key=key, Body=b"12345")
    report = reprocess(aws, table, Selection(stranded=True), dry_run=True)
    assert [(c.key, c.status, c.size) for c in report.selected] == [
        ("incoming/lost 1.csv", "STRANDED", 5), ("incoming/sub/lost2.json", "STRANDED", 5)]
    assert selected(aws, table, stranded=True, key_filter="incoming/sub/*") == [
        "incoming/sub/lost2.json"]
