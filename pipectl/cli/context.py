"""The one object every command gets in ctx.obj: config, target, clients, output mode."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import typer

from pipectl import config as config_module
from pipectl.aws.session import Aws
from pipectl.config import PipelineConfig
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
            self._aws = Aws.for_target(self.config.target(self.target_name),
                                       endpoint_url=self.endpoint_url, profile=self.profile,
                                       region=self.region)
        return self._aws

    def use_aws(self, aws: Aws) -> None:
        """Point later calls at another endpoint (the emulator `dev` and `demo` start)."""
        self._aws = aws

    @property
    def names(self) -> Names:
        return Names(self.config, self.aws.account, self.aws.region)


def get(ctx: typer.Context) -> AppContext:
    return ctx.find_root().obj
