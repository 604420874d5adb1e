"""S3 Batch Operations (S3 Control): creating a job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from pipectl.aws.session import error_code


def create_job(control: Any, request: dict, *, attempts: int, wait: float,
               sleep: Callable[[float], None]) -> str:
    """CreateJob; returns the job id. A role created seconds ago may not be assumable yet
    (IAM is eventually consistent): a refusal naming the role is asked again, `attempts`
    times in all, `wait` seconds apart."""
    for attempt in range(attempts):
        try:
            return control.create_job(**request)["JobId"]
        except ClientError as exc:
            new_role = "role" in str(exc).lower() and error_code(exc) in (
                "InvalidRequest", "AccessDenied", "AccessDeniedException")
            if not new_role or attempt == attempts - 1:
                raise
            sleep(wait)
    raise ValueError("attempts must be at least 1")
