"""The command line through the real `pipectl` against a moto server (issues 16 and 21):
global options after the command, Terraform's exit codes, machine output, hostile keys."""

from __future__ import annotations

import json

from pipectl import output


def test_global_options_after_the_command_and_detailed_exit_codes(pipectl, pipeline_dir,
                                                                   moto_server):
    # given a pipeline not yet deployed: changes are pending
    plan = pipectl("deploy", "--dry-run", "--detailed-exitcode", "-o", "json", endpoint=False,
                   env={"AWS_ENDPOINT_URL": moto_server})
    assert plan.code == 2, plan.err
    assert plan.json()["target"] == {"name": "local", "endpoint": moto_server,
                                     "region": "us-east-1"}
    assert pipectl("deploy", "--yes", "--detailed-exitcode").code == 2      # applied
    again = pipectl("deploy", "--dry-run", "--detailed-exitcode", "--output=json")
    assert again.code == 0 and again.json()["changes"] is False           # nothing left
    # when pipeline.yaml breaks, the error is 1 with the flag, 2 without
    (pipeline_dir / "pipeline.yaml").write_text("pipeline: [\n")
    broken = pipectl("deploy", "--dry-run", "--detailed-exitcode")
    assert broken.code == 1 and broken.err.startswith("error: ")
    assert pipectl("deploy", "--dry-run").code == 2
    problems = pipectl("validate", "-o", "json").json()["problems"]
    assert [(p["line"], p["path"]) for p in problems] == [(2, None)]


def test_hostile_keys_reach_the_terminal_as_plain_text(pipectl, client, names):
    assert pipectl("deploy", "--yes").code == 0
    keys = ["incoming/[/]oops.csv", "incoming/\x1b[2Jclear.csv", "incoming/\u202egpj.csv"]
    for key in keys:
        client("s3").put_object(Bucket=names["raw"], Key=key, Body=b"a\n")
    listing = pipectl("ls", "raw/incoming/", "-r")
    traced = [pipectl("trace", key) for key in keys]
    status = pipectl("status", "-o", "table")
    assert listing.code == 0 and all(t.code == 0 for t in traced), [t.err for t in traced]
    for shown in (listing.out, status.out, *(t.out for t in traced)):
        assert "\x1b" not in shown and "\u202e" not in shown
    assert all(output.plain(key) in listing.out for key in keys)
    assert json.loads(pipectl("trace", keys[1], "-o", "json").out)["key"] == keys[1]
