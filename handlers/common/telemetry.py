"""One structured JSON line per event on stdout, which Lambda sends to CloudWatch Logs (the
local runtime ships it to the same log group).

A line that carries metrics is also in CloudWatch Embedded Metric Format: CloudWatch
extracts the metrics from the log line itself, with no PutMetricData call and no extra
permission (the function can already write its logs).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from datetime import datetime, timezone

from common import contract

NAMESPACE = "pipectl"
# The archiver logs from its copy threads: print() writes the text and the newline
# separately, so two records could share a line and neither would parse (CloudWatch reads
# one JSON record, with its metrics, per line).
_WRITE = threading.Lock()


def log(level: str, message: str, *, first: tuple[str, ...] = (),
        metrics: dict[str, tuple[float, str]] | None = None, **fields) -> None:
    """first: fields shown first (and kept even when None); metrics: name -> (value, unit)."""
    record = {"level": level, "message": message,
              "timestamp": datetime.now(timezone.utc).isoformat()}
    record.update({k: fields.pop(k, None) for k in first})
    record.update({k: v for k, v in fields.items() if v is not None})
    if metrics:
        record.update(emf(metrics))
    line = json.dumps(record, default=str) + "\n"
    with _WRITE:
        sys.stdout.write(line)
        sys.stdout.flush()


def emf(metrics: dict[str, tuple[float, str]]) -> dict:
    function = os.environ.get(contract.AWS_LAMBDA_FUNCTION_NAME, "local")
    return {
        "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
            "Namespace": NAMESPACE, "Dimensions": [["Function"]],
            "Metrics": [{"Name": name, "Unit": unit} for name, (_, unit) in metrics.items()],
        }]},
        "Function": function,
        **{name: value for name, (value, _) in metrics.items()},
    }
