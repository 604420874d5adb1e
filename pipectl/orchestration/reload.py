"""`pipectl dev`'s hot reload: when pipeline.yaml or a handler source changes, deploy again
into the emulator and have the local runtime start afresh the workers of exactly the
functions whose code or settings changed.

The deploy is the ordinary one (desired -> observe -> plan -> apply), so a handler edit is
a new CodeSha256 on the functions whose zip holds that module, and a setting is an
update of the functions that read it; the runtime then compares what is deployed with
what it serves (runtime.LocalRuntime.refresh).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from pipectl.aws.session import AWS_ERRORS, Aws
from pipectl.config import PipelineConfig
from pipectl.config import load as load_config
from pipectl.deploy import engine
from pipectl.deploy.models import DeployPlan
from pipectl.errors import PipectlError
from pipectl.local.runtime import LocalRuntime

# How often sources are looked at; a change is deployed once two looks agree, so an
# editor's write-then-rename (or a save of several files) is deployed once, complete.
LOOK_SECONDS = 0.5
_SYMBOL = {"create": "+", "update": "~", "delete": "-"}

Snapshot = dict[Path, tuple[int, int]]


def sources(config: PipelineConfig) -> Snapshot:
    """pipeline.yaml and every file deploy packages from handlers/: (mtime, size) each."""
    handlers = config.handlers_dir
    files = [config.path, *handlers.rglob("*.py"), handlers / "requirements.txt"]
    found: Snapshot = {}
    for path in files:
        try:
            stat = path.stat()
        except OSError:  # removed, or mid-rename
            continue
        if "__pycache__" not in path.parts:
            found[path] = (stat.st_mtime_ns, stat.st_size)
    return found


def summary(changed: list[Path], plan: DeployPlan, root: Path) -> str:
    """One line: what changed on disk and what the deploy did about it."""
    def shown(path: Path) -> str:
        try:
            return str(path.relative_to(root))
        except ValueError:
            return str(path)

    steps = [f"{_SYMBOL[s.action]} {s.kind} {s.name}" for s in plan.steps
             if s.action != "noop"]
    files = ", ".join(shown(p) for p in changed) or "sources"
    return f"reloaded ({files} changed): " + (", ".join(steps) or "nothing to deploy")


class Reloader:
    """Watches a pipeline's sources and redeploys them into `aws` (the emulator)."""

    def __init__(self, aws: Aws, config: PipelineConfig, runtime: LocalRuntime, *,
                 on_line: Callable[[str], None], on_problem: Callable[[str], None]):
        self.aws, self.config, self.runtime = aws, config, runtime
        self.on_line, self.on_problem = on_line, on_problem
        self.reloads = 0

    def run(self, stop: threading.Event) -> None:
        seen = sources(self.config)
        while not stop.wait(LOOK_SECONDS):
            now = sources(self.config)
            if now == seen:
                continue
            while not stop.wait(LOOK_SECONDS):
                settled = sources(self.config)
                if settled == now:
                    break
                now = settled
            changed = sorted(p for p in set(now) | set(seen) if now.get(p) != seen.get(p))
            seen = now
            self.reload(changed)

    def reload(self, changed: list[Path]) -> None:
        """Deploy the sources as they are now; a broken pipeline.yaml or handler keeps
        what is served, says why, and is tried again at its next change."""
        try:
            config = load_config(self.config.path)
            plan = engine.build_plan(self.aws, config)
            engine.apply(self.aws, plan)
        except (PipectlError, *AWS_ERRORS) as exc:
            self.on_problem(f"not reloaded, still serving what was deployed: {exc}")
            return
        self.config = config
        self.reloads += 1
        self.on_line(summary(changed, plan, config.directory))
        self.runtime.refresh()
