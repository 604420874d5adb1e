"""pipeline.yaml parsing: every problem reported with file, line and key path."""

from pathlib import Path

import pytest

from pipectl import config
from pipectl.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_repository_pipeline_yaml_is_valid():
    cfg = config.load(ROOT / "pipeline.yaml")
    assert cfg.name == "pipectl-demo"
    assert cfg.processor.max_receive_count == 3
    assert cfg.archiver.schedule == "cron(0 2 * * ? *)"
    assert cfg.target(None).emulator is True


def test_every_problem_has_file_line_and_key_path():
    text = "pipeline: Bad_Name\nprocessor:\n  batch_size: 0\n  colour: red\n"
    with pytest.raises(ConfigError) as caught:
        config.parse(text, Path("p.yaml"))
    problems = caught.value.problems
    assert ("p.yaml:1: pipeline: must be 3-40 lowercase letters, digits or hyphens "
            "(got 'Bad_Name')") in problems
    assert any(p.startswith("p.yaml:3: processor.batch_size: must be between 1 and")
               for p in problems)
    assert any(p.startswith("p.yaml:4: processor.colour: unknown setting") for p in problems)


def test_invalid_yaml_is_one_line_with_its_line_number():
    with pytest.raises(ConfigError) as caught:
        config.parse("pipeline: x\n  bad: [\n", Path("p.yaml"))
    assert caught.value.problems[0].startswith("p.yaml:2: invalid YAML")


def test_missing_file_suggests_init(tmp_path):
    with pytest.raises(ConfigError) as caught:
        config.load(tmp_path / "pipeline.yaml")
    assert "run `pipectl init`" in caught.value.problems[0]


PIPELINE = (ROOT / "pipeline.yaml").read_text()


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config.parse(text, Path("pipeline.yaml"))
    return caught.value.problems


def _line(key: str, text: str = PIPELINE) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1)
                if line.strip().startswith(key + ":"))


@pytest.mark.parametrize("setting, value, reported, under", [
    ("completed", "incoming/done/", "prefixes.completed", "prefixes.incoming ('incoming/')"),
    ("failed", "incoming/failed/", "prefixes.failed", "prefixes.incoming ('incoming/')"),
    ("completed", "fetch/done/", "prefixes.completed", "prefixes.fetch ('fetch/')"),
    ("incoming", "fetch/in/", "prefixes.incoming", "prefixes.fetch ('fetch/')"),
])
def test_a_prefix_the_pipeline_writes_under_one_that_triggers_it_is_a_loop(
        setting, value, reported, under):
    text = PIPELINE.replace(f"  {setting}: {setting}/", f"  {setting}: {value}", 1)
    assert text != PIPELINE

    (problem,) = _problems(text)

    assert problem.startswith(f"pipeline.yaml:{_line(setting)}: {reported}: '{value}' lies "
                              f"under {under}, which triggers ")
    assert "(a recursive loop)" in problem


@pytest.mark.parametrize("setting, value, container", [
    ("incoming", "completed/in/", "prefixes.completed ('completed/')"),
    ("incoming", "failed/in/", "prefixes.failed ('failed/')"),
    ("fetch", "completed/fetch/", "prefixes.completed ('completed/')"),
    ("fetch", "incoming/fetch/", "prefixes.incoming ('incoming/')"),
])
def test_a_trigger_prefix_under_one_the_pipeline_writes_to_is_a_loop_too(
        setting, value, container):
    text = PIPELINE.replace(f"  {setting}: {setting}/", f"  {setting}: {value}", 1)

    (problem,) = _problems(text)

    assert problem.startswith(f"pipeline.yaml:{_line(setting)}: prefixes.{setting}: '{value}' "
                              f"lies under {container}, which the pipeline writes to")


def test_outputs_in_the_raw_bucket_must_stay_out_of_incoming():
    # given one bucket for raw files and outputs, and outputs under incoming/
    text = PIPELINE.replace("  raw: ", "  raw: shared-bucket ", 1).replace(
        "  processed: ", "  processed: shared-bucket ", 1).replace(
        "  processed: processed/", "  processed: incoming/out/", 1)

    (problem,) = _problems(text)

    assert ": prefixes.processed: 'incoming/out/' lies under prefixes.incoming " \
        "('incoming/'), which triggers processing" in problem
    # and in a bucket of their own, outputs under that prefix trigger nothing
    separate = PIPELINE.replace("  processed: processed/", "  processed: incoming/out/", 1)
    assert config.parse(separate, Path("pipeline.yaml")).prefixes.processed == "incoming/out/"


def test_sibling_prefixes_that_share_a_start_are_no_loop():
    text = PIPELINE.replace("  completed: completed/", "  completed: incoming-done/", 1)
    assert config.parse(text, Path("pipeline.yaml")).prefixes.completed == "incoming-done/"
