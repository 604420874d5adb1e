"""The processor's settings, read once from its environment (names: common/contract.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from common import contract as env
from common import results

from processing import images, schema
from processing.limits import Limits
from processing.output_format import OutputFormat


@dataclass(frozen=True)
class Settings:
    environment: str
    processed_bucket: str
    results_table: str
    incoming: str = "incoming/"
    completed: str = "completed/"
    failed: str = "failed/"
    processed: str = "processed/"
    pipeline: str = ""
    raw_bucket: str = ""
    limits: Limits = Limits()
    schemas: tuple = ()                  # schema.Schema, from RECORD_SCHEMAS
    sink_table: str = ""                 # SINK_TABLE: accepted records also go there
    sink_key: str = ""
    image_limits: images.ImageLimits = images.ImageLimits()
    version: str = results.UNVERSIONED   # PROCESSOR_VERSION: deploy derives it
    output: OutputFormat = OutputFormat()

    @classmethod
    def from_env(cls) -> Settings:
        get = os.environ.get
        return cls(environment=get(env.ENVIRONMENT, ""),
                   processed_bucket=get(env.PROCESSED_BUCKET, ""),
                   results_table=get(env.RESULTS_TABLE, ""),
                   incoming=get(env.INCOMING_PREFIX) or "incoming/",
                   completed=get(env.COMPLETED_PREFIX) or "completed/",
                   failed=get(env.FAILED_PREFIX) or "failed/",
                   processed=get(env.PROCESSED_PREFIX) or "processed/",
                   pipeline=get(env.PIPELINE, ""), raw_bucket=get(env.RAW_BUCKET, ""),
                   limits=Limits.from_env(os.environ), schemas=tuple(schema.load(os.environ)),
                   sink_table=get(env.SINK_TABLE, ""), sink_key=get(env.SINK_KEY, ""),
                   image_limits=images.ImageLimits.from_env(os.environ),
                   version=get(env.PROCESSOR_VERSION) or results.UNVERSIONED,
                   output=OutputFormat.from_env(os.environ))
