"""Do the deployed functions run the code in this directory's handlers/? And their alarms?"""

from __future__ import annotations

from dataclasses import dataclass

from pipectl.aws import awslambda, cloudwatch
from pipectl.aws.session import Aws
from pipectl.deploy import package
from pipectl.deploy.desired import alarms
from pipectl.deploy.engine import cache_dir
from pipectl.errors import UsageError
from pipectl.naming import FUNCTIONS, Names


@dataclass(frozen=True)
class FunctionState:
    name: str
    code: str  # matches | differs | not deployed | unknown (no local handler)
    deployed_sha256: str | None
    local_sha256: str | None


def local_hashes(names: Names) -> dict[str, str | None]:
    """Each function's zip hash as built from this directory's handlers/ (None: no handler).
    Building deflates every zip, so callers that refresh (status --watch) compute it once."""
    config = names.config
    hashes: dict[str, str | None] = {}
    for kind in FUNCTIONS:
        try:
            hashes[kind] = package.build(config.handlers_dir, kind,
                                         runtime=config.processor.runtime,
                                         architecture=config.processor.architecture,
                                         cache_dir=cache_dir(config)).sha256
        except UsageError:
            hashes[kind] = None
    return hashes


def function_states(aws: Aws, names: Names,
                    local: dict[str, str | None] | None = None) -> list[FunctionState]:
    local = local if local is not None else local_hashes(names)
    states = []
    for kind in FUNCTIONS:
        found = awslambda.get_function(aws.client("lambda"), names.function(kind))
        deployed = found["CodeSha256"] if found else None
        mine = local.get(kind)
        code = ("not deployed" if deployed is None else "unknown" if mine is None
                else "matches" if mine == deployed else "differs")
        states.append(FunctionState(names.function(kind), code, deployed, mine))
    return states


def alarm_states(aws: Aws, names: Names) -> dict[str, str]:
    """State (OK, ALARM, INSUFFICIENT_DATA) of each alarm deploy makes, by its name without
    the pipeline's prefix ("processor-errors"); alarms not deployed are left out."""
    wanted = [a.name for a in alarms(names.config, names)]
    found = cloudwatch.alarms(aws.client("cloudwatch"), wanted)
    return {name.removeprefix(f"{names.prefix}-"): found[name]["StateValue"]
            for name in wanted if name in found}
