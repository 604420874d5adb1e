"""Crash the processor at every step, through the real runtime, and prove nothing is lost.

The processor's test hook (handlers/processor.py, `_fault`) SIGKILLs the worker process
at a named step when PIPECTL_FAULT names it; `pipectl run` passes its environment on to
its workers. Lambda would return the crashed batch to the queue; the local runtime
does the same, and the message comes back after the visibility timeout (6 x the
function timeout). A small timeout in the test's pipeline.yaml keeps that short.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.server

STEPS = ["after_download", "after_output", "before_results", "after_copy", "before_delete",
         "after_move"]


def configure(pipeline_dir: Path, **processor) -> None:
    path = pipeline_dir / "pipeline.yaml"
    config = yaml.safe_load(path.read_text())
    config["processor"].update(processor)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def versions(s3, bucket: str, key: str) -> list[dict]:
    found = s3.list_object_versions(Bucket=bucket, Prefix=key).get("Versions", [])
    return [v for v in found if v["Key"] == key]


def keys(s3, bucket: str, prefix: str = "") -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
                  .get("Contents", []))


def test_a_worker_killed_at_any_step_ends_with_every_file_processed_once(
        pipectl, pipeline_dir, client, names, tmp_path):
    # given a pipeline with a 2 s timeout (12 s visibility), one message per batch, and
    # one file per step at which its worker will be SIGKILLed once, plus one left alone
    configure(pipeline_dir, timeout=2, batch_size=1, max_receive_count=3)
    assert pipectl("deploy", "--yes").code == 0
    s3 = client("s3")
    files = {step: f"incoming/{step}.csv" for step in STEPS}
    files["none"] = "incoming/calm.csv"
    for key in files.values():
        s3.put_object(Bucket=names["raw"], Key=key, Body=b"Id,Name\n1,a\n2,b\n")
    markers = tmp_path / "markers"
    markers.mkdir()
    faults = ",".join(f"{step}:{files[step]}" for step in STEPS)

    # when the runtime serves the queue with the faults armed
    run = pipectl("--output", "json", "run", "--until-idle", "--timeout", "90",
                  env={"PIPECTL_FAULT": faults, "PIPECTL_FAULT_MARKER": str(markers)})

    # then every fault fired once, the crashed batches came back, and the run drained
    assert run.code == 0, run.err
    report = run.json()
    assert len(list(markers.iterdir())) == len(STEPS)
    assert report["crashes"] == len(STEPS) and report["idle"] is True
    rows = {r["key"]: r for r in pipectl("--output", "json", "results").json()["results"]}
    assert set(rows) == set(files.values())
    for step, key in files.items():
        row = rows[key]
        name = key.removeprefix("incoming/")
        # one results row, PROCESSED with the right counts
        assert (row["status"], row["records_in"], row["records_out"]) == \
            ("PROCESSED", 2, 2), step
        # one output object with one version
        output = row["output"].split("/", 3)[3]
        assert len(versions(s3, names["processed"], output)) == 1, step
        lines = s3.get_object(Bucket=names["processed"], Key=output)["Body"].read().splitlines()
        assert [json.loads(line)["id"] for line in lines] == ["1", "2"], step
        # the original in exactly one place, copied once
        assert len(versions(s3, names["raw"], f"completed/{name}")) == 1, step
    assert keys(s3, names["raw"], "incoming/") == []
    assert keys(s3, names["raw"], "failed/") == []
    status = pipectl("--output", "json", "status").json()
    assert status["results"]["PROCESSED"] == len(files)
    assert status["results"]["PROCESSING"] == 0 and status["results"]["FAILED"] == 0
    assert status["queue"]["visible"] == 0 and status["dlq"]["visible"] == 0


def test_a_handler_past_its_timeout_is_killed_retried_and_then_dead_lettered(
        pipectl, pipeline_dir, client, names):
    # given a 1 s timeout (6 s visibility), two receives allowed, and a file whose
    # handler hangs every time
    configure(pipeline_dir, timeout=1, batch_size=1, max_receive_count=2)
    assert pipectl("deploy", "--yes").code == 0
    s3 = client("s3")
    s3.put_object(Bucket=names["raw"], Key="incoming/slow.csv", Body=b"a\n1\n")

    # when the runtime serves the queue
    run = pipectl("--output", "json", "run", "--until-idle", "--timeout", "60",
                  env={"PIPECTL_FAULT": "hang@after_download:incoming/slow.csv"})

    # then each attempt was killed at the timeout, the message came back once, and after
    # maxReceiveCount receives it waits in the dead-letter queue
    assert run.code == 0, run.err
    report = run.json()
    assert report["timeouts"] == 2 and report["idle"] is True
    sqs = client("sqs")
    dlq = sqs.get_queue_url(QueueName=names["dlq"])["QueueUrl"]
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10,
                               AttributeNames=["ApproximateReceiveCount"])["Messages"]
    assert len(dead) == 1 and "slow.csv" in dead[0]["Body"]
    # nothing was lost: the original is still in incoming/, ready for replay-dlq
    assert keys(s3, names["raw"], "incoming/") == ["incoming/slow.csv"]
    assert keys(s3, names["processed"]) == []
    row = pipectl("--output", "json", "results", "incoming/slow.csv").json()
    assert row["status"] == "PROCESSING"


def test_a_file_that_hangs_every_time_takes_no_neighbour_to_the_dlq(
        pipectl, pipeline_dir, client, names):
    # given a 2 s timeout (12 s visibility), batches of ten, and a file whose handler hangs
    # every time among nine ordinary ones
    configure(pipeline_dir, timeout=2, batch_size=10, max_receive_count=3)
    assert pipectl("deploy", "--yes").code == 0
    s3 = client("s3")
    neighbours = [f"incoming/n{i}.csv" for i in range(9)]
    for key in ["incoming/poison/p.csv", *neighbours]:
        s3.put_object(Bucket=names["raw"], Key=key, Body=b"Id,Name\n1,a\n")

    # when the runtime serves the queue
    run = pipectl("--output", "json", "run", "--until-idle", "--timeout", "150",
                  env={"PIPECTL_FAULT": "hang@after_output:incoming/poison/p.csv"}, timeout=200)

    # then the nine were processed, and only the poison file's message is dead-lettered
    assert run.code == 0, run.err
    report = run.json()
    assert report["idle"] is True and report["timeouts"] >= 1
    rows = {r["key"]: r for r in pipectl("--output", "json", "results").json()["results"]}
    assert {k: rows[k]["status"] for k in neighbours} == {k: "PROCESSED" for k in neighbours}
    assert keys(s3, names["raw"], "incoming/") == ["incoming/poison/p.csv"]
    poison = rows["incoming/poison/p.csv"]
    # two attempts hung; then its deliveries stopped at once, the last of them counted too
    assert poison["status"] == "PROCESSING" and poison["attempts"] >= 3
    assert poison["last_error"].startswith(
        "not attempted: 2 attempts on this file crashed or timed out (the function's "
        "timeout is 2 s)")
    sqs = client("sqs")
    dlq = sqs.get_queue_url(QueueName=names["dlq"])["QueueUrl"]
    dead = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert len(dead) == 1 and "poison" in dead[0]["Body"]
    status = pipectl("status")
    assert "1 dead-lettered: not attempted: 2 attempts on this file crashed" in status.out
