"""Any S3 client uploads -> S3 event -> queue -> local runtime -> output + results row."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.server

AWKWARD = "incoming/my report (v2)+final.csv"


def keys(s3, bucket: str, prefix: str = "") -> list[str]:
    found = s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in found)


def test_deploy_over_plain_http_skips_the_tls_policy_and_a_second_deploy_changes_nothing(pipectl):
    first = pipectl("deploy", "--yes")
    assert first.code == 0, first.err
    assert "no TLS-only policy" in first.err

    second = pipectl("--output", "json", "deploy", "--dry-run")
    assert second.code == 0, second.err
    plan = second.json()
    assert plan["changes"] is False
    assert plan["summary"] == {"create": 0, "update": 0, "delete": 0, "noop": 27}


def test_deploy_refuses_to_change_anything_unasked_when_it_cannot_prompt(pipectl):
    result = pipectl("deploy")
    assert result.code == 2
    assert result.err.strip().splitlines()[-1] == (
        "error: refusing to change anything without confirmation: pass --yes")
    assert "Plan: 27 to create" in result.out


def test_files_from_any_client_flow_through_and_bad_input_fails_cleanly(pipectl, client, names):
    assert pipectl("deploy", "--yes").code == 0
    s3 = client("s3")
    s3.put_object(Bucket=names["raw"], Key="incoming/orders.csv",
                  Body=b"Order ID,Customer Name,Note\n1,Ada,\n2,Grace,rush\n")
    s3.put_object(Bucket=names["raw"], Key=AWKWARD, Body=b"A B,C\n1,2\n")
    s3.put_object(Bucket=names["raw"], Key="incoming/users.json",
                  Body=b'{"User Name": "John", "Email Address": "john@example.com", "Age": null}')
    s3.put_object(Bucket=names["raw"], Key="incoming/bad.json", Body=b'{"a": [1, 2')
    s3.put_object(Bucket=names["raw"], Key="elsewhere/ignored.csv", Body=b"a\n1\n")

    run = pipectl("--output", "json", "run", "--until-idle", "--timeout", "90")

    assert run.code == 0, run.err
    report = run.json()
    # Four uploads plus the s3:TestEvent that configuring the notification sent to each of
    # the two queues: the local runtime, not the emulator, received every message.
    assert report["messages"] == 6 and report["failed"] == 0 and report["idle"] is True

    rows = {r["key"]: r for r in pipectl("--output", "json", "results").json()["results"]}
    assert set(rows) == {"incoming/orders.csv", AWKWARD, "incoming/users.json",
                         "incoming/bad.json"}
    assert rows["incoming/orders.csv"]["status"] == "PROCESSED"
    assert (rows["incoming/orders.csv"]["records_in"], rows["incoming/orders.csv"]["records_out"]) \
        == (2, 2)
    assert rows[AWKWARD]["status"] == "PROCESSED"
    assert rows["incoming/bad.json"]["status"] == "FAILED"
    assert "invalid JSON" in rows["incoming/bad.json"]["error"]

    # Nothing lost: every original is in exactly one of completed/ or failed/.
    assert keys(s3, names["raw"], "incoming/") == []
    assert keys(s3, names["raw"], "completed/") == sorted(
        ["completed/orders.csv", "completed/my report (v2)+final.csv", "completed/users.json"])
    assert keys(s3, names["raw"], "failed/") == ["failed/bad.json"]

    output = rows["incoming/users.json"]["output"].split("/", 3)[3]
    record = json.loads(s3.get_object(Bucket=names["processed"], Key=output)["Body"].read())
    assert {k: v for k, v in record.items() if k != "_metadata"} == {
        "user_name": "John", "email_address": "john@example.com"}
    assert record["_metadata"]["source"] == f"s3://{names['raw']}/incoming/users.json"
    assert record["_metadata"]["environment"] == "dev"

    status = pipectl("--output", "json", "status")
    assert status.code == 0, status.err
    data = status.json()
    assert data["results"]["PROCESSED"] == 3 and data["results"]["FAILED"] == 1
    assert data["queue"]["visible"] == 0 and data["dlq"]["visible"] == 0
    assert data["buckets"] == {"raw": names["raw"], "processed": names["processed"],
                               "archive": names["archive"]}


def test_results_key_in_full_and_filters(pipectl, client, names):
    assert pipectl("deploy", "--yes").code == 0
    client("s3").put_object(Bucket=names["raw"], Key="incoming/a.txt", Body=b"one two\nthree\n")
    assert pipectl("run", "--until-idle", "--timeout", "60").code == 0

    row = pipectl("--output", "json", "results", "incoming/a.txt").json()
    assert row["status"] == "PROCESSED" and row["attempts"] == 1
    assert pipectl("--output", "json", "results", "--status", "failed").json()["results"] == []
    missing = pipectl("results", "incoming/nope.csv")
    assert missing.code == 1 and "no result for 'incoming/nope.csv'" in missing.err
    bad = pipectl("results", "--status", "DONE")
    assert bad.code == 2 and "--status: 'DONE' is not one of" in bad.err


def test_handler_logs_reach_the_functions_log_group(pipectl, client, names):
    assert pipectl("deploy", "--yes").code == 0
    client("s3").put_object(Bucket=names["raw"], Key="incoming/x.csv", Body=b"a\n1\n")
    assert pipectl("run", "--until-idle", "--timeout", "60").code == 0
    logs = client("logs")
    group = "/aws/lambda/pipectl-demo-dev-processor"
    events = logs.filter_log_events(logGroupName=group)["events"]
    messages = [e["message"] for e in events]
    assert any('"key": "incoming/x.csv"' in m for m in messages)
    assert any(m.startswith("REPORT RequestId:") for m in messages)


def test_aws_endpoint_url_from_the_environment_is_honoured(pipectl, moto_server):
    done = pipectl("-o", "json", "deploy", "--yes", endpoint=False,
                   env={"AWS_ENDPOINT_URL": moto_server})
    assert done.code == 0, done.err
    assert done.json()["summary"]["create"] == 27


def test_on_the_emulator_the_mapping_is_disabled_so_only_the_local_runtime_consumes(
        pipectl, client, names):
    assert pipectl("deploy", "--yes").code == 0
    mappings = client("lambda").list_event_source_mappings(
        FunctionName="pipectl-demo-dev-processor")["EventSourceMappings"]
    assert [m["State"] for m in mappings] == ["Disabled"]


def test_the_local_runtime_takes_its_settings_from_the_deployment(pipectl, client, names):
    assert pipectl("deploy", "--yes").code == 0
    lam = client("lambda")
    function = "pipectl-demo-dev-processor"
    env = lam.get_function(FunctionName=function)["Configuration"]["Environment"]["Variables"]
    lam.update_function_configuration(FunctionName=function,
                                      Environment={"Variables": {**env, "ENVIRONMENT": "staging"}})
    s3 = client("s3")
    s3.put_object(Bucket=names["raw"], Key="incoming/e.json", Body=b'{"a": 1}')

    assert pipectl("run", "--until-idle", "--timeout", "60").code == 0

    row = pipectl("--output", "json", "results", "incoming/e.json").json()
    output = row["output"].split("/", 3)[3]
    record = json.loads(s3.get_object(Bucket=names["processed"], Key=output)["Body"].read())
    assert record["_metadata"]["environment"] == "staging"
    # ...and deploy sees the drift and would put pipeline.yaml's value back.
    plan = pipectl("-o", "json", "deploy", "--dry-run").json()
    changed = [c for s in plan["steps"] for c in s["changes"] if s["name"] == function]
    assert changed == [{"field": "environment.ENVIRONMENT", "before": "staging",
                        "after": "dev"}]


def test_status_shows_code_drift_per_function_and_alarm_states(pipectl, pipeline_dir):
    assert pipectl("deploy", "--yes").code == 0
    with (pipeline_dir / "handlers" / "archiver.py").open("a") as f:
        f.write("\n# edited after deploy\n")

    data = pipectl("-o", "json", "status").json()

    assert {f["name"].rsplit("-", 1)[-1]: f["code"] for f in data["functions"]} == {
        "processor": "matches", "archiver": "differs", "fetcher": "matches"}
    assert data["alarms"]["processing-dlq-not-empty"] in ("OK", "INSUFFICIENT_DATA")
    assert set(data["alarms"]) == {"processor-errors", "archiver-errors", "fetcher-errors",
                                   "processing-dlq-not-empty", "fetch-dlq-not-empty",
                                   "oldest-message"}
