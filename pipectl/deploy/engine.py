"""The deploy pipeline end to end: desired -> observe -> plan, and apply."""

from __future__ import annotations

from collections.abc import Callable

from pipectl.aws.session import Aws
from pipectl.config import PipelineConfig
from pipectl.deploy import apply as applier
from pipectl.deploy.desired import resources
from pipectl.deploy.models import DeployPlan, Step
from pipectl.deploy.observe import observe
from pipectl.deploy.plan import plan
from pipectl.naming import Names

PLAIN_HTTP_NOTE = ("buckets get no TLS-only policy: the endpoint speaks plain HTTP, "
                   "which that policy denies (on AWS it is always applied)")


def build_plan(aws: Aws, config: PipelineConfig) -> DeployPlan:
    names = Names(config, aws.account, aws.region)
    # The endpoint botocore actually uses, AWS_ENDPOINT_URL included.
    tls_only = not aws.client("s3").meta.endpoint_url.startswith("http://")
    desired = resources(config, names, tls_only=tls_only)
    return plan(aws.target.name, [(d, observe(aws, d)) for d in desired],
                notes=() if tls_only else (PLAIN_HTTP_NOTE,))


def apply(aws: Aws, deploy_plan: DeployPlan,
          on_step: Callable[[Step], None] = lambda s: None) -> None:
    applier.apply(aws, deploy_plan, on_step)
