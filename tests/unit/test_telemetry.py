"""Handler log lines: one JSON object each, in CloudWatch Embedded Metric Format when they
carry metrics (CloudWatch turns those into metrics with no PutMetricData call)."""

import json

from common import telemetry


def test_a_plain_line_is_json_with_the_first_fields_first(capsys):
    telemetry.log("INFO", "processed", first=("key", "status"), status="PROCESSED",
                  key="incoming/a.csv", extra=None, records=3)
    line = json.loads(capsys.readouterr().out)
    assert list(line)[:5] == ["level", "message", "timestamp", "key", "status"]
    assert line["records"] == 3 and "extra" not in line and "_aws" not in line


def test_metrics_make_the_line_an_emf_record(capsys, monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "orders-dev-processor")
    telemetry.log("INFO", "processed", metrics={"Files": (1, "Count"),
                                                "DurationMs": (42, "Milliseconds")})
    line = json.loads(capsys.readouterr().out)
    directive = line["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "pipectl"
    assert directive["Dimensions"] == [["Function"]]
    assert directive["Metrics"] == [{"Name": "Files", "Unit": "Count"},
                                    {"Name": "DurationMs", "Unit": "Milliseconds"}]
    # EMF: every dimension and metric named in the directive is a top-level member.
    assert (line["Function"], line["Files"], line["DurationMs"]) == (
        "orders-dev-processor", 1, 42)
    assert isinstance(line["_aws"]["Timestamp"], int)
