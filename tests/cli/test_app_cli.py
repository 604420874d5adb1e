"""The command line as AWS CLI, kubectl and Terraform users type it (issue 16): global
options anywhere, options that cannot apply refused, usage errors as exit 2, help with
examples, completion, machine output and Terraform's --detailed-exitcode."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest
import typer
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from pipectl.cli import status as status_cli
from pipectl.cli.app import app, run
from pipectl.cli.argv import GLOBAL_OPTIONS, hoist
from pipectl.cli.examples import EXAMPLES

BROKEN = "pipeline: demo\nenvironment: dev\nprocessor:\n  batch_size: lots\n"
TARGETS = """\
pipeline: demo
environment: dev
default_target: aws
targets:
  aws:
    region: us-east-1
  local:
    emulator: true
  prod:
    region: eu-west-1
"""


def command_paths(command=None, path=()):
    """Every command path of the real CLI: (), ("status",), ("events", "s3-put"), ..."""
    command = command or typer.main.get_command(app)
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from command_paths(sub, (*path, name))


def parse(argv: list[str]):
    """Parse argv as `pipectl` would (global options hoisted), down to the last command's
    context; a bad option or value raises click's UsageError."""
    command = typer.main.get_command(app)
    ctx = command.make_context("pipectl", hoist(argv, command))
    while getattr(command, "commands", None) and (rest := [*ctx._protected_args, *ctx.args]):
        name, command, rest = command.resolve_command(ctx, rest)
        ctx = command.make_context(name, rest, parent=ctx)
    return ctx


# --- 1. global options before or after the command -------------------------------------

@pytest.mark.parametrize("argv", [
    ["status", "-o", "json"],
    ["status", "--output", "json"],
    ["status", "--output=json"],
    ["status", "-ojson"],
    ["-o", "json", "status"],
    ["status", "--check", "-o", "json", "--since", "1h"],
])
def test_output_json_anywhere_on_the_line(aws_pipeline, pipectl, argv):
    with mock_aws():
        code, out, err = pipectl(*argv)
    assert code == 1, err            # not deployed yet: unhealthy, yet JSON it is
    assert json.loads(out)["missing"]


def test_every_global_option_after_the_command(aws_pipeline, pipectl, monkeypatch):
    (aws_pipeline / "pipeline.yaml").write_text(TARGETS)
    with mock_aws():
        code, out, err = pipectl("deploy", "--dry-run", "--target", "prod", "--region",
                                 "eu-central-1", "--endpoint-url", "https://s3.example.com",
                                 "--profile", "ops", "--debug", "--output", "json")
    # The profile is not configured (AWS_CONFIG_FILE is /dev/null), and --debug shows the
    # traceback: the options after the command were read.
    assert (code, out) == (2, "")
    assert "Traceback (most recent call last):" in err
    assert err.strip().endswith("error: AWS profile 'ops' is not configured "
                                "(see `aws configure list-profiles`)")


def test_a_command_options_value_is_never_taken_for_a_global_option():
    group = typer.main.get_command(app)
    argv = ["replay-dlq", "--filter", "-o", "--to", "--target", "-c", "x.yaml"]
    assert hoist(argv, group) == ["-c", "x.yaml", "replay-dlq", "--filter", "-o", "--to",
                                  "--target"]
    assert hoist(["trace", "--", "-o"], group) == ["trace", "--", "-o"]


GLOBAL_PAIRS = [("-o", "json"), ("--target", "prod"), ("-c", "p.yaml"), ("--region", "eu-west-1"),
                ("--profile", "ops"), ("--endpoint-url", "http://127.0.0.1:4567"), ("--debug",)]
COMMANDS = [["results", "-s", "FAILED", "--limit", "5"], ["replay-dlq", "--max", "2", "--yes"],
            ["events", "s3-put", "--key", "-o", "--sqs"], ["upload", "a.csv", "--to", "-t"]]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(COMMANDS), st.lists(st.sampled_from(GLOBAL_PAIRS), max_size=4,
                                           unique=True), st.data())
def test_global_options_parse_the_same_wherever_they_stand(command, globals_, data):
    # given a command line and global options put at generated places in it
    line = list(command)
    for option in globals_:
        at = data.draw(st.sampled_from(_option_boundaries(line)))
        line[at:at] = option
    # when it is parsed, then the globals and the command's own values come out as if the
    # globals had all been typed first
    expected = parse([*[t for o in globals_ for t in o], *command])
    got = parse(line)
    assert got.params == expected.params
    assert got.parent.params == expected.parent.params


def _option_boundaries(line: list[str]) -> list[int]:
    """Places a global option may be typed: before the command, or between the command's
    tokens except between an option and its value."""
    command = typer.main.get_command(app)
    places, i = [0], 0
    while i < len(line):
        sub = getattr(command, "commands", {}).get(line[i])
        command = sub or command
        takes = {o for p in command.params if p.param_type_name == "option" and not p.is_flag
                 for o in p.opts} | {o for o, value in GLOBAL_OPTIONS.items() if value}
        i += 2 if line[i] in takes else 1
        places.append(i)
    return places


# --- 2. options that cannot apply are refused ------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--profile", "prod", "status"], "--profile prod does not apply: target 'local' is the "
                                      "embedded emulator (pick an AWS target with --target)"),
    (["status", "--region", "eu-west-1"], "--region eu-west-1 does not apply: target 'local' "
                                          "is the embedded emulator (pick an AWS target with "
                                          "--target)"),
    (["demo", "--profile", "prod"], "--profile prod does not apply: `pipectl demo` always "
                                    "runs on the embedded emulator"),
    (["dev", "--endpoint-url", "http://127.0.0.1:9"], "--endpoint-url does not apply: "
                                                      "`pipectl dev` starts its own emulator "
                                                      "(use `pipectl run --endpoint-url` for "
                                                      "another one)"),
])
def test_aws_options_on_the_emulator_are_refused_not_ignored(pipectl, argv, message):
    code, out, err = pipectl(*argv)
    assert (code, out, err.strip()) == (2, "", f"error: {message}")


def test_aws_profile_from_the_environment_on_the_emulator_is_named(pipectl, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "data-prod")
    code, out, err = pipectl("events", "s3-put", "--key", "k", "--bucket", "b")  # no AWS call
    assert code == 0 and json.loads(out)["Records"][0]["s3"]["object"]["key"] == "k"
    assert ("warning: AWS_PROFILE=data-prod is not used: target 'local' is the embedded "
            "emulator (pick an AWS target with --target)") in err


# --- 3. usage errors are usage errors --------------------------------------------------

@pytest.mark.parametrize("url, problem", [
    ("127.0.0.1:4567", "must start with http:// or https://, e.g. http://127.0.0.1:4567"),
    ("http://127.0.0.1:99999", "has a port outside 1-65535 or a malformed host"),
    ("http://:4567", "has no host name"),
    ("http://127.0.0.1:0", "has a port outside 1-65535"),
])
def test_a_malformed_endpoint_url_is_one_line_exit_2(pipectl, url, problem):
    code, out, err = pipectl("status", "--endpoint-url", url)
    assert (code, out) == (2, "")
    assert err.strip() == f"error: Invalid value for '--endpoint-url': {problem} (got '{url}')"


def test_init_onto_a_file_or_under_one_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "taken").write_text("x")
    assert run(["init", str(tmp_path / "taken")]) == 2
    assert capsys.readouterr().err.strip() == (f"error: {tmp_path / 'taken'} is a file, not a "
                                               "directory: give init a directory")
    assert run(["init", str(tmp_path / "taken" / "sub")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: cannot write {tmp_path / 'taken' / 'sub'}: Not a directory"


def test_an_unexpected_error_names_no_python_class(pipectl, monkeypatch):
    def broken(*_args, **_kwargs):
        raise ValueError("bad value")

    monkeypatch.setattr("pipectl.cli.project.init_project", broken)
    code, _, err = pipectl("init", "elsewhere")
    assert code == 1
    assert err.strip() == "error: internal error: bad value (rerun with --debug for the traceback)"
    assert "ValueError" not in err


# --- 4. help, examples and completion --------------------------------------------------

@pytest.mark.parametrize("path", list(command_paths()), ids=lambda p: " ".join(p) or "pipectl")
def test_every_help_ends_with_examples_that_parse(path, capsys):
    assert run([*path, "--help"]) == 0
    out = capsys.readouterr().out
    examples = out.rstrip().split("Examples:")[-1].strip().splitlines()
    assert 2 <= len(examples) <= 4, out
    assert [line.strip() for line in examples] == list(EXAMPLES[" ".join(path)])
    assert "<bool>" not in out                       # flags have no value placeholder
    for example in examples:
        argv = shlex.split(example.split(" > ")[0])  # a shell redirection is not an argument
        assert argv[0] == "pipectl"
        parse(argv[1:])                              # a renamed option would raise here


def test_defaults_survive_in_help(capsys):
    run(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "default: (./pipeline.yaml)" in out and "default: (its default_target)" in out
    assert "--install-completion" in out and "--show-completion" in out


@pytest.mark.parametrize("command", ["logs", "invoke"])
def test_logs_and_invoke_help_name_every_function(command, capsys):
    run([command, "--help"])
    assert "processor, archiver or fetcher" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("words, expected", [
    ("pipectl --target ", ["aws", "local", "prod"]),
    ("pipectl --target p", ["prod"]),
    ("pipectl logs ", ["processor", "archiver", "fetcher"]),
    ("pipectl invoke f", ["fetcher"]),
    ("pipectl replay-dlq --queue ", ["processing", "fetch"]),
])
def test_shell_completion_of_targets_functions_and_queues(tmp_path, words, expected):
    (tmp_path / "pipeline.yaml").write_text(TARGETS)
    env = {**os.environ, "_PIPECTL_COMPLETE": "complete_bash", "COMP_WORDS": words,
           "COMP_CWORD": str(len(words.split(" ")) - 1)}
    done = subprocess.run([sys.executable, "-m", "pipectl"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.split()) == (0, expected), done.stderr


# --- 5. machine output -----------------------------------------------------------------

def test_validate_json_lists_every_problem_as_terraform_does(pipeline_dir, pipectl):
    (pipeline_dir / "pipeline.yaml").write_text(BROKEN + "targets:\n  local:\n    port: 0\n")
    code, out, err = pipectl("validate", "-o", "json")
    assert (code, err) == (2, "")
    assert json.loads(out) == {"valid": False, "problems": [
        {"file": str(pipeline_dir / "pipeline.yaml"), "line": 4, "path": "processor.batch_size",
         "message": "must be an integer (got 'lots')"},
        {"file": str(pipeline_dir / "pipeline.yaml"), "line": 7, "path": "targets.local.port",
         "message": "must be between 1 and 65535 (got 0)"}]}


def test_validate_json_of_unreadable_yaml_has_a_line_and_no_path(pipeline_dir, pipectl):
    (pipeline_dir / "pipeline.yaml").write_text("pipeline: [\n")
    code, out, _ = pipectl("-o", "json", "validate")
    problem, = json.loads(out)["problems"]
    assert code == 2 and (problem["line"], problem["path"]) == (2, None)
    assert problem["message"].startswith("invalid YAML: ")


def test_validate_json_of_a_good_file(pipectl):
    code, out, _ = pipectl("validate", "-o", "json")
    data = json.loads(out)
    assert code == 0 and (data["valid"], data["problems"]) == (True, [])


def test_target_in_json_is_an_object(aws_pipeline, pipectl):
    with mock_aws():
        _, status, _ = pipectl("status", "-o", "json")
        _, plan, _ = pipectl("deploy", "--dry-run", "-o", "json")
    target = {"name": "aws", "endpoint": None, "region": "us-east-1"}
    assert json.loads(status)["target"] == target
    assert json.loads(plan)["target"] == target


def test_status_watch_json_is_one_snapshot_a_line_each_with_its_time(aws_pipeline, pipectl,
                                                                     monkeypatch):
    refreshes = []

    def sleep(seconds):  # the third refresh is the user's Ctrl-C
        refreshes.append(seconds)
        if len(refreshes) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(status_cli.time, "sleep", sleep)
    with mock_aws():
        code, out, _ = pipectl("status", "--watch", "--interval", "0.5", "-o", "json")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3 and refreshes == [0.5] * 3
    snapshots = [json.loads(line) for line in lines]
    assert all(s["checked_at"] and s["target"]["name"] == "aws" for s in snapshots)


# --- 10. --detailed-exitcode: Terraform's scheme ---------------------------------------

def test_detailed_exitcode_changes_pending_is_2(aws_pipeline, pipectl):
    with mock_aws():
        code, _, _ = pipectl("deploy", "--dry-run", "--detailed-exitcode")
    assert code == 2


@pytest.mark.parametrize("argv", [["deploy", "--dry-run", "--detailed-exitcode"],
                                  ["deploy", "--detailed-exitcode", "--no-such-flag"]])
def test_detailed_exitcode_any_error_is_1_never_2(pipeline_dir, pipectl, argv):
    (pipeline_dir / "pipeline.yaml").write_text(BROKEN)
    code, _, err = pipectl(*argv)
    assert code == 1 and err.startswith("error: ")
    # without the flag the same mistakes are usage errors
    assert pipectl(*[a for a in argv if a != "--detailed-exitcode"])[0] == 2


# --- 7. progress and first words -------------------------------------------------------

def test_deploy_says_what_it_is_doing_before_the_plan(aws_pipeline, pipectl):
    with mock_aws():
        code, _, err = pipectl("deploy", "--dry-run")
    assert code == 0
    assert err.splitlines()[:2] == [f"building function zips from {aws_pipeline / 'handlers'}",
                                    "observing 27 resources on target 'aws' (AWS us-east-1)"]


def test_plain_progress_speaks_every_30_seconds_when_the_bytes_crawl(capsys):
    from pipectl.cli.buckets import _PlainProgress

    now = [0.0]
    progress = _PlainProgress("download", 1000, clock=lambda: now[0])
    for second in range(1, 95):
        now[0] = float(second)
        progress.add(1)  # 0.1% a second: the tenths alone would say nothing for 100 s
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["download: 3% (30 B of 1000 B)", "download: 6% (60 B of 1000 B)",
                     "download: 9% (90 B of 1000 B)"]


# --- 9. start-up -----------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["status", "--help"]])
def test_help_and_version_import_no_aws_library(argv):
    # a fresh interpreter, as a shell starts one: the modules a command line loaded
    probe = ("import sys, runpy; sys.argv = ['pipectl', *sys.argv[1:]]\n"
             "try:\n    runpy.run_module('pipectl', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('boto3', 's3transfer', 'moto') or m == 'botocore.session'), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout
    assert done.stderr.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("argv", [[], ["events"]])
def test_a_bare_group_prints_its_help_not_an_error(argv, capsys):
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"Usage: pipectl {' '.join(argv)}".rstrip() + " [OPTIONS] COMMAND")
    assert "error:" not in err and "Examples:" in err
