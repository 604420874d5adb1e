"""status at the command line (mock_aws): the table, -o json, --check and its exit codes,
--watch."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import boto3
from moto import mock_aws

from tests.helpers import lambda_reports, put_result

STATUS_KEYS = {"target", "buckets", "queue", "dlq", "fetch_dlq", "incoming", "functions",
               "alarms", "results", "totals", "recent_failures", "retrying", "retrying_truncated",
               "archiver", "missing", "problems", "healthy", "checked_at", "output"}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


# --- status ----------------------------------------------------------------------------

def test_status_json_has_stable_keys_and_counts_from_the_counters_item(deployed, pipectl):
    put_result(deployed, "__counters__", PROCESSED=41, FAILED=1, records_rejected=1200,
               thumbnails=3)
    put_result(deployed, "__archiver__", last_run_at="2030-01-01T02:00:00+00:00", moved=3,
               bytes=300, errors=0)
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=deployed.bucket("raw"), Key="incoming/a.csv", Body=b"a\n")

    code, out, err = pipectl("-o", "json", "status")

    assert code == 0, err
    data = json.loads(out)
    assert set(data) == STATUS_KEYS
    assert data["output"] == "jsonl under YYYY/MM/DD/"     # no output: section, today's
    assert data["results"] == {"PROCESSING": 0, "PROCESSED": 41, "FAILED": 0 + 1, "ARCHIVED": 0}
    assert data["totals"] == {"records_rejected": 1200, "thumbnails": 3, "responses_fetched": 0}
    assert data["incoming"]["count"] == 1 and data["incoming"]["truncated"] is False
    assert data["incoming"]["oldest_key"] == "incoming/a.csv"
    assert data["archiver"] == {"last_run_at": "2030-01-01T02:00:00+00:00", "moved": 3,
                                "bytes": 300, "errors": 0}
    assert data["healthy"] is True and data["problems"] == []
    assert set(data["queue"]) == {"visible", "in_flight", "delayed"}


def test_status_table_shows_every_line(deployed, pipectl):
    put_result(deployed, "__counters__", PROCESSED=2, records_rejected=1200, responses_fetched=1)
    code, out, _ = pipectl("status")
    assert code == 0
    for label in ("raw bucket", "waiting in incoming/", "processing queue", "dead-letter queue",
                  "results", "last archiver run"):
        assert label in out
    assert "never" in out and "oldest n/a" in out
    assert "processing 0, processed 2, failed 0, archived 0" in out
    assert "records rejected 1,200, thumbnails 0, responses fetched 1" in out
    assert "┏" not in out          # label/value lines: no empty header row above them


def test_status_and_results_say_why_files_are_retrying(deployed, pipectl):
    for i, attempts in enumerate((1, 2, 3)):
        put_result(deployed, f"incoming/x{i}.csv", status="PROCESSING", updated_at=now_iso(),
                   attempts=attempts, last_error=f"EndpointConnectionError: 'incoming/x{i}.csv'")

    code, out, err = pipectl("status")
    listed = pipectl("results", "--status", "PROCESSING")

    assert code == 0, err
    assert "retrying and dead-lettered, by last error" in out
    lines = [" ".join(c.strip() for c in line.split("│")[1:-1]) for line in out.splitlines()
             if "EndpointConnectionError" in line and "│" in line]
    assert [line.rsplit(" ", 1)[0] for line in lines] == [
        "2 retrying EndpointConnectionError: '…'", "1 dead-lettered EndpointConnectionError: '…'"]
    assert lines[0].rsplit(" ", 1)[1] in ("incoming/x0.csv", "incoming/x1.csv")
    assert lines[1].endswith(" incoming/x2.csv")
    assert "problem: 1 dead-lettered: EndpointConnectionError: '…' (e.g. incoming/x2.csv)" in out
    assert listed[0] == 0, listed[2]
    assert listed[1].count("retrying: EndpointConnectionError") == 3


def test_check_healthy_is_exit_0(deployed, pipectl):
    code, out, _ = pipectl("status", "--check")
    assert (code, out.strip()) == (0, "healthy")


def test_check_says_each_reason_on_its_own_line_and_exits_1(deployed, pipectl):
    sqs = boto3.client("sqs", region_name="us-east-1")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=deployed.dlq)["QueueUrl"],
                     MessageBody="{}")
    put_result(deployed, "incoming/bad.json", status="FAILED", updated_at=now_iso(),
               error="invalid JSON")

    code, out, _ = pipectl("status", "--check", "--since", "1h")

    lines = out.strip().splitlines()
    assert code == 1
    assert len(lines) == 2
    assert lines[0] == f"dead-letter queue {deployed.dlq} holds 1 message(s) " \
                       "(see `pipectl replay-dlq`)"
    assert lines[1].startswith("files failed since ") and lines[1].endswith(
        "the latest incoming/bad.json at " + lines[1].split(" at ")[-1])
    assert "invalid JSON" in lines[1]


def test_check_ignores_failures_before_since(deployed, pipectl):
    put_result(deployed, "incoming/old.json", status="FAILED", updated_at="2020-01-01T00:00:00",
               error="old")
    assert pipectl("status", "--check", "--since", "7d")[0] == 0


def test_check_reports_stuck_files(deployed, pipectl):
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=deployed.bucket("raw"), Key="incoming/slow.csv", Body=b"a\n")
    code, out, _ = pipectl("status", "--check", "--stuck-after", "0s")
    assert code == 1
    assert out.startswith("1 file(s) waiting in incoming/ for longer than 0s (oldest "
                          "incoming/slow.csv")


def test_status_shows_a_function_lambda_cannot_run_and_check_exits_1(deployed, pipectl,
                                                                     monkeypatch):
    # given a processor whose last update Failed and a fetcher still Pending
    processor, fetcher = deployed.function("processor"), deployed.function("fetcher")
    lambda_reports(monkeypatch, processor, LastUpdateStatus="Failed",
                   LastUpdateStatusReason="Code too large",
                   LastUpdateStatusReasonCode="InvalidConfiguration")
    lambda_reports(monkeypatch, fetcher, State="Pending",
                   StateReason="The function is being created.", StateReasonCode="Creating")
    failed = "last update Failed: Code too large (InvalidConfiguration)"
    problem = (f"function {processor} cannot run: {failed}; fix the cause, then run "
               "`pipectl deploy`")

    # when looking at it as a table, as JSON and as a check
    table, as_json, check = (pipectl("status"), pipectl("-o", "json", "status"),
                             pipectl("status", "--check"))

    # then the table's function lines say each state, and the problem is named
    assert table[0] == 0      # plain status exits 1 only when something is missing
    cells = [[c.strip() for c in line.split("│")[1:-1]] for line in table[1].splitlines()
             if "│ function " in line]
    assert dict(cells) == {"function processor": f"code matches; {failed}",
                           "function archiver": "code matches",
                           "function fetcher": "code matches; State Pending: The function is "
                                               "being created. (Creating)"}
    assert f"problem: {problem}" in " ".join(table[1].split())
    # and JSON carries Lambda's statuses per function
    data = json.loads(as_json[1])
    states = {f["name"]: (f["state"], f["last_update_status"], f["failed"])
              for f in data["functions"]}
    assert states[processor] == ("Active", "Failed", True)
    assert states[fetcher] == ("Pending", "Successful", False)
    assert data["healthy"] is False and data["problems"] == [problem]
    # and --check exits 1 with that one line (a Pending function is on its way)
    assert check[:2] == (1, problem + "\n")


def test_check_before_deploy_names_what_is_missing(aws_pipeline, names, pipectl):
    with mock_aws():
        code, out, _ = pipectl("status", "--check")
    assert code == 1
    assert f"queue {names.queue} does not exist (run `pipectl deploy`)" in out.splitlines()
    assert f"table {names.results_table} does not exist (run `pipectl deploy`)" in out


def test_bad_durations_are_usage_errors(deployed, pipectl):
    code, _, err = pipectl("status", "--check", "--stuck-after", "soon")
    assert code == 2 and "--stuck-after: 'soon' is not a duration like 90s, 15m, 2h or 7d" in err


def test_watch_off_a_terminal_prints_a_snapshot_per_interval_and_ctrl_c_is_exit_0(
        deployed, pipectl, monkeypatch):
    naps = []

    def nap(seconds):
        naps.append(seconds)
        if len(naps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr("pipectl.cli.status.time.sleep", nap)
    code, out, _ = pipectl("status", "--watch", "--interval", "3")
    assert code == 0
    assert naps == [3, 3]
    assert out.count("processing queue") == 2
