"""The pipeline at a glance: buckets, queue depths, results by status, recent failures."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipectl.aws import dynamodb, sqs
from pipectl.aws.session import Aws
from pipectl.naming import Names
from pipectl.ops.results import ResultRow, count_by_status, list_results

RECENT_FAILURES = 5


@dataclass(frozen=True)
class PipelineStatus:
    target: str
    buckets: dict[str, str]
    queue: dict[str, int] | None  # None: not deployed
    dlq: dict[str, int] | None
    results: dict[str, int] = field(default_factory=dict)
    recent_failures: list[ResultRow] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.missing


def pipeline_status(aws: Aws, names: Names) -> PipelineStatus:
    client = aws.client("sqs")
    depths: dict[str, dict[str, int] | None] = {}
    missing: list[str] = []
    for label, queue in (("queue", names.queue), ("dlq", names.dlq)):
        url = sqs.queue_url(client, queue)
        if url is None:
            missing.append(f"queue {queue}")
            depths[label] = None
            continue
        d = sqs.depth(client, url)
        depths[label] = {"visible": d.visible, "in_flight": d.in_flight, "delayed": d.delayed}
    ddb = aws.client("dynamodb")
    results: dict[str, int] = {}
    failures: list[ResultRow] = []
    if dynamodb.describe_table(ddb, names.results_table) is None:
        missing.append(f"table {names.results_table}")
    else:
        results = count_by_status(ddb, names)
        failures = list_results(ddb, names, status="FAILED", limit=RECENT_FAILURES)
    return PipelineStatus(target=aws.describe(), buckets=names.bucket_roles(),
                          queue=depths["queue"], dlq=depths["dlq"], results=results,
                          recent_failures=failures, missing=missing)
