"""Errors pipectl raises and the exit codes they become (in one place: cli/app.py)."""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    OK = 0
    FAILURE = 1  # the operation failed, or the pipeline is unhealthy
    USAGE = 2  # bad command line or bad pipeline.yaml
    INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


class PipectlError(Exception):
    """An error with a message fit to show the operator as one line."""

    exit_status = ExitStatus.FAILURE


class UsageError(PipectlError):
    exit_status = ExitStatus.USAGE


class ConfigError(UsageError):
    """pipeline.yaml has problems; each one carries its file, line and key path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__(problems[0] if len(problems) == 1 else f"{len(problems)} problems")


class NotFound(PipectlError):
    """A named AWS resource does not exist (usually: not deployed yet)."""


class AwsError(PipectlError):
    """An AWS call failed in a way the operator must act on."""
