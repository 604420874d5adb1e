"""Deterministic physical names and ARNs.

There is no state file: every resource's name follows from pipeline.yaml and the
account, so `plan` observes the real resources from any machine.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipectl.config import PipelineConfig
from pipectl.contract import contract

BUCKET_ROLES = ("raw", "processed", "archive")
FUNCTIONS: tuple[str, ...] = tuple(contract.FUNCTION_ENVIRONMENT)  # processor, archiver, fetcher


@dataclass(frozen=True)
class Names:
    config: PipelineConfig
    account: str
    region: str

    @property
    def prefix(self) -> str:
        return f"{self.config.name}-{self.config.environment}"

    @property
    def partition(self) -> str:
        if self.region.startswith("cn-"):
            return "aws-cn"
        if self.region.startswith("us-gov-"):
            return "aws-us-gov"
        return "aws"

    def bucket(self, role: str) -> str:
        explicit = getattr(self.config.buckets, role)
        # S3 bucket names are global: the account id keeps the default unique.
        return explicit or f"{self.prefix}-{role}-{self.account}"

    def bucket_roles(self) -> dict[str, str]:
        return {role: self.bucket(role) for role in BUCKET_ROLES}

    def role_of_bucket(self, name: str) -> str | None:
        return next((role for role, bucket in self.bucket_roles().items() if bucket == name), None)

    @property
    def artifacts_bucket(self) -> str:
        """Where deploy stages a function zip past Lambda's 50 MB direct-upload quota."""
        return f"{self.prefix}-artifacts-{self.account}"

    def bucket_arn(self, role: str) -> str:
        return f"arn:{self.partition}:s3:::{self.bucket(role)}"

    @property
    def queue(self) -> str:
        return f"{self.prefix}-processing"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}-processing-dlq"

    @property
    def fetch_queue(self) -> str:
        return f"{self.prefix}-fetch"

    @property
    def fetch_dlq(self) -> str:
        return f"{self.prefix}-fetch-dlq"

    def queue_arn(self, name: str) -> str:
        return f"arn:{self.partition}:sqs:{self.region}:{self.account}:{name}"

    @property
    def results_table(self) -> str:
        return self.config.results_table or f"{self.prefix}-results"

    def table_arn(self, name: str) -> str:
        return f"arn:{self.partition}:dynamodb:{self.region}:{self.account}:table/{name}"

    def function(self, kind: str) -> str:
        return f"{self.prefix}-{kind}"

    def function_arn(self, kind: str) -> str:
        return (f"arn:{self.partition}:lambda:{self.region}:{self.account}:"
                f"function:{self.function(kind)}")

    def role(self, kind: str) -> str:
        return f"{self.prefix}-{kind}-role"

    def role_arn(self, kind: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{self.role(kind)}"

    def log_group(self, kind: str) -> str:
        return f"/aws/lambda/{self.function(kind)}"

    def log_group_arn(self, kind: str) -> str:
        return (f"arn:{self.partition}:logs:{self.region}:{self.account}:"
                f"log-group:{self.log_group(kind)}")

    @property
    def schedule_rule(self) -> str:
        return f"{self.prefix}-archiver-schedule"

    def rule_arn(self, name: str) -> str:
        return f"arn:{self.partition}:events:{self.region}:{self.account}:rule/{name}"

    @property
    def alarm_topic(self) -> str:
        return f"{self.prefix}-alarms"

    def topic_arn(self, name: str) -> str:
        return f"arn:{self.partition}:sns:{self.region}:{self.account}:{name}"

    def alarm(self, what: str) -> str:
        return f"{self.prefix}-{what}"

    def notification_id(self, suffix: str, source: str = "incoming") -> str:
        # pipectl owns the notification rules with these Ids and leaves every other
        # rule on the bucket alone.
        return f"{self.prefix}-{source}-{suffix.lstrip('.')}"

    def notification_prefixes(self) -> tuple[str, ...]:
        """Every Id notification_id can make starts with one of these."""
        return tuple(self.notification_id("", source) for source in ("incoming", "fetch"))


# The results table's schema is the handlers' (handlers/common/contract.py): pipectl reads
# the rows they write, by the same key, index and statuses.
Status = contract.Status
RESULTS_PARTITION_KEY: str = contract.RESULTS_PARTITION_KEY
row_key = contract.row_key
COUNTERS_KEY: str = contract.COUNTERS_KEY
ARCHIVER_KEY: str = contract.ARCHIVER_KEY
STATUS_INDEX: str = contract.STATUS_INDEX
STATUS_INDEX_KEYS: tuple[str, str] = contract.STATUS_INDEX_KEYS
RESULT_STATUSES: tuple[str, ...] = contract.RESULT_STATUSES
TALLIES: tuple[str, ...] = contract.TALLIES
# The processor's version: its environment variable (deploy/desired.py derives it), the row
# attributes naming the version that wrote a row and the one before, reprocess's marker.
PROCESSOR_VERSION_VARIABLE: str = contract.PROCESSOR_VERSION
VERSION_FIELD: str = contract.VERSION_FIELD
PREVIOUS_VERSION_FIELD: str = contract.PREVIOUS_VERSION_FIELD
REPROCESS_MARKER: str = contract.REPROCESS_MARKER
BATCH_RUN_ARGUMENT: str = contract.BATCH_RUN_ARGUMENT
BATCH_VERSION_ARGUMENT: str = contract.BATCH_VERSION_ARGUMENT
# The role S3 Batch Operations assumes for `reprocess --engine s3-batch` (Names.role's kind):
# reprocess makes it, not deploy, and destroy removes it.
REPROCESS_BATCH_ROLE = "reprocess-batch"
