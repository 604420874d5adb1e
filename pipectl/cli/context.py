"""The one object every command gets in ctx.obj: config, target, clients, output mode."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import typer

from pipectl import config as config_module
from pipectl import output
from pipectl.aws.session import Aws
from pipectl.config import PipelineConfig
from pipectl.errors import UsageError
from pipectl.naming import Names


@dataclass
class AppContext:
    config_path: Path | None = None
    target_name: str | None = None
    endpoint_url: str | None = None
    profile: str | None = None
    region: str | None = None
    output: str = "table"
    debug: bool = False
    _config: PipelineConfig | None = field(default=None, repr=False)
    _aws: Aws | None = field(default=None, repr=False)

    @property
    def json(self) -> bool:
        return self.output == "json"

    @property
    def config(self) -> PipelineConfig:
        if self._config is None:
            self._config = config_module.load(config_module.find_config(self.config_path))
        return self._config

    @property
    def aws(self) -> Aws:
        if self._aws is None:
            target = self.config.target(self.target_name)
            if target.emulator:
                self.refuse_aws_options(f"target '{target.name}' is the embedded emulator "
                                        "(pick an AWS target with --target)")
            self._aws = Aws.for_target(target, endpoint_url=self.endpoint_url,
                                       profile=self.profile, region=self.region)
        return self._aws

    def refuse_aws_options(self, reason: str) -> None:
        """--profile and --region mean AWS: on the embedded emulator they would be ignored,
        and the user would think they were looking at an account. Refuse, never pretend."""
        for flag, value in (("--profile", self.profile), ("--region", self.region)):
            if value:
                raise UsageError(f"{flag} {value} does not apply: {reason}")
        if os.environ.get("AWS_PROFILE"):
            output.warn(f"AWS_PROFILE={os.environ['AWS_PROFILE']} is not used: {reason}")

    def emulator_only(self, command: str, config: PipelineConfig | None = None) -> None:
        """For `dev` and `demo`, which start their own emulator: an option naming somewhere
        else is refused rather than ignored."""
        self.refuse_aws_options(f"`{command}` always runs on the embedded emulator")
        if self.endpoint_url:
            raise UsageError(f"--endpoint-url does not apply: `{command}` starts its own "
                             "emulator (use `pipectl run --endpoint-url` for another one)")
        if self.target_name and not (config or self.config).target(self.target_name).emulator:
            raise UsageError(f"--target {self.target_name} does not apply: `{command}` runs "
                             "on the embedded emulator, not on AWS")

    def target_data(self) -> dict[str, str | None]:
        """Where the command acted, for JSON: an object, not the sentence tables show."""
        return {"name": self.aws.target.name, "endpoint": self.aws.effective_endpoint,
                "region": self.aws.region}

    def use_aws(self, aws: Aws) -> None:
        """Point later calls at another endpoint (the emulator `dev` and `demo` start)."""
        self._aws = aws

    @property
    def names(self) -> Names:
        return Names(self.config, self.aws.account, self.aws.region)


def get(ctx: typer.Context) -> AppContext:
    return ctx.find_root().obj
