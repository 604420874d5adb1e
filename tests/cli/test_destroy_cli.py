"""pipectl destroy at the command line (mock_aws): what the plan lists, and what goes."""

from __future__ import annotations

import json

import boto3
import pytest

from pipectl.aws.session import Aws
from pipectl.ops import reprocess_batch

BATCH_REASON = "made by `pipectl reprocess --engine s3-batch`"


@pytest.fixture
def batch_role(deployed) -> str:
    """The role `reprocess --engine s3-batch` makes, made by the same code."""
    reprocess_batch.ensure_role(Aws.for_target(deployed.config.target("aws")), deployed)
    return deployed.role("reprocess-batch")


def test_dry_run_lists_the_reprocess_batch_role_and_destroy_removes_it(batch_role, pipectl):
    # when planning the destroy, as text and as JSON
    code, out, _ = pipectl("destroy", "--dry-run")
    _, data, _ = pipectl("-o", "json", "destroy", "--dry-run")

    # then both list the role as a delete, saying what made it
    assert code == 0
    assert [line.split() for line in out.splitlines() if batch_role in line] == [
        ["-", "role", batch_role, *BATCH_REASON.split()]]
    assert {"action": "delete", "kind": "role", "name": batch_role, "reason": BATCH_REASON,
            "changes": []} in json.loads(data)["steps"]

    # when destroying, then it is reported as deleted like the rest, and gone
    code, _, err = pipectl("destroy", "--yes")
    assert code == 0, err
    assert f"delete role {batch_role}" in err.splitlines()
    iam = boto3.client("iam", region_name="us-east-1")
    assert batch_role not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
