"""Bring a pipeline up on the embedded emulator: start moto, deploy into it, serve it."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path

from pipectl.aws.session import Aws
from pipectl.config import PipelineConfig
from pipectl.contract import contract
from pipectl.deploy import engine
from pipectl.errors import UsageError
from pipectl.local.deployment import Deployment, discover
from pipectl.local.emulator import Emulator
from pipectl.local.runtime import LocalRuntime
from pipectl.naming import Names


def emulator_aws(config: PipelineConfig, emulator: Emulator) -> Aws:
    local = next((t for t in config.targets.values() if t.emulator), None)
    target = local or config.target(None)
    return Aws.for_target(target, endpoint_url=emulator.endpoint, region=config.region)


def deploy_into(aws: Aws, config: PipelineConfig, on_line: Callable[[str], None]) -> Names:
    plan = engine.build_plan(aws, config)
    engine.apply(aws, plan)
    on_line(f"deployed {plan.count('create')} resources into {aws.describe()}")
    return Names(config, aws.account, aws.region)


def runtime_for(aws: Aws, names: Names, handlers_dir: Path, *, concurrency: int | None,
                echo: Callable[[str, str], None] | None = None,
                notice: Callable[[str], None] = lambda message: None,
                inform: Callable[[str], None] = lambda message: None) -> LocalRuntime:
    if not (handlers_dir / "processor.py").is_file():
        raise UsageError(f"{handlers_dir}/processor.py not found: a pipeline directory holds "
                         "pipeline.yaml and its handlers/ (run `pipectl init` to write both)")
    deployment = discover(aws, names)
    require_writers(deployment)
    # Re-read as deployed code changes, so a deploy from any shell is served without a restart.
    return LocalRuntime(aws, deployment, handlers_dir, concurrency=concurrency,
                        echo=echo, notice=notice, inform=inform,
                        rediscover=lambda: discover(aws, names))


def require_writers(deployment: Deployment) -> None:
    """The workers import the handlers here: a processor deployed to write Parquet needs
    pyarrow in pipectl's own environment (on Lambda its zip carries it)."""
    parquet = any(m.function.environment.get(contract.OUTPUT_FORMAT) == "parquet"
                  for m in deployment.mappings)
    if parquet and importlib.util.find_spec("pyarrow") is None:
        raise UsageError("output.format is parquet, and the local runtime needs pyarrow for "
                         "it: pip install 'pipectl[parquet]' (or pyarrow)")
