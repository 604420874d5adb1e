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
