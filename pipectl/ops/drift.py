"""Do the deployed functions run the code in this directory's handlers/? And their alarms?"""

from __future__ import annotations

from dataclasses import dataclass

from pipectl.aws import awslambda, cloudwatch
from pipectl.aws.session import Aws
from pipectl.config import PipelineConfig
from pipectl.deploy import package
from pipectl.deploy.desired import alarms
from pipectl.deploy.engine import cache_dir
from pipectl.deploy.models import CODE_TAG, SOURCE_TAG
from pipectl.errors import UsageError
from pipectl.naming import FUNCTIONS, Names


@dataclass(frozen=True)
class FunctionState:
    name: str
    code: str  # matches | differs | not deployed | unknown (no local handler)
    deployed_sha256: str | None
    local_sha256: str | None  # None also where the source digests decided without a build
    # Lambda's State and LastUpdateStatus (None: not deployed, or the endpoint left it out).
    state: str | None = None
    last_update_status: str | None = None
    # What of the two is not Active / Successful, with Lambda's reasons ("" when both are).
    state_reason: str = ""
    failed: bool = False  # State or last update Failed: Lambda cannot run this code


class LocalCode:
    """This directory's handlers as deploy would package them.

    Source digests are cheap (hashing a few files); a zip hash means building the zip,
    which on a fresh machine pip-installs the dependencies, so it is computed only for
    a function deployed without pipectl's tags (or whose code was changed since), and
    kept: `status --watch` asks on every refresh.
    """

    def __init__(self, config: PipelineConfig):
        self._config = config
        self._zips: dict[str, str | None] = {}

    def _platform(self) -> dict:
        p = self._config.processor
        return {"runtime": p.runtime, "architecture": p.architecture}

    def _options(self, kind: str) -> dict:
        return {**self._platform(), "extras": package.extras_for(self._config, kind)}

    def source(self, kind: str) -> str | None:
        """None: this directory has no handler for the function."""
        try:
            return package.source_digest(self._config.handlers_dir, kind, **self._options(kind))
        except UsageError:
            return None

    def zip_sha256(self, kind: str) -> str | None:
        if kind not in self._zips:
            try:
                self._zips[kind] = package.build(self._config.handlers_dir, kind,
                                                 cache_dir=cache_dir(self._config),
                                                 **self._options(kind)).sha256
            except UsageError:
                self._zips[kind] = None
        return self._zips[kind]


def function_states(aws: Aws, names: Names, local: LocalCode | None = None
                    ) -> list[FunctionState]:
    local = local or LocalCode(names.config)
    states = []
    for kind in FUNCTIONS:
        name = names.function(kind)
        found = awslambda.get_function_tagged(aws.client("lambda"), name)
        if found is None:
            states.append(FunctionState(name, "not deployed", None, None))
            continue
        configuration, tags = found
        code, mine = _code(local, kind, configuration["CodeSha256"], tags)
        states.append(FunctionState(
            name, code, configuration["CodeSha256"], mine,
            state=configuration.get("State"),
            last_update_status=configuration.get("LastUpdateStatus"),
            state_reason=awslambda.condition(configuration),
            failed=bool(awslambda.failure(configuration))))
    return states


def _code(local: LocalCode, kind: str, deployed: str, tags: dict[str, str]
          ) -> tuple[str, str | None]:
    """(matches | differs | unknown, the local code's hash where it is known)."""
    source = local.source(kind)
    if source is None:
        return "unknown", None
    if tags.get(SOURCE_TAG) and tags.get(CODE_TAG) == deployed:
        same = tags[SOURCE_TAG] == source
        return ("matches", deployed) if same else ("differs", None)
    mine = local.zip_sha256(kind)
    return ("matches" if mine == deployed else "differs"), mine


def alarm_states(aws: Aws, names: Names) -> dict[str, str]:
    """State (OK, ALARM, INSUFFICIENT_DATA) of each alarm deploy makes, by its name without
    the pipeline's prefix ("processor-errors"); alarms not deployed are left out."""
    wanted = [a.name for a in alarms(names.config, names)]
    found = cloudwatch.alarms(aws.client("cloudwatch"), wanted)
    return {name.removeprefix(f"{names.prefix}-"): found[name]["StateValue"]
            for name in wanted if name in found}
