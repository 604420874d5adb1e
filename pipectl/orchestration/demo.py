"""`pipectl demo`: the whole pipeline end to end on the embedded emulator, then shut down."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from pipectl.config import PipelineConfig
from pipectl.errors import NotFound
from pipectl.local.emulator import Emulator
from pipectl.local.runtime import RunReport
from pipectl.ops import transfer
from pipectl.ops.results import ResultRow, get_result
from pipectl.ops.status import PipelineStatus, pipeline_status
from pipectl.orchestration.session import deploy_into, emulator_aws, runtime_for

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
# The one sample that is malformed on purpose: it must end FAILED, the rest PROCESSED.
BAD_SAMPLE = "broken.json"


@dataclass
class DemoReport:
    endpoint: str
    seconds: float
    status: PipelineStatus
    results: list[ResultRow]
    run: RunReport
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def run_demo(config: PipelineConfig, handlers_dir: Path, *, on_line: Callable[[str], None],
             echo: Callable[[str, str], None] | None = None, timeout: float = 60) -> DemoReport:
    started = time.monotonic()
    with Emulator(port=0) as emulator:
        on_line(f"emulator up at {emulator.endpoint}")
        aws = emulator_aws(config, emulator)
        names = deploy_into(aws, config, on_line)
        s3 = aws.client("s3")
        samples = transfer.collect_files(sorted(SAMPLES.iterdir()))
        incoming = transfer.Location(names.bucket("raw"), config.prefixes.incoming, "raw")
        uploaded = transfer.upload(s3, samples, incoming)
        on_line(f"uploaded {len(samples)} sample files to {incoming.uri}")
        runtime = runtime_for(aws, names, handlers_dir, concurrency=2, echo=echo)
        run = runtime.run(until_idle=True, timeout=timeout)
        ddb = aws.client("dynamodb")
        problems = run.errors + [f"upload of {r.local} failed: {r.error}"
                                 for r in uploaded.files if r.error]
        rows = []
        for f in samples:
            try:
                rows.append(get_result(ddb, names, config.prefixes.incoming + f.path.name))
            except NotFound:
                problems.append(f"{f.path.name} has no result row")
        report = DemoReport(endpoint=emulator.endpoint, seconds=0.0,
                            status=pipeline_status(aws, names), results=rows, run=run,
                            problems=problems)
    for row in rows:
        expected = "FAILED" if row.key.endswith(BAD_SAMPLE) else "PROCESSED"
        if row.status != expected:
            report.problems.append(f"{row.key} ended {row.status}, expected {expected}")
    report.seconds = round(time.monotonic() - started, 1)
    return report
