"""The operator's views against a moto server, through the real pipectl command."""

from __future__ import annotations

import json
import re

import pytest

pytestmark = pytest.mark.server


def test_trace_and_logs_follow_a_processed_file(pipectl, client, names):
    # given: a deployed pipeline, one upload, processed by the local runtime
    assert pipectl("deploy", "--yes").code == 0
    client("s3").put_object(Bucket=names["raw"], Key="incoming/x.csv", Body=b"a,b\n1,2\n")
    done = pipectl("run", "--until-idle", "--timeout", "60")
    assert done.code == 0, done.err

    # when
    traced = pipectl("--output", "json", "trace", "incoming/x.csv")
    table = pipectl("trace", "incoming/x.csv")
    logs = pipectl("logs", "processor", "--since", "1h")

    # then: the file left incoming/, has a PROCESSED row, an output and an original in completed/
    assert traced.code == 0, traced.err
    stages = {s["stage"]: s for s in traced.json()["stages"]}
    assert not stages["incoming"]["found"]
    assert stages["result"]["found"] and stages["result"]["detail"].startswith(
        "PROCESSED, attempts 1")
    assert stages["output"]["found"] and stages["completed"]["found"]
    assert not stages["failed"]["found"] and not stages["dead-letter queue"]["found"]
    assert table.code == 0 and "completed" in table.out
    assert logs.code == 0, logs.err
    # one short line per event: time, function, key, outcome, duration, reason
    assert any(re.fullmatch(r"\d\d:\d\d:\d\d processor incoming/x\.csv PROCESSED \d+ ms  .+",
                            line) for line in logs.out.splitlines()), logs.out
    assert "_aws" not in logs.out and "START RequestId" not in logs.out
    records = [json.loads(line) for line in pipectl(
        "logs", "processor", "--since", "1h", "--format", "json").out.splitlines()]
    done = next(r for r in records if r.get("key") == "incoming/x.csv"
                and r.get("status") == "PROCESSED")
    assert "_aws" not in done and done["records_out"] == 1


def test_status_check_after_a_bad_file_and_invoke_with_a_generated_event(pipectl, client,
                                                                          names, tmp_path):
    assert pipectl("deploy", "--yes").code == 0
    s3 = client("s3")
    s3.put_object(Bucket=names["raw"], Key="incoming/bad.json", Body=b'{"a": [1')
    assert pipectl("run", "--until-idle", "--timeout", "60").code == 0

    check = pipectl("status", "--check")
    assert check.code == 1
    assert any(line.startswith("files failed since ") and "incoming/bad.json" in line
               for line in check.out.splitlines())

    # a file that no notification delivered, run through the handler once by hand
    s3.put_object(Bucket=names["raw"], Key="incoming/by hand.csv", Body=b"a\n1\n")
    event = pipectl("events", "s3-put", "--key", "incoming/by hand.csv", "--sqs")
    assert event.code == 0, event.err
    (tmp_path / "event.json").write_text(event.out)
    invoked = pipectl("invoke", "processor", "--event", str(tmp_path / "event.json"))
    assert invoked.code == 0, invoked.err
    assert json.loads(invoked.out) == {"batchItemFailures": []}
    assert '"key": "incoming/by hand.csv"' in invoked.err
    row = pipectl("--output", "json", "results", "incoming/by hand.csv").json()
    assert row["status"] == "PROCESSED"
