"""`pipectl archive` in-process against a moto server (the archiver runs in a local worker)."""

from __future__ import annotations

import json
import logging

import boto3
import pytest

from pipectl.ops.archive import GIB, PRICES_USD_PER_GB_MONTH
from tests.helpers import ACCOUNT

PROCESSED = f"pipectl-demo-dev-processed-{ACCOUNT}"
ARCHIVE = f"pipectl-demo-dev-archive-{ACCOUNT}"


@pytest.fixture
def cli(pipectl, moto_server, monkeypatch):
    # The in-process moto server's request log would write into other tests' captured stderr.
    monkeypatch.setattr(logging.getLogger("werkzeug"), "disabled", True)

    def invoke(*args: str):
        return pipectl("--endpoint-url", moto_server, *args)
    return invoke


@pytest.fixture
def s3(moto_server):
    return boto3.client("s3", endpoint_url=moto_server, region_name="us-east-1")


@pytest.fixture
def deployed(cli, s3):
    code, _, err = cli("deploy", "--yes")
    assert code == 0, err
    for key, size in {"processed/2024/05/17/a.jsonl": 1000, "processed/2024/05/18/b.jsonl": 3000,
                      "processed/2024/06/01/c.jsonl": 200_000}.items():
        s3.put_object(Bucket=PROCESSED, Key=key, Body=b"x" * size)
    return s3


def processed_keys(s3) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=PROCESSED).get("Contents", []))


@pytest.mark.parametrize("args, message", [
    (("--older-than", "soon"), "error: --older-than: expected a number of days or hours such "
                               "as 30d or 12h, got 'soon'"),
    (("--older-than", "3w"), "error: --older-than: expected a number of days or hours such "
                             "as 30d or 12h, got '3w'"),
    (("--lifecycle", "--dry-run"), "error: --lifecycle only lists; it takes no --dry-run, "
                                   "--older-than or --remote"),
])
def test_usage_errors_exit_2_with_one_line(cli, args, message):
    code, out, err = cli("archive", *args)
    assert (code, out, err.strip()) == (2, "", message)


def test_dry_run_groups_by_month_and_prices_the_move(cli, deployed):
    code, out, err = cli("-o", "json", "archive", "--dry-run", "--older-than", "0d")

    assert code == 0, err
    plan = json.loads(out)
    assert [(g["month"], g["source_prefix"], g["archive_prefix"], g["objects"], g["bytes"])
            for g in plan["groups"]] == [
        ("2024/05", "processed/2024/05/", "archive/2024/05/", 2, 4000),
        ("2024/06", "processed/2024/06/", "archive/2024/06/", 1, 200_000)]
    # STANDARD_IA bills each object as at least 128 KiB
    billable = 2 * 128 * 1024 + 200_000
    cost = plan["cost"]
    assert cost["standard_usd_per_month"] == round(204_000 / GIB * 0.023, 6)
    assert cost["target_usd_per_month"] == round(
        billable / GIB * PRICES_USD_PER_GB_MONTH["STANDARD_IA"], 6)
    assert len(processed_keys(deployed)) == 3

    code, out, err = cli("archive", "--dry-run", "--older-than", "0d")
    assert code == 0, err
    assert "2024/05" in out and "2024/06" in out
    # small objects cost more in STANDARD_IA than in STANDARD
    assert "3 objects, 199.2 KiB: $0.000004/month in STANDARD, $0.000005/month in " \
        "STANDARD_IA (+$0.000001; us-east-1 list prices (2024); other regions differ)" in out
    assert "us-east-1 list prices (2024); other regions differ" in out


def test_moving_asks_first_and_refuses_without_a_terminal(cli, deployed):
    code, out, err = cli("archive", "--older-than", "0d")

    assert code == 2
    assert err.strip().splitlines()[-1] == (
        "error: refusing to change anything without confirmation: pass --yes")
    assert "Would archive to" in out
    assert len(processed_keys(deployed)) == 3


def test_yes_moves_and_reports_in_json(cli, deployed):
    code, out, err = cli("-o", "json", "archive", "--older-than", "0d", "--yes")

    assert code == 0, err
    data = json.loads(out)
    assert (data["moved"], data["bytes"], data["errors"], data["skipped_glacier"]) == \
        (3, 204_000, 0, 0)
    assert {o["key"] for o in data["objects"]} == {
        "processed/2024/05/17/a.jsonl", "processed/2024/05/18/b.jsonl",
        "processed/2024/06/01/c.jsonl"}
    assert all(o["row"] == "no row: the object names no source file" for o in data["objects"])
    assert processed_keys(deployed) == []
    assert deployed.head_object(Bucket=ARCHIVE, Key="archive/2024/06/01/c.jsonl")[
        "StorageClass"] == "STANDARD_IA"


def test_objects_that_fail_are_kept_and_exit_1(cli, deployed):
    deployed.delete_bucket(Bucket=ARCHIVE)

    code, out, err = cli("archive", "--older-than", "0d", "--yes")

    assert code == 1
    assert "Archived 0 objects (0 B)" in out and "3 errors" in out
    assert "NoSuchBucket" in out
    assert len(processed_keys(deployed)) == 3


def test_remote_names_a_function_that_is_not_deployed(cli, moto_server):
    code, _, err = cli("archive", "--remote", "--dry-run")
    assert code == 1
    assert err.strip() == ("error: function 'pipectl-demo-dev-archiver' is not deployed on "
                           f"target 'local' ({moto_server}) (run `pipectl deploy`)")


def test_rejects_and_thumbnails_are_planned_and_moved_with_the_outputs(cli, deployed):
    deployed.put_object(Bucket=PROCESSED, Key="rejects/2024/05/17/a.jsonl", Body=b"r" * 10)
    deployed.put_object(Bucket=PROCESSED, Key="thumbnails/2024/06/01/c.png", Body=b"t" * 20)

    code, out, err = cli("-o", "json", "archive", "--dry-run", "--older-than", "0d")

    assert code == 0, err
    assert [(g["month"], g["source_prefix"], g["archive_prefix"], g["objects"], g["bytes"])
            for g in json.loads(out)["groups"]] == [
        ("2024/05", "processed/2024/05/", "archive/2024/05/", 2, 4000),
        ("2024/05", "rejects/2024/05/", "archive/rejects/2024/05/", 1, 10),
        ("2024/06", "processed/2024/06/", "archive/2024/06/", 1, 200_000),
        ("2024/06", "thumbnails/2024/06/", "archive/thumbnails/2024/06/", 1, 20)]
    code, out, err = cli("archive", "--dry-run", "--older-than", "0d")
    assert code == 0, err
    # one table row per group (the prefixes wrap in an 80-column table)
    assert [line.split("│")[1].strip() for line in out.splitlines()
            if line.startswith("│ 2024")] == ["2024/05", "2024/05", "2024/06", "2024/06"]
    assert "5 objects, 199.2 KiB" in out

    code, out, err = cli("-o", "json", "archive", "--older-than", "0d", "--yes")

    assert code == 0, err
    assert (json.loads(out)["moved"], json.loads(out)["errors"]) == (5, 0)
    assert processed_keys(deployed) == []
    archived = sorted(o["Key"] for o in deployed.list_objects_v2(Bucket=ARCHIVE)["Contents"])
    assert archived == ["archive/2024/05/17/a.jsonl", "archive/2024/05/18/b.jsonl",
                        "archive/2024/06/01/c.jsonl", "archive/rejects/2024/05/17/a.jsonl",
                        "archive/thumbnails/2024/06/01/c.png"]


def test_plan_then_question_then_progress_and_the_bar_moves(cli, deployed, monkeypatch):
    import contextlib

    from pipectl.cli import archive as archive_cli

    events: list = []
    monkeypatch.setattr(archive_cli, "confirm", lambda question, yes: events.append(question))

    @contextlib.contextmanager
    def progress(as_json):
        events.append("progress")
        yield lambda done, total: events.append((done, total))

    monkeypatch.setattr(archive_cli, "_progress", progress)
    code, _, err = cli("archive", "--older-than", "0d")

    assert code == 0, err
    assert events[:2] == ["Move 3 objects (199.2 KiB) to " + ARCHIVE + " as STANDARD_IA?",
                          "progress"]
    # one step per object as its copy is verified, not one jump at the end
    assert events[2:] == [(0, 3), (1, 3), (2, 3), (3, 3)]


def test_answering_no_prints_cancelled_and_exits_1(cli, deployed, monkeypatch):
    from pipectl.cli import deploy as deploy_cli

    monkeypatch.setattr(deploy_cli.sys, "stdin", type("Tty", (), {
        "isatty": lambda self: True, "readline": lambda self: "n\n"})())
    code, _, err = cli("archive", "--older-than", "0d")
    assert code == 1 and err.rstrip().endswith("cancelled")
    assert len(processed_keys(deployed)) == 3
