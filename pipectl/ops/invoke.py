"""Run a function's handler once, locally, in a warm-worker process like the local runtime's."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pipectl.aws.session import Aws
from pipectl.config import PipelineConfig
from pipectl.deploy.desired import function_environment
from pipectl.errors import UsageError
from pipectl.local.worker import Worker
from pipectl.naming import Names
from pipectl.ops.logs import check_function


def read_event(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"--event: cannot read {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"--event: {path} is not JSON: {exc}") from None


def invoke_local(aws: Aws, config: PipelineConfig, names: Names, kind: str, event: dict,
                 on_log: Callable[[str], None]) -> dict | list | None:
    """The handler's result; HandlerError (and other WorkerErrors) when it fails."""
    check_function(kind)
    env = {**function_environment(config, names, kind), **aws.worker_environment()}
    settings = getattr(config, kind)      # config.processor, .archiver or .fetcher
    worker = Worker(config.handlers_dir, f"{kind}.lambda_handler", env, names.function(kind),
                    timeout=settings.timeout, memory_mb=settings.memory, on_log=on_log)
    with worker:
        return worker.invoke(event)
