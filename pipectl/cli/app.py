"""The pipectl command: global options, command registration, and errors -> exit codes."""

from __future__ import annotations

import sys
import traceback
from enum import Enum
from pathlib import Path

import typer

from pipectl import __version__, output
from pipectl.aws.session import AWS_ERRORS, translate, translate_errors
from pipectl.cli import (
    archive,
    buckets,
    deploy,
    events,
    fetch,
    invoke,
    local,
    logs,
    project,
    query_info,
    reconcile,
    replay_dlq,
    reprocess,
    results,
    status,
    trace,
)
from pipectl.cli.argv import hoist
from pipectl.cli.context import AppContext
from pipectl.cli.examples import complete_targets, epilog
from pipectl.config import url_problem
from pipectl.errors import ConfigError, ExitStatus, PipectlError

app = typer.Typer(
    name="pipectl",
    help="Deploy, feed, watch, repair and age out a file-driven data pipeline on AWS "
         "or on the embedded emulator.",
    no_args_is_help=True,
    # Plain click help: Rich markup would eat "[default: ...]" hints and put a <bool>
    # placeholder after every flag.
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    epilog=epilog(""),
    context_settings={"help_option_names": ["-h", "--help"]},
)


class _Current:
    """The running command's context, so run() can name the target in AWS errors."""

    context: AppContext | None = None
    failed: bool = False  # the command ended in an error, not by its own exit code


_current = _Current()


class OutputFormat(str, Enum):
    table = "table"
    json = "json"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pipectl {__version__}")
        raise typer.Exit()


def _endpoint(value: str | None) -> str | None:
    if value is not None and (problem := url_problem(value)):
        raise typer.BadParameter(f"{problem} (got {value!r})")
    return value


@app.callback()
def main_options(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", "-c", envvar="PIPECTL_CONFIG",
                                          show_default="./pipeline.yaml",
                                          help="pipeline.yaml to use"),
    target: str | None = typer.Option(None, "--target", "-t", envvar="PIPECTL_TARGET",
                                         show_default="its default_target",
                                         autocompletion=complete_targets,
                                         help="target from pipeline.yaml"),
    endpoint_url: str | None = typer.Option(None, "--endpoint-url", callback=_endpoint,
                                               help="send every AWS call to this endpoint"),
    profile: str | None = typer.Option(None, "--profile", help="AWS profile for the target"),
    region: str | None = typer.Option(None, "--region", help="AWS region for the target"),
    output_format: OutputFormat = typer.Option(OutputFormat.table, "--output", "-o",
                                               help="table for people, json for scripts"),
    debug: bool = typer.Option(False, "--debug", help="show tracebacks"),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="print the version and exit"),
) -> None:
    ctx.obj = _current.context = AppContext(
        config_path=config, target_name=target, endpoint_url=endpoint_url, profile=profile,
        region=region, output=output_format.value, debug=debug)


for module in (project, deploy, buckets, status, results, logs, trace, invoke, events, local,
               replay_dlq, archive, fetch, reconcile, reprocess, query_info):
    module.register(app)


def _add_examples(typer_app: typer.Typer, path: str = "") -> None:
    """Every command's --help ends with examples.EXAMPLES[its path]."""
    for info in typer_app.registered_commands:
        name = info.name or getattr(info.callback, "__name__", "").replace("_", "-")
        info.epilog = epilog(f"{path} {name}".strip())
    for group in typer_app.registered_groups:
        group.epilog = epilog(f"{path} {group.name}".strip())
        if group.typer_instance is not None:
            _add_examples(group.typer_instance, f"{path} {group.name}".strip())


_add_examples(app)


def main() -> None:
    sys.exit(run(sys.argv[1:]))


def run(args: list[str]) -> int:
    """Run the CLI and map every outcome to an ExitStatus; tracebacks only with --debug.

    With --detailed-exitcode every error is 1, as in Terraform's scheme: 2 then means
    only "changes pending", never a usage error.
    """
    exit_status = _run(args)
    if "--detailed-exitcode" in args and exit_status == ExitStatus.USAGE and _current.failed:
        return ExitStatus.FAILURE
    return exit_status


def _run(args: list[str]) -> int:
    debug = "--debug" in args
    _current.failed = True
    try:
        command = typer.main.get_command(app)
        result = command.main(args=hoist(args, command), prog_name="pipectl",
                              standalone_mode=False)
        _current.failed = False
        return int(result or 0)
    except ConfigError as exc:
        for problem in exc.problems:
            output.error(problem)
        return exc.exit_status
    except AWS_ERRORS as exc:
        if debug:
            traceback.print_exc()
        context = _current.context
        error = translate(exc, context._aws if context else None)
        output.error(str(error))
        return error.exit_status
    except PipectlError as exc:
        if debug:
            traceback.print_exc()
        output.error(str(exc))
        return exc.exit_status
    except (KeyboardInterrupt, typer.Abort):
        output.error("interrupted")
        return ExitStatus.INTERRUPTED
    except typer.Exit as exc:
        _current.failed = False
        return exc.exit_code
    except Exception as exc:
        # Typer may bring its own copy of click, so its usage errors are recognised
        # by shape (ClickException's format_message) rather than by class.
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            if type(exc).__name__ == "NoArgsIsHelpError":  # `pipectl` alone: the help
                output.stderr.out(exc.format_message(), highlight=False)
            else:
                output.error(exc.format_message())
            return ExitStatus.USAGE
        if debug:  # the last resort: one line, never a traceback unless asked
            traceback.print_exc()
        else:
            output.error(f"internal error: {exc or 'no message'} (rerun with --debug for "
                         "the traceback)")
        return ExitStatus.FAILURE


__all__ = ["app", "main", "run", "translate_errors"]

