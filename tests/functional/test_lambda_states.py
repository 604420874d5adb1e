"""Lambda's function and mapping states as AWS documents them, and what deploy does with each.

Stubbed responses follow the Lambda API reference (GetFunctionConfiguration: State,
StateReason, StateReasonCode, LastUpdateStatus; EventSourceMappingConfiguration.State:
Creating | Enabling | Enabled | Disabling | Disabled | Updating | Deleting), and botocore's
Stubber checks each against Lambda's service model.
docs.aws.amazon.com/lambda/latest/api/API_GetFunctionConfiguration.html
docs.aws.amazon.com/lambda/latest/api/API_EventSourceMappingConfiguration.html
"""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import given, settings
from hypothesis import strategies as st

from pipectl.aws import awslambda
from pipectl.deploy import engine
from pipectl.errors import AwsError
from tests.helpers import ACCOUNT

ARN = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:pipectl-demo-dev-processor"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:pipectl-demo-dev-processing"
CHANGING = list(awslambda.MAPPING_CHANGING)
SETTLED = ["Enabled", "Disabled"]


@pytest.fixture
def lam():
    client = boto3.client("lambda", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def configuration(state: str, update: str = "Successful", **extra) -> dict:
    return {"FunctionName": "pipectl-demo-dev-processor", "FunctionArn": ARN,
            "State": state, "LastUpdateStatus": update, **extra}


def mapping(state: str, uuid: str = "6d9a2c3e-0000-4000-8000-000000000001") -> dict:
    return {"UUID": uuid, "BatchSize": 10, "EventSourceArn": QUEUE, "FunctionArn": ARN,
            "State": state, "StateTransitionReason": "USER_INITIATED"}


def test_a_failed_create_says_lambdas_reason(lam):
    # given a function that goes Pending -> Failed
    client, stub = lam
    stub.add_response("get_function_configuration", configuration(
        "Pending", StateReason="The function is being created.", StateReasonCode="Creating"))
    stub.add_response("get_function_configuration", configuration(
        "Failed", StateReason="The role defined for the function cannot be assumed by Lambda.",
        StateReasonCode="InsufficientRolePermissions"))
    naps = []
    # when deploy waits for it, then the error is one line with the reason and its code
    with pytest.raises(AwsError) as error:
        awslambda.require_ready(client, "pipectl-demo-dev-processor", sleep=naps.append)
    assert naps == [awslambda.SETTLE_DELAY]
    assert str(error.value) == (
        "function 'pipectl-demo-dev-processor' cannot run: State Failed: The role defined "
        "for the function cannot be assumed by Lambda. (InsufficientRolePermissions)")


def test_a_failed_update_says_its_reason_too():
    assert awslambda.failure(configuration(
        "Active", "Failed", LastUpdateStatusReason="Code too large",
        LastUpdateStatusReasonCode="InvalidConfiguration")) == (
        "last update Failed: Code too large (InvalidConfiguration)")
    assert awslambda.failure(configuration("Active")) == ""
    assert awslambda.failure(configuration("Inactive")) == ""  # idle functions are fine


def test_a_failed_function_is_planned_as_an_update_and_redeployed(aws, cfg, names,
                                                                  monkeypatch):
    # given a deployed pipeline whose processor Lambda reports State=Failed
    engine.apply(aws, engine.build_plan(aws, cfg))
    client = aws.client("lambda")
    real_get = client.get_function
    processor = names.function("processor")

    def failed(**kwargs):
        found = real_get(**kwargs)
        if kwargs["FunctionName"] == processor:
            found["Configuration"].update(State="Failed", StateReasonCode="InternalError",
                                          StateReason="Error while creating lambda")
        return found

    monkeypatch.setattr(client, "get_function", failed)
    uploads = []
    real_update = client.update_function_code
    monkeypatch.setattr(client, "update_function_code",
                        lambda **kw: uploads.append(kw["FunctionName"]) or real_update(**kw))

    # when planning the next deploy
    plan = engine.build_plan(aws, cfg)

    # then only that function is an update, for its failure, and apply uploads its code
    changed = [(s.kind, s.name, [c.field for c in s.changes]) for s in plan.steps
               if s.action != "noop"]
    assert changed == [("function", processor, ["failure"])]
    assert plan.steps[[s.name for s in plan.steps].index(processor)].changes[0].before == (
        "State Failed: Error while creating lambda (InternalError)")
    engine.apply(aws, plan)
    assert uploads == [processor]


def test_a_deleting_mapping_counts_as_absent(lam):
    client, stub = lam
    stub.add_response("list_event_source_mappings",
                      {"EventSourceMappings": [mapping("Deleting")]},
                      {"FunctionName": "f", "EventSourceArn": QUEUE})
    assert awslambda.mappings(client, "f", QUEUE, sleep=pytest.fail) == []


@settings(max_examples=30, deadline=None)
@given(path=st.lists(st.sampled_from(CHANGING), max_size=4), end=st.sampled_from(
    SETTLED + ["Deleting"]))
def test_mappings_wait_out_every_changing_state(path, end):
    # given a mapping passing through any changing states before it settles
    client = boto3.client("lambda", region_name="us-east-1")
    naps = []
    with Stubber(client) as stub:
        for state in [*path, end]:
            stub.add_response("list_event_source_mappings",
                              {"EventSourceMappings": [mapping(state)]},
                              {"FunctionName": "f", "EventSourceArn": QUEUE})
        # when observing it
        found = awslambda.mappings(client, "f", QUEUE, sleep=naps.append)
        stub.assert_no_pending_responses()
    # then it waited once per changing listing and reports the end state (Deleting: none)
    assert len(naps) == len(path)
    assert [m["State"] for m in found] == ([] if end == "Deleting" else [end])


def test_a_mapping_that_never_settles_is_an_error_not_a_hang(lam, monkeypatch):
    client, stub = lam
    monkeypatch.setattr(awslambda, "SETTLE_ATTEMPTS", 3)
    for _ in range(3):
        stub.add_response("list_event_source_mappings",
                          {"EventSourceMappings": [mapping("Updating")]},
                          {"FunctionName": "f", "EventSourceArn": QUEUE})
    with pytest.raises(AwsError, match="of 'f' is still Updating after 6 s"):
        awslambda.mappings(client, "f", QUEUE, sleep=lambda s: None)


def test_create_waits_until_a_deleting_mapping_for_the_same_queue_is_gone(lam):
    # given the previous mapping still Deleting (destroy, then deploy at once)
    client, stub = lam
    wanted = {"FunctionName": "f", "EventSourceArn": QUEUE}
    stub.add_response("list_event_source_mappings",
                      {"EventSourceMappings": [mapping("Deleting")]}, wanted)
    stub.add_response("list_event_source_mappings", {"EventSourceMappings": []}, wanted)
    stub.add_response("create_event_source_mapping",
                      mapping("Creating", uuid="6d9a2c3e-0000-4000-8000-000000000002"),
                      {**wanted, "BatchSize": 10})
    naps = []
    # when creating the new one, then it is created after the old one is gone
    uuid = awslambda.create_mapping(client, FunctionName="f", EventSourceArn=QUEUE,
                                    BatchSize=10, sleep=naps.append)
    assert uuid.endswith("0002") and len(naps) == 1
