"""The deploy pipeline end to end: desired -> observe -> plan, and apply."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pipectl.aws.session import Aws
from pipectl.config import CONFIG_FILE, PipelineConfig
from pipectl.deploy import apply as applier
from pipectl.deploy import destroy, sweep
from pipectl.deploy.desired import MAPPING_ENABLED_NOTE, resources
from pipectl.deploy.models import DeployPlan, Step
from pipectl.deploy.observe import observe
from pipectl.deploy.plan import plan
from pipectl.naming import Names

PLAIN_HTTP_NOTE = ("buckets get no TLS-only policy: the endpoint speaks plain HTTP, "
                   "which that policy denies (on AWS it is always applied)")


def build_plan(aws: Aws, config: PipelineConfig,
               on_phase: Callable[[str], None] = lambda _: None, *,
               purge: bool = False) -> DeployPlan:
    """on_phase hears what the plan is doing, for the seconds before it can be shown.

    What deploy made and pipeline.yaml no longer holds is planned for deletion after every
    create and update (nothing desired still refers to it by then); whatever holds data is
    kept unless purge, as destroy does.
    """
    on_phase(f"building function zips from {config.handlers_dir}")
    names = Names(config, aws.account, aws.region)
    # The endpoint botocore actually uses, AWS_ENDPOINT_URL included.
    tls_only = not aws.client("s3").meta.endpoint_url.startswith("http://")
    local_runtime = aws.target.emulator
    desired = resources(config, names, tls_only=tls_only, local_runtime=local_runtime,
                        cache_dir=cache_dir(config))
    on_phase(f"observing {len(desired)} resources on {aws.describe()}")
    notes = ((PLAIN_HTTP_NOTE,) if not tls_only else ()) + (
        (MAPPING_ENABLED_NOTE,) if local_runtime else ())
    planned = plan(aws.target.name, [(d, observe(aws, d)) for d in desired], notes=notes)
    on_phase("looking for resources this pipeline made and no longer holds")
    sweeps = tuple(destroy.removal(aws, stray, purge=purge, reason=f"no longer in {CONFIG_FILE}")
                   for stray in sweep.strays(aws, names, desired))
    return replace(planned, steps=planned.steps + sweeps)


def cache_dir(config: PipelineConfig) -> Path:
    """Where dependency sets built for Lambda are kept: per user, shared by every pipeline
    (entries are keyed by the requirements' content hash, so sharing is safe)."""
    if explicit := os.environ.get("PIPECTL_CACHE_DIR"):
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pipectl"


def apply(aws: Aws, deploy_plan: DeployPlan,
          on_step: Callable[[Step], None] = lambda s: None) -> None:
    applier.apply(aws, deploy_plan, on_step)
