"""The processor invoked by S3 Batch Operations (`pipectl reprocess --engine s3-batch`).

moto does not emulate Batch Operations, so the invocations are AWS's documented examples
(tests/events/s3_batch_invoke_1_0.json and _2_0.json, from
https://docs.aws.amazon.com/lambda/latest/dg/services-s3-batch.html and
https://docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-invoke-lambda.html),
with the bucket, keys and user arguments a pipectl job has; the answers are checked
against the documented response: invocationSchemaVersion, treatMissingKeysAs,
invocationId and per task taskId, resultCode (Succeeded | TemporaryFailure |
PermanentFailure) and resultString.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from urllib.parse import quote

import processor
import pytest

from tests.functional.conftest import PROCESSED, RAW

EVENTS = Path(__file__).resolve().parents[1] / "events"
RESPONSE_KEYS = {"invocationSchemaVersion", "treatMissingKeysAs", "invocationId", "results"}


def invocation(schema: str, *keys: str, bucket: str = RAW, arguments: dict | None = None
               ) -> dict:
    """The documented example of `schema`, naming keys (URL-encoded, as in the manifest)."""
    event = json.loads((EVENTS / f"s3_batch_invoke_{schema.replace('.', '_')}.json").read_text())
    template = event["tasks"][0]
    event["tasks"] = []
    for i, key in enumerate(keys):
        task = copy.deepcopy(template)
        task["taskId"], task["s3Key"] = f"task-{i}", quote(key, safe="/")
        if schema == "1.0":
            task["s3BucketArn"] = f"arn:aws:s3:::{bucket}"
        else:
            task["s3Bucket"] = bucket
        event["tasks"].append(task)
    if schema == "2.0":
        event["job"]["userArguments"] = arguments or {}
    return event


def answer_codes(answer: dict, event: dict) -> list[str]:
    assert set(answer) == RESPONSE_KEYS
    assert answer["invocationSchemaVersion"] == event["invocationSchemaVersion"]
    assert answer["invocationId"] == event["invocationId"]
    assert answer["treatMissingKeysAs"] == "PermanentFailure"
    assert [r["taskId"] for r in answer["results"]] == [t["taskId"] for t in event["tasks"]]
    assert all(isinstance(r["resultString"], str) for r in answer["results"])
    return [r["resultCode"] for r in answer["results"]]


@pytest.fixture
def processed_by_v1(aws_world, monkeypatch):
    monkeypatch.setenv("PROCESSOR_VERSION", "v1")
    for key in ("incoming/a b+c.csv", "incoming/two.json"):
        aws_world.upload(key, "n\n1\n" if key.endswith(".csv") else '{"n": 1}')
        processor.lambda_handler(aws_world.event(aws_world.message(key)), None)
    monkeypatch.setenv("PROCESSOR_VERSION", "v2")
    return aws_world


@pytest.mark.parametrize("schema", ["1.0", "2.0"])
def test_each_task_is_re_run_and_answered_succeeded(processed_by_v1, schema):
    world = processed_by_v1
    # the manifest names each file where it lies: completed/
    event = invocation(schema, "completed/a b+c.csv", "completed/two.json",
                       arguments={"pipectlReprocessRunId": "run7",
                                  "pipectlReprocessVersion": "v2"})

    answer = processor.lambda_handler(event, None)

    assert answer_codes(answer, event) == ["Succeeded", "Succeeded"]
    for key in ("incoming/a b+c.csv", "incoming/two.json"):
        row = world.row(key)
        assert (row["status"], row["processor_version"], row["previous_version"]) == (
            "PROCESSED", "v2", "v1")
        # schema 2.0 carries the run in the job's user arguments; 1.0 has none: the job is
        assert row["reprocess_run"] == ("run7" if schema == "2.0" else event["job"]["id"])
    assert world.keys(RAW) == ["completed/a b+c.csv", "completed/two.json"]
    assert len(world.keys(PROCESSED)) == 2
    # and the same job's retry of a task does nothing more
    again = processor.lambda_handler(event, None)
    assert answer_codes(again, event) == ["Succeeded", "Succeeded"]
    assert world.row("incoming/two.json")["attempts"] == 2


def test_a_file_that_fails_again_is_a_permanent_failure_with_the_reason(aws_world,
                                                                         monkeypatch):
    monkeypatch.setenv("MAX_LINE_BYTES", "10")
    aws_world.upload("incoming/long.jsonl", '{"text": "' + "x" * 50 + '"}\n')
    processor.lambda_handler(aws_world.event(aws_world.message("incoming/long.jsonl")), None)
    event = invocation("2.0", "failed/long.jsonl",
                       arguments={"pipectlReprocessRunId": "r", "pipectlReprocessVersion": "v"})

    answer = processor.lambda_handler(event, None)

    assert answer_codes(answer, event) == ["PermanentFailure"]
    assert "MAX_LINE_BYTES" in answer["results"][0]["resultString"]
    assert aws_world.keys(RAW) == ["failed/long.jsonl"]


def test_a_task_for_another_bucket_is_refused_permanently(aws_world):
    event = invocation("1.0", "incoming/x.csv", bucket="someone-elses-bucket")
    answer = processor.lambda_handler(event, None)
    assert answer_codes(answer, event) == ["PermanentFailure"]
    assert "not one this pipeline serves" in answer["results"][0]["resultString"]


def test_a_transient_failure_is_a_temporary_failure(processed_by_v1, monkeypatch):
    from botocore.exceptions import ClientError

    def throttled(*args, **kwargs):
        raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your "
                                                                    "request rate."}},
                          "GetObject")

    monkeypatch.setattr(processor.storage, "open_object", throttled)
    event = invocation("2.0", "completed/two.json",
                       arguments={"pipectlReprocessRunId": "r", "pipectlReprocessVersion": "v2"})
    answer = processor.lambda_handler(event, None)
    assert answer_codes(answer, event) == ["TemporaryFailure"]
    assert processed_by_v1.row("incoming/two.json")["processor_version"] == "v1"
