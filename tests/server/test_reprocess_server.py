"""`pipectl reprocess` on the embedded default: the real command against a moto server,
the local runtime (`pipectl run`) doing the processing."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
import yaml

from tests.server.conftest import pipectl_env

pytestmark = pytest.mark.server

LONG_LINE = b'{"text": "' + b"x" * 200 + b'"}\n'


def set_limit(pipeline_dir, max_line_bytes: int | None) -> None:
    path = pipeline_dir / "pipeline.yaml"
    config = yaml.safe_load(path.read_text())
    if max_line_bytes is None:
        config["limits"].pop("max_line_bytes", None)
    else:
        config["limits"]["max_line_bytes"] = max_line_bytes
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def change_the_processor(pipeline_dir) -> None:
    """A new processor version: any change to a module it imports."""
    normalize = pipeline_dir / "handlers" / "processing" / "normalize.py"
    normalize.write_text(normalize.read_text() + "\n# version 2\n")


def rows(pipectl) -> dict[str, dict]:
    found = pipectl("-o", "json", "results", "-n", "1000")
    assert found.code == 0, found.err
    return {r["key"]: r for r in found.json()["results"]}


def outputs(client, names) -> list[str]:
    listed = client("s3").list_objects_v2(Bucket=names["processed"], Prefix="processed/")
    return sorted(o["Key"] for o in listed.get("Contents", []))


def versions_of(client, names, key: str) -> int:
    found = client("s3").list_object_versions(Bucket=names["processed"], Prefix=key)
    return len([v for v in found.get("Versions", []) if v["Key"] == key])


def run_until_idle(pipectl) -> None:
    done = pipectl("run", "--until-idle", "--timeout", "120", timeout=180)
    assert done.code == 0, done.err


def test_old_version_failed_and_stranded_files_all_end_processed_by_the_current_version(
        pipectl, pipeline_dir, client, names):
    # given version 1 with a small line limit: one file PROCESSED, one FAILED on the limit
    set_limit(pipeline_dir, 100)
    assert pipectl("deploy", "--yes").code == 0
    s3 = client("s3")
    s3.put_object(Bucket=names["raw"], Key="incoming/old.csv", Body=b"A,B\n1,2\n")
    s3.put_object(Bucket=names["raw"], Key="incoming/long.jsonl", Body=LONG_LINE)
    run_until_idle(pipectl)
    first = rows(pipectl)
    v1 = first["incoming/old.csv"]["details"]["processor_version"]
    assert (first["incoming/old.csv"]["status"], first["incoming/long.jsonl"]["status"]) == (
        "PROCESSED", "FAILED")
    # and then version 2 deployed with the limit raised, and a file whose event was lost
    set_limit(pipeline_dir, None)
    change_the_processor(pipeline_dir)
    assert pipectl("deploy", "--yes").code == 0
    s3.put_bucket_notification_configuration(Bucket=names["raw"], NotificationConfiguration={})
    s3.put_object(Bucket=names["raw"], Key="incoming/stranded.json", Body=b'{"a": 1}')

    # when: a dry run, then the reprocess itself
    dry = pipectl("-o", "json", "reprocess", "--not-current", "--stranded", "--dry-run")
    assert dry.code == 0, dry.err
    plan = dry.json()
    v2 = plan["target_version"]
    assert v2 != v1 and plan["sent"] == 0 and plan["selected"] == 3
    assert plan["by_status"] == {"PROCESSED": 1, "FAILED": 1, "STRANDED": 1}
    assert plan["bytes"] == 8 + len(LONG_LINE) + 8
    done = pipectl("reprocess", "--not-current", "--stranded", "--yes")
    assert done.code == 0, done.err
    # without a terminal: plain progress lines, then the summary (3 messages, 1 call)
    lines = done.err.splitlines()
    assert lines[0] == "sent 3/3", done.err
    assert lines[-1].startswith("sent 3 of 3 file(s) (1 FAILED, 1 PROCESSED, 1 STRANDED), ")
    assert "in 1 call(s)" in lines[-1] and lines[-1].endswith(f"-> version {v2}")
    run_until_idle(pipectl)

    # then every file is PROCESSED by version 2, with one output each
    after = rows(pipectl)
    assert {k: (r["status"], r["details"]["processor_version"]) for k, r in after.items()} == {
        k: ("PROCESSED", v2) for k in ("incoming/old.csv", "incoming/long.jsonl",
                                       "incoming/stranded.json")}
    assert after["incoming/old.csv"]["details"]["previous_version"] == v1
    assert after["incoming/old.csv"]["output"] == first["incoming/old.csv"]["output"]
    assert len(outputs(client, names)) == 3
    listed = s3.list_objects_v2(Bucket=names["raw"])
    assert sorted(o["Key"] for o in listed["Contents"]) == [
        "completed/long.jsonl", "completed/old.csv", "completed/stranded.json"]
    # and the counts reconcile
    checked = pipectl("-o", "json", "reconcile")
    assert checked.code == 0, checked.err
    assert (checked.json()["rows"], checked.json()["outputs"]) == (3, 3)
    # and the same reprocess again finds nothing to do
    again = pipectl("-o", "json", "reprocess", "--not-current", "--stranded", "--yes")
    assert again.code == 0 and again.json()["selected"] == 0, again.err
    assert again.json()["skipped"] == {}


def test_a_reprocess_killed_midway_and_run_again_loses_and_duplicates_nothing(
        pipectl, pipeline_dir, client, names, moto_server):
    # given 30 files processed by version 1, then version 2 deployed
    count = 30
    assert pipectl("deploy", "--yes").code == 0
    s3 = client("s3")
    for i in range(count):
        s3.put_object(Bucket=names["raw"], Key=f"incoming/f{i:02d}.csv", Body=f"n\n{i}\n".encode())
    run_until_idle(pipectl)
    change_the_processor(pipeline_dir)
    assert pipectl("deploy", "--yes").code == 0

    # when a paced reprocess is killed after its first messages are in the queue
    sqs = client("sqs")
    url = sqs.get_queue_url(QueueName=names["queue"])["QueueUrl"]
    command = [sys.executable, "-m", "pipectl", "--endpoint-url", moto_server, "reprocess",
               "--not-current", "--rate", "5", "--yes"]
    started = subprocess.Popen(command, cwd=pipeline_dir, env=pipectl_env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            depth = int(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])
            if depth >= 5:
                break
            time.sleep(0.1)   # polling the queue, not waiting for a result
        started.send_signal(signal.SIGKILL)
    finally:
        started.wait(timeout=10)
    assert started.returncode == -signal.SIGKILL
    assert 5 <= depth < count
    # and the rest is processed, then the same command run again
    run_until_idle(pipectl)
    again = pipectl("-o", "json", "reprocess", "--not-current", "--yes")
    assert again.code == 0, again.err
    assert 0 < again.json()["sent"] <= count - 5
    run_until_idle(pipectl)

    # then every file is PROCESSED by version 2, each output rewritten exactly once
    after = rows(pipectl)
    v2 = again.json()["target_version"]
    assert len(after) == count
    assert {r["status"] for r in after.values()} == {"PROCESSED"}
    assert {r["details"]["processor_version"] for r in after.values()} == {v2}
    keys = outputs(client, names)
    assert len(keys) == count
    assert {versions_of(client, names, k) for k in keys} == {2}    # version 1's, version 2's
    assert {r["attempts"] for r in after.values()} == {2}
    checked = pipectl("reconcile")
    assert checked.code == 0, checked.err
    # and a third run has nothing left to do
    assert pipectl("-o", "json", "reprocess", "--not-current", "--yes").json()["selected"] == 0
