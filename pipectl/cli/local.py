"""pipectl run / dev / demo: the pipeline on this machine."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import typer

from pipectl import output
from pipectl.cli import context
from pipectl.cli.results import render_results
from pipectl.cli.status import render_status
from pipectl.config import CONFIG_FILE
from pipectl.config import load as load_config
from pipectl.errors import ExitStatus, PipectlError
from pipectl.local.emulator import Emulator
from pipectl.local.runtime import LocalRuntime, RunReport
from pipectl.naming import FUNCTIONS
from pipectl.ops.log_lines import FORMAT_HELP, LogFormat, render
from pipectl.orchestration.demo import run_demo
from pipectl.orchestration.reload import Reloader
from pipectl.orchestration.session import deploy_into, emulator_aws, runtime_for
from pipectl.project import template_dir

_LOG_FORMAT = typer.Option(LogFormat.short, "--format", help=FORMAT_HELP)
_CONCURRENCY = typer.Option(None, "--concurrency", min=1, max=64,
                            help="at most this many warm workers per queue (default: the "
                                 "mapping's max_concurrency, as Lambda scales)")


def log_echo(fmt: LogFormat) -> Callable[[str, str], None]:
    """The dev and run stream: each function line as `fmt` shows it, on stderr."""

    def echo(function: str, line: str) -> None:
        kind = function.rsplit("-", 1)[-1]
        shown = render(kind if kind in FUNCTIONS else function, line, fmt)
        if shown is not None:
            output.stderr.out(output.plain(shown), highlight=False)

    return echo


def run(
    ctx: typer.Context,
    until_idle: bool = typer.Option(False, "--until-idle",
                                    help="exit 0 once the queues are drained and nothing is "
                                         "in flight"),
    timeout: float | None = typer.Option(None, "--timeout", min=1,
                                            help="give up (exit 1) after this many seconds"),
    concurrency: int | None = _CONCURRENCY,
    fmt: LogFormat = _LOG_FORMAT,
) -> None:
    """Serve the deployed queue -> function mappings locally, as Lambda's SQS poller does."""
    app = context.get(ctx)
    runtime = runtime_for(app.aws, app.names, app.config.handlers_dir,
                          concurrency=concurrency, echo=log_echo(fmt), notice=output.warn,
                          inform=output.info)
    output.info(f"serving {', '.join(m.function.name for m in runtime.mappings)} "
                f"from {app.aws.describe()}" + (" until idle" if until_idle else
                                                "; Ctrl-C to stop"))
    report = serve(runtime, until_idle=until_idle, timeout=timeout)
    if app.json:
        output.print_json(report)
    output.info(f"{report.messages} messages in {report.batches} batches: {report.succeeded} "
                f"done, {report.failed} returned to the queue"
                + (f" ({report.isolated} invoked again alone after their batch crashed or "
                   "timed out)" if report.isolated else ""))
    if report.errors:
        raise PipectlError("; ".join(report.errors))


def dev(
    ctx: typer.Context,
    port: int | None = typer.Option(None, "--port", min=1, max=65535,
                                       help="emulator port [default: targets.local.port]"),
    concurrency: int | None = _CONCURRENCY,
    fmt: LogFormat = _LOG_FORMAT,
    state_dir: Path | None = typer.Option(
        None, "--state", file_okay=False, help="keep the emulator's buckets, objects, tables, "
                                               "queues and messages in this directory across "
                                               "restarts [default: start clean, keep nothing]"),
) -> None:
    """Start the embedded emulator, deploy pipeline.yaml into it, and serve it until Ctrl-C."""
    app = context.get(ctx)
    app.emulator_only("pipectl dev")
    config = app.config
    local = next((t for t in config.targets.values() if t.emulator), None)
    with Emulator(port=port or (local.port if local else 4567), state_dir=state_dir) as emulator:
        output.info(_state_line(emulator))
        aws = emulator_aws(config, emulator)
        app.use_aws(aws)
        names = deploy_into(aws, config, output.info)
        output.info(f"emulator at {emulator.endpoint}; try `pipectl upload FILE` in another "
                    "terminal. Edits to pipeline.yaml and handlers/ are deployed as they are "
                    "saved. Ctrl-C to stop.")
        runtime = runtime_for(aws, names, config.handlers_dir, concurrency=concurrency,
                              echo=log_echo(fmt), notice=output.warn, inform=output.info)
        watching = threading.Event()
        reloader = Reloader(aws, config, runtime, on_line=output.info, on_problem=output.warn)
        threading.Thread(target=reloader.run, args=(watching,), name="reload",
                         daemon=True).start()
        interrupted = False
        try:
            serve(runtime)
        except KeyboardInterrupt:
            interrupted = True  # Ctrl-C is how dev stops: the emulator goes down first
        finally:
            watching.set()
    output.info("emulator stopped" + (f"; its state is saved in {state_dir}" if state_dir
                                      else ""))
    if interrupted:
        raise typer.Exit(ExitStatus.INTERRUPTED)  # 130, as every interrupted command


def _state_line(emulator: Emulator) -> str:
    if emulator.state_dir is None:
        return ("emulator starts clean, and what it holds is gone when dev stops "
                "(--state DIR keeps it)")
    if emulator.restored is None:
        return f"emulator starts clean; its state is saved in {emulator.state_dir} when dev stops"
    return (f"emulator state restored from {emulator.restored.path} "
            f"(saved {emulator.restored.saved_at})")


def demo(ctx: typer.Context) -> None:
    """The whole pipeline end to end on the embedded emulator: up, deploy, upload samples,
    process, show status and results, shut down."""
    app = context.get(ctx)
    # The pipeline in this directory if there is one, else the default that ships with pipectl.
    has_own = app.config_path is not None or Path(CONFIG_FILE).exists()
    config = app.config if has_own else load_config(template_dir() / CONFIG_FILE)
    app.emulator_only("pipectl demo", config)
    report = run_demo(config, config.handlers_dir, on_line=output.info)
    if app.json:
        local = next((t for t in config.targets.values() if t.emulator), None)
        target = {"name": local.name if local else config.default_target,
                  "endpoint": report.endpoint, "region": config.region}
        data = asdict(report)
        data["status"]["target"] = target  # an object, as every command's JSON has it
        output.print_json(data)
    else:
        render_status(report.status)
        render_results(report.results, report.status.buckets["processed"])
        output.info(f"demo finished in {report.seconds} s")
    for problem in report.problems:
        output.error(problem)
    if not report.ok:
        raise typer.Exit(ExitStatus.FAILURE)


def serve(runtime: LocalRuntime, *, until_idle: bool = False,
          timeout: float | None = None) -> RunReport:
    """Run in a thread so the main thread takes Ctrl-C and stops the workers cleanly.

    The main thread waits on an Event, not Thread.join: a KeyboardInterrupt inside
    join(timeout) can leave CPython believing the thread has ended, and the next join()
    would return while workers are still running.
    """
    result: dict[str, RunReport] = {}
    done = threading.Event()

    def target() -> None:
        try:
            result["report"] = runtime.run(until_idle=until_idle, timeout=timeout)
        finally:
            done.set()

    previous = signal.signal(signal.SIGTERM, lambda *_: runtime.stop())
    threading.Thread(target=target, name="local-runtime", daemon=True).start()
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        output.info("stopping: waiting for batches in progress")
        runtime.stop()
        done.wait()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
    if "report" not in result:
        raise PipectlError("the local runtime stopped unexpectedly (rerun with --debug)")
    return result["report"]


def register(app: typer.Typer) -> None:
    app.command()(run)
    app.command()(dev)
    app.command()(demo)
