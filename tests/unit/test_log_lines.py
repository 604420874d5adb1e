"""Log lines people read (issue 20): one short line per event, the structured record on
request, CloudWatch's EMF blob only when asked for raw."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from pipectl.ops.log_lines import LogFormat, render

PROCESSED = json.dumps({
    "level": "INFO", "message": "processed", "timestamp": "2026-12-02T04:05:06.789+00:00",
    "key": "incoming/a b.csv", "status": "PROCESSED", "records_in": 3, "records_out": 3,
    "duration_ms": 41.6,
    "_aws": {"Timestamp": 1, "CloudWatchMetrics": [{"Namespace": "pipectl",
                                                    "Dimensions": [["Function"]],
                                                    "Metrics": [{"Name": "Records"}]}]},
    "Function": "pipectl-demo-dev-processor", "Records": 3})
FAILED = json.dumps({"level": "WARNING", "message": "not valid CSV", "key": "incoming/x.csv",
                     "timestamp": "2026-12-02T04:05:07+00:00", "status": "FAILED",
                     "duration_ms": 3, "error": "line 2: 3 fields, header has 2"})


def test_short_is_time_function_key_outcome_duration_and_reason():
    assert render("processor", PROCESSED, LogFormat.short) == \
        "04:05:06 processor incoming/a b.csv PROCESSED 42 ms  processed"
    assert render("processor", FAILED, LogFormat.short) == \
        "04:05:07 processor incoming/x.csv FAILED 3 ms  line 2: 3 fields, header has 2"


def test_runtime_lines_are_left_out_of_the_short_form_and_other_text_kept():
    for line in ("START RequestId: 1 Version: $LATEST", "END RequestId: 1",
                 "REPORT RequestId: 1\tDuration: 3.00 ms"):
        assert render("processor", line, LogFormat.short) is None
        assert render("processor", line, LogFormat.raw) == line
    shown = render("processor", "Traceback (most recent call last):", LogFormat.short,
                   timestamp_ms=1_764_648_306_000)
    assert shown.endswith(" processor Traceback (most recent call last):")


def test_json_is_the_whole_record_without_the_emf_blob_and_raw_keeps_it():
    record = json.loads(render("processor", PROCESSED, LogFormat.json))
    assert "_aws" not in record
    assert record["function"] == "processor" and record["Records"] == 3
    assert {k: v for k, v in record.items() if k != "function"} == {
        k: v for k, v in json.loads(PROCESSED).items() if k != "_aws"}
    assert render("processor", PROCESSED, LogFormat.raw) == PROCESSED
    plain = json.loads(render("fetcher", "a print()", LogFormat.json, timestamp_ms=1000))
    assert plain == {"time": "1970-01-01T00:00:01.000+00:00", "function": "fetcher",
                     "message": "a print()"}


@given(st.text(), st.sampled_from(list(LogFormat)))
def test_any_line_renders_without_error_and_json_stays_json(line, fmt):
    shown = render("processor", line, fmt, timestamp_ms=1000)
    if fmt is LogFormat.json:
        assert isinstance(json.loads(shown), dict)
    if fmt is LogFormat.raw:
        assert shown == line


@given(st.dictionaries(st.sampled_from(["key", "status", "level", "message", "error",
                                        "duration_ms", "timestamp", "_aws"]),
                       st.one_of(st.none(), st.text(), st.integers(), st.floats(
                           allow_nan=False, allow_infinity=False))))
def test_any_record_gives_one_short_line_without_the_emf_blob(record):
    record["_aws"] = {"CloudWatchMetrics": []}
    shown = render("processor", json.dumps(record), LogFormat.short)
    assert shown is not None and "\n" not in shown
    assert "CloudWatchMetrics" not in shown
    assert "_aws" not in json.loads(render("processor", json.dumps(record), LogFormat.json))
