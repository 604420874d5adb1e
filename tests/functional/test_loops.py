"""Defence in depth against a recursive loop (issue 19 item 2): even when deployed with
prefixes pipectl validate refuses, a handler writes nothing under the prefix that
triggers it."""

from __future__ import annotations

import json

import fetcher
import processor

from tests.functional.conftest import PROCESSED, RAW


def test_the_processor_refuses_to_move_originals_under_its_own_trigger(aws_world, monkeypatch):
    # given a processor deployed by hand with completed/ under incoming/
    monkeypatch.setenv("COMPLETED_PREFIX", "incoming/done/")
    aws_world.upload("incoming/x.csv", "a\n1\n")

    # when its upload arrives
    result = processor.lambda_handler(aws_world.event(aws_world.message("incoming/x.csv")), None)

    # then nothing is written or moved, the message is done, and the row says why
    assert result == {"batchItemFailures": []}
    assert aws_world.keys(RAW) == ["incoming/x.csv"] and aws_world.keys(PROCESSED) == []
    row = aws_world.row("incoming/x.csv")
    assert (row["status"], row["attempts"]) == ("FAILED", 1)
    assert row["error"] == ("refused: the original would be written under 'incoming/done/', "
                            "which overlaps the prefix that triggers this function "
                            "('incoming/'): a recursive loop; fix the prefixes in "
                            "pipeline.yaml and deploy again")


def test_the_processor_refuses_outputs_under_its_trigger_in_the_raw_bucket(aws_world,
                                                                           monkeypatch):
    # given outputs configured into the raw bucket, under incoming/
    monkeypatch.setenv("PROCESSED_BUCKET", RAW)
    monkeypatch.setenv("PROCESSED_PREFIX", "incoming/out/")
    aws_world.upload("incoming/x.csv", "a\n1\n")

    processor.lambda_handler(aws_world.event(aws_world.message("incoming/x.csv")), None)

    assert aws_world.keys(RAW) == ["incoming/x.csv"]
    assert "output would be written under 'incoming/out/'" in aws_world.row(
        "incoming/x.csv")["error"]


def test_the_fetcher_refuses_to_write_responses_under_its_own_trigger(aws_world, monkeypatch):
    # given a fetcher whose responses (incoming/) would land under its trigger
    monkeypatch.setenv("FETCH_PREFIX", "incoming/")
    monkeypatch.setenv("INCOMING_PREFIX", "incoming/responses/")
    monkeypatch.setenv("COMPLETED_PREFIX", "completed/")
    key = "incoming/req.json"
    aws_world.upload(key, json.dumps({"url": "https://example.com/items"}))

    result = fetcher.lambda_handler(aws_world.event(aws_world.message(key)), None)

    # then no API is called (there is none here to answer), nothing moves, the row says why
    assert result == {"batchItemFailures": []}
    assert aws_world.keys(RAW) == [key]
    row = aws_world.row(key)
    assert row["status"] == "FAILED"
    assert row["error"].startswith("refused: the response would be written under "
                                   "'incoming/responses/'")
