"""init / validate / deploy / status / results at the command line: exit codes and exact lines."""

from __future__ import annotations

import json

from moto import mock_aws

from pipectl.cli.app import run


def test_init_writes_a_pipeline_that_validates(tmp_path, capsys, monkeypatch):
    target = tmp_path / "orders"
    assert run(["init", str(target)]) == 0
    assert (target / "pipeline.yaml").read_text().startswith("# pipeline.yaml")
    assert (target / "handlers" / "processor.py").is_file()
    monkeypatch.chdir(target)
    capsys.readouterr()
    assert run(["-o", "json", "validate"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True


def test_init_refuses_to_overwrite(tmp_path, capsys):
    assert run(["init", str(tmp_path)]) == 0
    capsys.readouterr()
    assert run(["init", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "already exist(s); use --force to overwrite" in err
    assert run(["init", "--force", str(tmp_path)]) == 0


def test_validate_reports_every_problem_with_line_and_key(pipeline_dir, pipectl):
    (pipeline_dir / "pipeline.yaml").write_text(
        "pipeline: ok-name\nprocessor:\n  timeout: 0\n  suffixes: [.exe]\narchiver:\n"
        "  schedule: daily\n")
    code, out, err = pipectl("validate")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith(f"error: {pipeline_dir / 'pipeline.yaml'}:3: processor.timeout:")
    assert ":4: processor.suffixes:" in lines[1]
    assert ":6: archiver.schedule: must be an EventBridge schedule" in lines[2]
    assert "Traceback" not in err


def test_missing_config_is_one_line_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run(["status"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {tmp_path / 'pipeline.yaml'}: not found (run `pipectl init` " \
                  "to write one, or pass --config)"


def test_unknown_target_and_unknown_option_are_usage_errors(pipectl):
    code, _, err = pipectl("--target", "prod", "status")
    assert code == 2 and "unknown target 'prod' (known: local)" in err
    code, _, err = pipectl("status", "--colour")
    assert code == 2 and "No such option: --colour" in err


def test_no_credentials_is_one_clear_line(aws_pipeline, pipectl, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    code, _, err = pipectl("status")
    assert code == 1
    assert err.strip().startswith("error: no AWS credentials for target 'aws' (AWS us-east-1)")


def test_deploy_dry_run_json_is_the_plan_as_data(aws_pipeline, pipectl):
    with mock_aws():
        code, out, _ = pipectl("-o", "json", "deploy", "--dry-run")
    assert code == 0
    plan = json.loads(out)
    assert plan["changes"] is True and plan["applied"] is False
    assert plan["summary"] == {"create": 27, "update": 0, "delete": 0, "noop": 0}
    assert {s["kind"] for s in plan["steps"]} == {
        "bucket", "queue", "notification", "table", "log_group", "role", "function", "mapping",
        "schedule", "alarm"}
    assert set(plan["steps"][0]) == {"action", "kind", "name", "reason", "changes"}


def test_status_json_shape_on_an_empty_pipeline(deployed, pipectl):
    code, out, err = pipectl("-o", "json", "status")
    assert code == 0, err
    data = json.loads(out)
    assert data["results"] == {"PROCESSING": 0, "PROCESSED": 0, "FAILED": 0, "ARCHIVED": 0}
    # Configuring the notification made S3 send its s3:TestEvent.
    assert data["queue"] == {"visible": 1, "in_flight": 0, "delayed": 0}
    assert data["dlq"] == {"visible": 0, "in_flight": 0, "delayed": 0}
    assert set(data["buckets"]) == {"raw", "processed", "archive"}


def test_status_before_deploy_is_unhealthy_and_says_what_is_missing(aws_pipeline, pipectl):
    with mock_aws():
        code, _, err = pipectl("status")
    assert code == 1
    assert "queue demo-dev-processing does not exist (run `pipectl deploy`)" in err


def test_results_since_must_be_a_duration_or_time(deployed, pipectl):
    code, _, err = pipectl("results", "--since", "yesterday")
    assert code == 2
    assert "--since: 'yesterday' is neither a duration like 30m, 2h, 7d nor an ISO-8601 time" \
        in err
    code, out, _ = pipectl("-o", "json", "results", "--since", "2h")
    assert code == 0 and json.loads(out) == {"results": [], "next_token": None}


def test_validate_refuses_a_recursive_loop_with_file_line_and_key(pipeline_dir, pipectl):
    path = pipeline_dir / "pipeline.yaml"
    text = path.read_text().replace("  completed: completed/", "  completed: incoming/done/", 1)
    path.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1)
                if row.startswith("  completed: incoming/done/"))

    code, out, err = pipectl("validate")

    assert code == 2
    assert err.strip() == (
        f"error: {path}:{line}: prefixes.completed: 'incoming/done/' lies under "
        "prefixes.incoming ('incoming/'), which triggers processing: everything written "
        "there would trigger it again (a recursive loop); choose a prefix outside it")
