"""Code drift under mock_aws: told by deploy's source tags; a zip is built only when they can't."""

from __future__ import annotations

import io
import zipfile

import boto3
import pytest

from pipectl.deploy import engine, package
from pipectl.deploy.models import CODE_TAG, SOURCE_TAG
from pipectl.ops.drift import LocalCode, function_states


@pytest.fixture
def builds(monkeypatch):
    """The functions a drift check built a zip for (building installs dependencies)."""
    built: list[str] = []
    real = package.build

    def counting(handlers_dir, entry, **kw):
        built.append(entry)
        return real(handlers_dir, entry, **kw)

    monkeypatch.setattr(package, "build", counting)
    return built


def codes(aws, deployed, cfg) -> dict[str, str]:
    return {s.name.rsplit("-", 1)[-1]: s.code
            for s in function_states(aws, deployed, LocalCode(cfg))}


def test_tagged_functions_are_compared_by_source_without_building(aws, deployed, cfg,
                                                                  pipeline_dir, builds):
    assert codes(aws, deployed, cfg) == {
        "processor": "matches", "archiver": "matches", "fetcher": "matches"}
    # schema.py is imported by the processor only.
    with (pipeline_dir / "handlers" / "processing" / "schema.py").open("a") as f:
        f.write("\n# edited after deploy\n")
    assert codes(aws, deployed, cfg) == {
        "processor": "differs", "archiver": "matches", "fetcher": "matches"}
    assert builds == []


def test_code_uploaded_outside_pipectl_is_compared_by_building(aws, deployed, cfg, builds):
    lam = boto3.client("lambda", region_name="us-east-1")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("archiver.py", "def lambda_handler(event, context):\n    return {}\n")
    lam.update_function_code(FunctionName=deployed.function("archiver"),
                             ZipFile=archive.getvalue())

    assert codes(aws, deployed, cfg)["archiver"] == "differs"
    assert builds == ["archiver"]
    # The tags still name the old code, so deploy puts the code and the tags back.
    plan = engine.build_plan(aws, cfg)
    [step] = [s for s in plan.steps if s.action != "noop" and s.kind == "function"]
    assert (step.name, [c.field for c in step.changes]) == (
        deployed.function("archiver"), ["code_sha256", "source_sha256"])


def test_an_untagged_function_is_built_once_then_deploy_only_tags_it(aws, deployed, cfg,
                                                                      builds):
    lam = boto3.client("lambda", region_name="us-east-1")
    arn = lam.get_function(FunctionName=deployed.function("fetcher"))["Configuration"][
        "FunctionArn"]
    lam.untag_resource(Resource=arn, TagKeys=[SOURCE_TAG, CODE_TAG])   # an older deploy

    local = LocalCode(cfg)
    for _ in range(2):                                              # status --watch refreshes
        states = {s.name.rsplit("-", 1)[-1]: s for s in function_states(aws, deployed, local)}
        assert states["fetcher"].code == "matches"
    assert builds == ["fetcher"]
    assert states["fetcher"].local_sha256 == states["fetcher"].deployed_sha256

    calls: list[str] = []
    aws.client("lambda").meta.events.register(
        "before-call", lambda model, **_: calls.append(model.name))
    plan = engine.build_plan(aws, cfg)
    [step] = [s for s in plan.steps if s.action != "noop" and s.kind == "function"]
    assert [c.field for c in step.changes] == ["source_sha256"]
    calls.clear()
    engine.apply(aws, plan)
    assert [c for c in calls if not c.startswith(("Get", "List"))] == ["TagResource"]
    tags = lam.get_function(FunctionName=deployed.function("fetcher"))["Tags"]
    assert tags[CODE_TAG] == states["fetcher"].deployed_sha256
    assert tags[SOURCE_TAG] == package.source_digest(
        cfg.handlers_dir, "fetcher", runtime=cfg.processor.runtime,
        architecture=cfg.processor.architecture)
