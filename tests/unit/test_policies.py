"""The SQS permissions each role gets: what its handler and its mapping use, on its own queue."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipectl import config as config_module
from pipectl.deploy.policies import ROLE_POLICIES
from pipectl.naming import Names
from tests.helpers import ACCOUNT

ROOT = Path(__file__).resolve().parents[2]


def _sqs_grants(document: dict) -> dict[str, set[str]]:
    grants: dict[str, set[str]] = {}
    for s in document["Statement"]:
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        resources = [s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"]
        for action in actions:
            if action.startswith("sqs:"):
                grants.setdefault(action, set()).update(resources)
    return grants


@pytest.mark.parametrize("kind, queue", [("processor", "queue"), ("fetcher", "fetch_queue")])
def test_a_consumer_may_change_the_visibility_of_its_own_queues_messages_only(kind, queue):
    # The handler returns a busy duplicate to the queue early with ChangeMessageVisibility
    # (handlers/common/invocation.py); moto evaluates no IAM, so only this catches a missing grant.
    cfg = config_module.load(ROOT / "pipeline.yaml")
    names = Names(cfg, ACCOUNT, "us-east-1")
    own = names.queue_arn(getattr(names, queue))

    grants = _sqs_grants(ROLE_POLICIES[kind](cfg, names))

    assert grants == {action: {own} for action in (
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes")}


def test_the_archiver_gets_no_queue_permission():
    cfg = config_module.load(ROOT / "pipeline.yaml")
    assert _sqs_grants(ROLE_POLICIES["archiver"](cfg, Names(cfg, ACCOUNT,
                                                            "us-east-1"))) == {}
