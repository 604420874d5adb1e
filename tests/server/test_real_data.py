"""Real data through the real `pipectl` (issue 19): non-ASCII names, loop configs, duplicate
deliveries and outputs that must not collide."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.server


def keys(s3, bucket: str, prefix: str = "") -> list[str]:
    found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in found)


def _announcement(sqs, queue_url: str) -> str:
    """The body of the upload's S3 notification (the s3:TestEvent is dropped)."""
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                  WaitTimeSeconds=1).get("Messages", [])
        assert got, "the upload's notification never arrived"
        for m in got:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])
            if "Records" in json.loads(m["Body"]):
                return m["Body"]


def configure(pipeline_dir: Path, section: str, **settings) -> None:
    path = pipeline_dir / "pipeline.yaml"
    config = yaml.safe_load(path.read_text())
    config.setdefault(section, {}).update(settings)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.mark.parametrize("batch_size, concurrency", [(10, 1), (1, 4)],
                         ids=["one-batch", "concurrent-batches"])
def test_one_file_delivered_four_times_is_processed_once_without_waiting_out_the_timeout(
        pipectl, pipeline_dir, client, names, batch_size, concurrency):
    configure(pipeline_dir, "processor", batch_size=batch_size)
    assert pipectl("deploy", "--yes").code == 0
    s3, sqs = client("s3"), client("sqs")
    queue_url = sqs.get_queue_url(QueueName=names["queue"])["QueueUrl"]
    s3.put_object(Bucket=names["raw"], Key="incoming/twice.csv", Body=b"a,b\n1,2\n")
    body = _announcement(sqs, queue_url)
    for _ in range(4):      # S3 and SQS deliver at least once
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)

    started = time.monotonic()
    run = pipectl("--output", "json", "run", "--until-idle", "--concurrency", str(concurrency),
                  "--timeout", "600", timeout=630)
    elapsed = time.monotonic() - started

    # then one attempt processed it and every copy was settled, none dead-lettered
    assert run.code == 0, run.err
    rows = pipectl("--output", "json", "results").json()["results"]
    assert [(r["key"], r["status"], r["attempts"]) for r in rows] == [
        ("incoming/twice.csv", "PROCESSED", 1)]
    assert keys(s3, names["raw"], "completed/") == ["completed/twice.csv"]
    dlq_url = sqs.get_queue_url(QueueName=names["dlq"])["QueueUrl"]
    assert sqs.receive_message(QueueUrl=dlq_url).get("Messages", []) == []
    print(f"four deliveries of one file, batch size {batch_size}, {concurrency} pollers: "
          f"run --until-idle took {elapsed:.1f} s")
    # A copy that found the lease comes back when it ends (the 60 s timeout + margin),
    # not after the queue's 360 s visibility timeout.
    assert elapsed < (30 if batch_size > 1 else 120)


NON_ASCII = {"incoming/café.csv": "name,city\nAda,Zürich\n".encode(),
             "incoming/ünïcødé/données.json": b'{"name": "Grace"}',
             "incoming/日本語 レポート.csv": b"a,b\n1,2\n"}


def test_files_with_non_ascii_names_are_processed_in_one_attempt(pipectl, client, names):
    assert pipectl("deploy", "--yes").code == 0
    s3 = client("s3")
    for key, body in NON_ASCII.items():
        s3.put_object(Bucket=names["raw"], Key=key, Body=body)

    run = pipectl("--output", "json", "run", "--until-idle", "--timeout", "90")

    assert run.code == 0, run.err
    assert run.json()["failed"] == 0
    rows = {r["key"]: r for r in pipectl("--output", "json", "results").json()["results"]}
    assert {k: (r["status"], r["attempts"]) for k, r in rows.items()} == \
        dict.fromkeys(NON_ASCII, ("PROCESSED", 1))
    assert keys(s3, names["raw"], "incoming/") == []
    assert keys(s3, names["raw"], "completed/") == sorted(
        "completed/" + k.removeprefix("incoming/") for k in NON_ASCII)
    for key, row in rows.items():
        output = row["output"].split("/", 3)[3]
        assert output.endswith("/" + key.removeprefix("incoming/") + ".jsonl")
        assert json.loads(s3.get_object(Bucket=names["processed"], Key=output)["Body"]
                          .readline())["_metadata"]["source"] == f"s3://{names['raw']}/{key}"


def test_a_recursive_loop_in_pipeline_yaml_stops_every_command(pipectl, pipeline_dir):
    configure(pipeline_dir, "prefixes", completed="incoming/done/")

    for command in (["validate"], ["deploy", "--yes"], ["status"]):
        result = pipectl(*command)
        assert result.code == 2, command
        (line,) = result.err.strip().splitlines()
        assert line.startswith(f"error: {pipeline_dir / 'pipeline.yaml'}:")
        assert line.endswith(": prefixes.completed: 'incoming/done/' lies under "
                             "prefixes.incoming ('incoming/'), which triggers processing: "
                             "everything written there would trigger it again (a recursive "
                             "loop); choose a prefix outside it")


def test_sources_with_one_stem_keep_one_output_each(pipectl, client, names):
    assert pipectl("deploy", "--yes").code == 0
    s3 = client("s3")
    uploads = {"incoming/collide.csv": b"n\ncsv\n", "incoming/collide.json": b'{"n": "json"}',
               "incoming/collide.jsonl": b'{"n": "jsonl"}\n',
               "incoming/collide.csv.gz": gzip.compress(b"n\ngz\n")}
    for key, body in uploads.items():
        s3.put_object(Bucket=names["raw"], Key=key, Body=body)

    assert pipectl("run", "--until-idle", "--timeout", "90").code == 0

    rows = {r["key"]: r for r in pipectl("--output", "json", "results").json()["results"]}
    outputs = {key: rows[key]["output"].split("/", 3)[3] for key in uploads}
    assert len(set(outputs.values())) == len(uploads)
    assert sorted(o.rsplit("/", 1)[1] for o in outputs.values()) == [
        "collide.csv.gz.jsonl", "collide.csv.jsonl", "collide.json.jsonl", "collide.jsonl.jsonl"]
    found = {key: json.loads(s3.get_object(Bucket=names["processed"], Key=o)["Body"].read())["n"]
             for key, o in outputs.items()}
    assert found == {"incoming/collide.csv": "csv", "incoming/collide.json": "json",
                     "incoming/collide.jsonl": "jsonl", "incoming/collide.csv.gz": "gz"}
