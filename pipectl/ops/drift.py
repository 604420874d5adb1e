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


def function_states(aws: Aws, names: Names) -> list[FunctionState]:
    config = names.config
    states = []
    for kind in FUNCTIONS:
        found = awslambda.get_function(aws.client("lambda"), names.function(kind))
        deployed = found["CodeSha256"] if found else None
        try:
            local = package.build(config.handlers_dir, kind, runtime=config.processor.runtime,
                                  architecture=config.processor.architecture,
                                  cache_dir=cache_dir(config)).sha256
        except UsageError:
            local = None
        code = ("not deployed" if deployed is None else "unknown" if local is None
                else "matches" if local == deployed else "differs")
        states.append(FunctionState(names.function(kind), code, deployed, local))
    return states


def alarm_states(aws: Aws, names: Names) -> dict[str, str]:
    """State (OK, ALARM, INSUFFICIENT_DATA) of each alarm deploy makes, by its name without
    the pipeline's prefix ("processor-errors"); alarms not deployed are left out."""
    wanted = [a.name for a in alarms(names.config, names)]
    found = cloudwatch.alarms(aws.client("cloudwatch"), wanted)
    return {name.removeprefix(f"{names.prefix}-"): found[name]["StateValue"]
            for name in wanted if name in found}
