"""What the local runtime serves, read from the deployment itself, not from pipeline.yaml.

Batch size comes from the event source mapping; handler, timeout, memory and
environment from the function's configuration; the visibility timeout from the
queue; schedules from the EventBridge rules. A change deployed is a change served.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipectl.aws import awslambda, events, sqs
from pipectl.aws.session import Aws
from pipectl.errors import NotFound, PipectlError
from pipectl.naming import FUNCTIONS, Names


@dataclass(frozen=True)
class DeployedFunction:
    name: str
    handler: str
    timeout: int
    memory: int
    environment: dict[str, str]
    # The deployed zip's CodeSha256: the workers run handlers/ from disk, and a new digest
    # (a deploy from anywhere) is what tells the runtime to start them afresh.
    code_sha256: str = ""


@dataclass(frozen=True)
class Mapping:
    """A queue -> function event source mapping, as deployed."""

    function: DeployedFunction
    queue_url: str
    queue_arn: str
    batch_size: int
    visibility_timeout: int
    # MaximumBatchingWindowInSeconds: how long Lambda gathers messages towards batch_size
    # before invoking (0: it invokes with what one poll returns).
    batching_window: int = 0
    # ScalingConfig.MaximumConcurrency: the most concurrent invocations Lambda starts for
    # this mapping; None when the mapping has no ScalingConfig.
    max_concurrency: int | None = None


@dataclass(frozen=True)
class ScheduledFunction:
    rule: str
    rule_arn: str
    expression: str
    function: DeployedFunction


@dataclass(frozen=True)
class Deployment:
    mappings: list[Mapping]
    schedules: list[ScheduledFunction]


def function(aws: Aws, name: str) -> DeployedFunction:
    found = awslambda.get_function(aws.client("lambda"), name)
    if found is None:
        raise NotFound(f"function '{name}' is not deployed (run `pipectl deploy`)")
    return DeployedFunction(name=name, handler=found["Handler"], timeout=found["Timeout"],
                            memory=found["MemorySize"],
                            environment=found.get("Environment", {}).get("Variables", {}),
                            code_sha256=found.get("CodeSha256", ""))


def discover(aws: Aws, names: Names) -> Deployment:
    lam, client = aws.client("lambda"), aws.client("sqs")
    mappings = []
    for kind in FUNCTIONS:
        deployed = function(aws, names.function(kind))
        for m in awslambda.mappings(lam, deployed.name):
            arn = m["EventSourceArn"]
            if ":sqs:" not in arn:
                continue
            if m.get("State") in ("Enabled", "Enabling"):
                # Serving it here too would race Lambda (and, on moto, its hidden
                # receives burn ApproximateReceiveCount until messages hit the DLQ).
                raise PipectlError(
                    f"the mapping {arn.rsplit(':', 1)[-1]} -> {deployed.name} is enabled, so "
                    "Lambda consumes that queue; the local runtime serves disabled mappings "
                    "only (deploy to an emulator target)")
            url = sqs.require_queue_url(client, arn.rsplit(":", 1)[-1])
            mappings.append(Mapping(
                function=deployed, queue_url=url, queue_arn=arn, batch_size=m["BatchSize"],
                visibility_timeout=int(sqs.attributes(client, url)["VisibilityTimeout"]),
                batching_window=int(m.get("MaximumBatchingWindowInSeconds") or 0),
                max_concurrency=(m.get("ScalingConfig") or {}).get("MaximumConcurrency")))
    if not mappings:
        raise NotFound(f"no queue is mapped to {names.function('processor')} "
                       "(run `pipectl deploy`)")
    return Deployment(mappings=mappings, schedules=_schedules(aws, names))


def _schedules(aws: Aws, names: Names) -> list[ScheduledFunction]:
    client = aws.client("events")
    rule = events.get_rule(client, names.schedule_rule)
    if rule is None or rule.get("State") != "ENABLED" or not rule.get("ScheduleExpression"):
        return []
    return [ScheduledFunction(rule=rule["Name"], rule_arn=rule["Arn"],
                              expression=rule["ScheduleExpression"],
                              function=function(aws, t["Arn"].rsplit(":", 1)[-1]))
            for t in events.targets(client, rule["Name"]) if ":function:" in t["Arn"]]
