"""results / logs / trace / invoke / events at the command line (mock_aws); status:
test_status_cli.py."""

from __future__ import annotations

import json
import time
from urllib.parse import unquote_plus

import boto3
from moto import mock_aws

from pipectl.aws.logs import ensure_stream
from tests.helpers import ACCOUNT, put_result

# --- results ---------------------------------------------------------------------------

def test_results_pages_with_a_token(deployed, pipectl):
    for i in range(5):
        put_result(deployed, f"incoming/{i}.csv", status="PROCESSED",
                   updated_at=f"2030-01-01T00:00:0{i}+00:00")
    put_result(deployed, "__counters__", PROCESSED=5)

    code, out, _ = pipectl("-o", "json", "results", "--limit", "3")
    first = json.loads(out)
    code2, out2, _ = pipectl("-o", "json", "results", "--limit", "3", "--page-token",
                             first["next_token"])
    second = json.loads(out2)
    code3, table, err = pipectl("results", "--limit", "3")

    assert code == code2 == code3 == 0
    assert set(first) == {"results", "next_token"}
    assert [r["key"] for r in first["results"]] == ["incoming/4.csv", "incoming/3.csv",
                                                    "incoming/2.csv"]
    assert [r["key"] for r in second["results"]] == ["incoming/1.csv", "incoming/0.csv"]
    assert "┏" in table and f"more: --page-token {first['next_token']}" in err


def test_results_table_keeps_a_row_on_one_line_in_a_log(deployed, pipectl):
    processed = deployed.bucket("processed")
    put_result(deployed, "incoming/deeply/nested/orders-2030-01-01.csv", status="PROCESSED",
               updated_at="2030-01-01T01:02:03.456789+01:00", records_in=12, records_out=11,
               dropped_values=4,
               output=f"s3://{processed}/processed/2030/01/01/deeply/nested/orders-2030-01-01.jsonl")
    put_result(deployed, "incoming/old.csv", status="ARCHIVED", updated_at="2030-01-01T00:00:00",
               output="s3://some-archive/archive/processed/2029/12/01/old.jsonl")

    code, out, err = pipectl("results")   # stdout is not a terminal here, as in CI

    assert code == 0, err
    assert f"outputs (jsonl) under s3://{processed}/ unless named" in out
    [row] = [line for line in out.splitlines() if "orders-2030-01-01.csv" in line]
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells == ["incoming/deeply/nested/orders-2030-01-01.csv", "PROCESSED", "12", "11",
                     "", "4", "processed/2030/01/01/deeply/nested/orders-2030-01-01.jsonl",
                     "2030-01-01 00:02:03"]
    [archived] = [line for line in out.splitlines() if "incoming/old.csv" in line]
    assert "s3://some-archive/archive/processed/2029/12/01/old.jsonl" in archived
    assert "2030-01-01 00:00:00" in archived


def test_results_table_shows_rejects_thumbnails_and_what_the_fetcher_got(deployed, pipectl):
    processed, raw = deployed.bucket("processed"), deployed.bucket("raw")
    put_result(deployed, "incoming/orders.csv", status="PROCESSED",
               updated_at="2030-01-01T00:00:01", records_in=5, records_out=3,
               records_rejected=2, dropped_values=0,
               output=f"s3://{processed}/processed/2030/01/01/orders.jsonl",
               rejects=f"s3://{processed}/rejects/2030/01/01/orders.jsonl")
    put_result(deployed, "incoming/cat.jpg", status="PROCESSED", updated_at="2030-01-01T00:00:02",
               records_in=1, records_out=1, output=f"s3://{processed}/processed/2030/01/01/cat.jsonl",
               thumbnail=f"s3://{processed}/thumbnails/2030/01/01/cat.jpg")
    put_result(deployed, "fetch/items.json", status="PROCESSED", updated_at="2030-01-01T00:00:03",
               http_status=200, bytes=12345, output=f"s3://{raw}/incoming/items-20300101.json")

    code, out, err = pipectl("results")

    assert code == 0, err
    lines = out.splitlines()

    def cells(i: int) -> list[str]:
        return [c.strip() for c in lines[i].split("│")[1:-1]]

    orders = next(i for i, line in enumerate(lines) if "incoming/orders.csv" in line)
    assert cells(orders) == ["incoming/orders.csv", "PROCESSED", "5", "3", "2", "0",
                             "processed/2030/01/01/orders.jsonl", "2030-01-01 00:00:01"]
    assert cells(orders + 1)[6] == "rejects rejects/2030/01/01/orders.jsonl"
    cat = next(i for i, line in enumerate(lines) if "incoming/cat.jpg" in line)
    assert cells(cat + 1)[6] == "thumbnail thumbnails/2030/01/01/cat.jpg"
    [fetched] = [line for line in lines if "fetch/items.json" in line]
    assert f"HTTP 200, 12,345 bytes -> s3://{raw}/incoming/items-20300101.json" in fetched


def test_results_status_prefix_and_until(deployed, pipectl):
    put_result(deployed, "incoming/a/1.csv", status="FAILED", updated_at="2030-01-01T00:00:00",
               error="x")
    put_result(deployed, "incoming/b/1.csv", status="FAILED", updated_at="2030-01-01T00:00:01",
               error="y")
    put_result(deployed, "incoming/a/2.csv", status="PROCESSED", updated_at="2030-01-02T00:00:00")

    def keys(*args):
        code, out, err = pipectl("-o", "json", "results", *args)
        assert code == 0, err
        return [r["key"] for r in json.loads(out)["results"]]

    assert keys("--status", "failed") == ["incoming/b/1.csv", "incoming/a/1.csv"]
    assert keys("--prefix", "incoming/a/") == ["incoming/a/2.csv", "incoming/a/1.csv"]
    assert keys("--until", "2030-01-01T12:00:00") == ["incoming/b/1.csv", "incoming/a/1.csv"]


def test_results_never_shows_the_counters_item(deployed, pipectl):
    put_result(deployed, "__counters__", PROCESSED=1)
    code, _, err = pipectl("results", "__counters__")
    assert code == 1 and "no result for '__counters__'" in err


# --- logs ------------------------------------------------------------------------------

def put_logs(names, *messages: str) -> None:
    logs = boto3.client("logs", region_name="us-east-1")
    group, stream = names.log_group("processor"), "s"
    ensure_stream(logs, group, stream)  # deploy made the group; the stream is the runtime's
    now = int(time.time() * 1000)
    logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
        {"timestamp": now + i, "message": m} for i, m in enumerate(messages)])


def test_logs_prints_the_functions_events_and_filters(deployed, pipectl):
    put_logs(deployed, '{"level": "INFO", "key": "incoming/a.csv"}', "ERROR something broke")

    code, out, _ = pipectl("logs")
    code2, filtered, _ = pipectl("logs", "processor", "--filter", "ERROR", "--since", "1h")
    code3, as_json, _ = pipectl("-o", "json", "logs")
    code4, raw, _ = pipectl("logs", "--format", "raw")

    assert code == code2 == code3 == code4 == 0
    assert out.splitlines()[0].endswith(" processor incoming/a.csv INFO")
    assert raw.splitlines()[0].endswith(' {"level": "INFO", "key": "incoming/a.csv"}')
    assert filtered.strip().endswith("ERROR something broke") and "INFO" not in filtered
    assert set(json.loads(as_json)[0]) == {"timestamp", "time", "stream", "message", "event_id"}


def test_logs_json_leaves_the_emf_blob_out_unless_raw_is_asked(deployed, pipectl):
    emf = {"CloudWatchMetrics": [{"Namespace": "pipectl", "Metrics": [{"Name": "Files"}]}]}
    record = {"level": "INFO", "key": "incoming/a.csv", "Files": 1}
    put_logs(deployed, json.dumps({**record, "_aws": emf}))

    code, as_json, _ = pipectl("-o", "json", "logs")
    code2, raw, _ = pipectl("-o", "json", "logs", "--format", "raw")

    assert code == code2 == 0
    assert json.loads(json.loads(as_json)[0]["message"]) == record
    assert json.loads(json.loads(raw)[0]["message"]) == {**record, "_aws": emf}


def test_logs_follow_prints_new_events_once_and_ctrl_c_is_exit_130(deployed, pipectl,
                                                                   monkeypatch):
    put_logs(deployed, "first")
    polls = []

    def nap(_):
        polls.append(1)
        if len(polls) == 1:
            put_logs(deployed, "second")
        elif len(polls) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr("pipectl.cli.logs.time.sleep", nap)
    code, out, err = pipectl("logs", "--follow")
    assert code == 130
    assert err == ""  # Ctrl-C is the way out of --follow: no error line, no traceback
    assert [line.split(" ", 2)[1:] for line in out.splitlines()] == [
        ["processor", "first"], ["processor", "second"]]


def test_logs_without_a_log_group(aws_pipeline, pipectl):
    with mock_aws():  # nothing deployed: no log group yet
        code, _, err = pipectl("logs")
    assert code == 1
    assert err.strip() == ("error: no logs yet for processor (log group "
                           "/aws/lambda/demo-dev-processor does not exist)")


# --- trace -----------------------------------------------------------------------------

def test_trace_found_and_not_found(deployed, pipectl):
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=deployed.bucket("raw"), Key="incoming/w.csv", Body=b"a\n")

    code, out, _ = pipectl("-o", "json", "trace", "incoming/w.csv")
    missing = pipectl("trace", "incoming/nope.csv")

    data = json.loads(out)
    assert code == 0 and data["found"] is True
    assert data["stages"][0] == {"stage": "incoming", "found": True,
                                 "at": data["stages"][0]["at"],
                                 "detail": f"s3://{deployed.bucket('raw')}/incoming/w.csv "
                                           "(2 B)"}
    assert missing[0] == 1 and "incoming/nope.csv was not found at any stage" in missing[2]


def test_trace_says_when_no_notification_rule_matches_the_key(deployed, pipectl):
    s3 = boto3.client("s3", region_name="us-east-1")
    for key in ("incoming/UPPER.CSV", "incoming/lower.csv"):
        s3.put_object(Bucket=deployed.bucket("raw"), Key=key, Body=b"a\n")

    upper = json.loads(pipectl("-o", "json", "trace", "incoming/UPPER.CSV")[1])
    lower = json.loads(pipectl("-o", "json", "trace", "incoming/lower.csv")[1])
    code, out, _ = pipectl("status")

    [stage] = [s for s in upper["stages"] if s["stage"] == "notification"]
    assert stage["found"] is False
    assert stage["detail"].startswith("no notification rule matches this key, so it is never "
                                      "processed (the rules' suffixes: .csv, .json, .jsonl, .txt;")
    assert "S3 suffix filters are case-sensitive" in stage["detail"]
    assert "notification" not in {s["stage"] for s in lower["stages"]}
    assert "2, oldest" in out and "1 match no notification rule" in out


# --- events and invoke -------------------------------------------------------------------

def test_events_s3_put_with_a_bucket_needs_no_aws(aws_pipeline, pipectl):
    code, out, _ = pipectl("events", "s3-put", "--bucket", "b", "--key", "incoming/a b+c.csv",
                           "--size", "7", "--etag", "e")
    assert code == 0
    obj = json.loads(out)["Records"][0]["s3"]["object"]
    assert obj == {"key": "incoming/a+b%2Bc.csv", "size": 7, "eTag": "e",
                   "sequencer": obj["sequencer"]}
    assert unquote_plus(obj["key"]) == "incoming/a b+c.csv"


def test_events_s3_put_sqs_defaults_to_the_raw_bucket_and_the_queue(deployed, pipectl):
    code, out, _ = pipectl("events", "s3-put", "--key", "incoming/x.csv", "--sqs")
    record = json.loads(out)["Records"][0]
    assert code == 0
    assert record["eventSourceARN"] == f"arn:aws:sqs:us-east-1:{ACCOUNT}:{deployed.queue}"
    body = json.loads(record["body"])
    assert body["Records"][0]["s3"]["bucket"]["name"] == deployed.bucket("raw")


def test_invoke_reports_a_handler_exception_as_one_line_exit_1(deployed, pipectl, tmp_path):
    event = tmp_path / "bad.json"
    event.write_text('{"Records": "not a list of messages"}')
    code, out, err = pipectl("invoke", "processor", "--event", str(event))
    assert code == 1 and out == ""
    assert err.strip().splitlines()[-1].startswith("error: AttributeError: ")


def test_invoke_needs_a_readable_json_event_and_a_known_function(aws_pipeline, pipectl,
                                                                  tmp_path):
    (tmp_path / "bad.json").write_text("{nope")
    (tmp_path / "ok.json").write_text("{}")
    with mock_aws():
        code, _, err = pipectl("invoke", "processor", "--event", str(tmp_path / "bad.json"))
        assert code == 2 and f"--event: {tmp_path / 'bad.json'} is not JSON" in err
        code, _, err = pipectl("invoke", "nope", "--event", str(tmp_path / "ok.json"))
        assert code == 2 and "unknown function 'nope' (known: " in err


def test_results_narrower_than_the_table_are_a_few_whole_lines_per_row(monkeypatch):
    import io

    from rich.console import Console

    from pipectl import output
    from pipectl.cli import results as results_cli
    from pipectl.ops.results import ResultRow

    # given an 80-column terminal, too narrow for the table without folding its cells
    screen = io.StringIO()
    monkeypatch.setattr(output, "stdout", Console(file=screen, width=80, force_terminal=True,
                                                  color_system=None))
    home = f"s3://pipe-dev-processed-{ACCOUNT}/"
    dated = "2030/01/01/deeply/nested/orders[1].jsonl"
    rows = [ResultRow(key="incoming/deeply/nested/orders[1].csv", status="PROCESSED",
                      records_in=5, records_out=3, dropped_values=0,
                      output=f"{home}processed/{dated}", updated_at="2030-01-01T00:00:01+00:00",
                      details={"records_rejected": 2, "rejects": f"{home}rejects/{dated}"}),
            ResultRow(key="incoming/broken.json", status="FAILED",
                      error="line 3: invalid JSON: Expecting ',' delimiter",
                      updated_at="2030-01-01T00:00:02+00:00")]

    # when
    results_cli.render_results(rows, home.removeprefix("s3://").rstrip("/"))

    # then each row's key, output and error are whole, on lines of their own
    assert screen.getvalue().splitlines() == [
        f"outputs (jsonl) under {home} unless named",
        "incoming/deeply/nested/orders[1].csv  PROCESSED  2030-01-01 00:00:01",
        "  5 in, 3 out, 2 rejected, 0 dropped",
        "  processed/2030/01/01/deeply/nested/orders[1].jsonl",
        "  rejects rejects/2030/01/01/deeply/nested/orders[1].jsonl",
        "incoming/broken.json  FAILED  2030-01-01 00:00:02",
        "  line 3: invalid JSON: Expecting ',' delimiter"]
