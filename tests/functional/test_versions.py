"""Processor versions: derived from what deploy builds, written into rows, records and
outputs, and filterable in `results`."""

from __future__ import annotations

import dataclasses
import json

import boto3
import processor
import pytest

from pipectl.deploy.desired import processor_version
from pipectl.ops.results import query_results
from pipectl.output_format import Output
from tests.functional.conftest import PROCESSED


def test_the_version_is_the_deployed_code_and_the_settings_that_change_output(cfg):
    # given the repository's pipeline
    base = processor_version(cfg)

    # then it is stable, 12 hex digits, and changes with what changes an output ...
    assert processor_version(cfg) == base and len(base) == 12 and int(base, 16) >= 0
    assert processor_version(dataclasses.replace(cfg, environment="qa")) != base
    thumbnails = dataclasses.replace(cfg.images, thumbnail_width=cfg.images.thumbnail_width + 1)
    assert processor_version(dataclasses.replace(cfg, images=thumbnails)) != base
    parquet = Output(format="parquet")
    assert processor_version(dataclasses.replace(cfg, output=parquet)) != base
    # ... but not with a limit, which decides whether a file is processed, not its output
    limits = dataclasses.replace(cfg.limits, max_line_bytes=cfg.limits.max_line_bytes * 2)
    assert processor_version(dataclasses.replace(cfg, limits=limits)) == base

    # when a module the processor imports changes
    normalize = cfg.handlers_dir / "processing" / "normalize.py"
    normalize.write_text(normalize.read_text() + "\n# a change\n")

    # then so does the version; a module only the archiver imports does not count
    changed = processor_version(cfg)
    assert changed != base
    layout = cfg.handlers_dir / "archiving" / "layout.py"
    layout.write_text(layout.read_text() + "\n# a change\n")
    assert processor_version(cfg) == changed


def test_deploy_passes_the_version_to_the_processor_only(deployed, cfg):
    lam = boto3.client("lambda", region_name="us-east-1")

    def env(kind: str) -> dict:
        found = lam.get_function_configuration(FunctionName=deployed.function(kind))
        return found["Environment"]["Variables"]

    assert env("processor")["PROCESSOR_VERSION"] == processor_version(cfg)
    assert "PROCESSOR_VERSION" not in env("archiver") and "PROCESSOR_VERSION" not in env("fetcher")


def test_the_processor_writes_its_version_into_row_records_and_output(aws_world, monkeypatch):
    # given a processor deployed as version abc123
    monkeypatch.setenv("PROCESSOR_VERSION", "abc123def456")
    key = "incoming/v.csv"
    aws_world.upload(key, "A,B\n1,2\n3,4\n")

    # when it processes a file
    assert processor.lambda_handler(aws_world.event(aws_world.message(key)), None) == {
        "batchItemFailures": []}

    # then the row, every record's _metadata and the output's metadata say so
    row = aws_world.row(key)
    assert row["processor_version"] == "abc123def456"
    output_key = row["output"].split("/", 3)[3]
    records = [json.loads(line) for line in aws_world.read(PROCESSED, output_key).splitlines()]
    assert [r["_metadata"]["processor_version"] for r in records] == ["abc123def456"] * 2
    head = aws_world.s3.head_object(Bucket=PROCESSED, Key=output_key)
    assert head["Metadata"]["processor-version"] == "abc123def456"


def test_without_a_deployed_version_the_processor_says_unversioned(aws_world, monkeypatch):
    monkeypatch.delenv("PROCESSOR_VERSION", raising=False)
    aws_world.upload("incoming/u.json", '{"a": 1}')
    processor.lambda_handler(aws_world.event(aws_world.message("incoming/u.json")), None)
    assert aws_world.row("incoming/u.json")["processor_version"] == "unversioned"


def _put_rows(names, versions: dict[str, str | None]) -> None:
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    raw = names.bucket("raw")
    for i, (key, version) in enumerate(versions.items()):
        item = {"object_key": {"S": f"s3://{raw}/{key}"}, "key": {"S": key},
                "status": {"S": "PROCESSED"}, "updated_at": {"S": f"2026-01-01T00:00:0{i}"}}
        if version is not None:
            item["processor_version"] = {"S": version}
        ddb.put_item(TableName=names.results_table, Item=item)


@pytest.mark.parametrize("limit", [1, 2, 50])
def test_results_filter_by_version_and_by_any_other_version(deployed, limit):
    # given rows of two versions and one written before versions were recorded
    _put_rows(deployed, {"incoming/old1.csv": "aaaaaaaaaaaa", "incoming/new.csv": "bbbbbbbbbbbb",
                         "incoming/old2.csv": "aaaaaaaaaaaa", "incoming/before.csv": None})
    ddb = boto3.client("dynamodb", region_name="us-east-1")

    def keys(version) -> set[str]:
        found, token = [], None
        while True:
            page = query_results(ddb, deployed, version=version, limit=limit, page_token=token)
            found += [r.key for r in page.results]
            token = page.next_token
            if token is None:
                assert len(found) == len(set(found))
                return set(found)

    # then one version's rows, and every row another version (or none) wrote
    assert keys(("aaaaaaaaaaaa", True)) == {"incoming/old1.csv", "incoming/old2.csv"}
    assert keys(("bbbbbbbbbbbb", False)) == {"incoming/old1.csv", "incoming/old2.csv",
                                             "incoming/before.csv"}
    assert keys(("cccccccccccc", True)) == set()
