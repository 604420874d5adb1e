"""Lambda: functions, their code and configuration, event source mappings, permissions."""

from __future__ import annotations

import json
import time
from typing import Any

from botocore.exceptions import ClientError

from pipectl.aws.session import Aws, error_code, gone_is_done
from pipectl.errors import AwsError

# IAM is eventually consistent: a role created seconds ago may not be assumable by
# Lambda yet. Back off instead of sleeping a fixed time.
ROLE_PROPAGATION_SECONDS = 90
# Creating a function, updating it or changing a mapping takes seconds, more with a VPC.
SETTLE_DELAY = 2.0
SETTLE_ATTEMPTS = 150
# Event source mapping states on their way to another (Lambda API reference,
# EventSourceMappingConfiguration.State); Enabled, Disabled and Deleting are where they end.
MAPPING_CHANGING = ("Creating", "Enabling", "Disabling", "Updating")


def get_function(lam, name: str) -> dict | None:
    """The function's configuration; None when it does not exist."""
    found = get_function_tagged(lam, name)
    return found[0] if found else None


def get_function_tagged(lam, name: str) -> tuple[dict, dict[str, str]] | None:
    """(configuration, tags) in one GetFunction call; None when it does not exist."""
    try:
        found = lam.get_function(FunctionName=name)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    return found["Configuration"], found.get("Tags", {})


def tag_function(lam, name: str, tags: dict[str, str]) -> None:
    # TagResource takes the ARN, not the name.
    arn = lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    lam.tag_resource(Resource=arn, Tags=tags)


def tags(lam, arn: str) -> dict[str, str]:
    return lam.list_tags(Resource=arn).get("Tags", {})


def tag(lam, arn: str, wanted: dict[str, str]) -> None:
    lam.tag_resource(Resource=arn, Tags=wanted)


def mapping_arn(mapping: dict) -> str:
    """An event source mapping's ARN (the tagging APIs take it); Lambda has returned it
    since mappings took tags, and it is built from the UUID where an endpoint leaves it out."""
    if mapping.get("EventSourceMappingArn"):
        return mapping["EventSourceMappingArn"]
    region, account = mapping["FunctionArn"].split(":")[3:5]
    partition = mapping["FunctionArn"].split(":")[1]
    return f"arn:{partition}:lambda:{region}:{account}:event-source-mapping:{mapping['UUID']}"


def create_function(lam, **kwargs) -> dict:
    deadline = time.monotonic() + ROLE_PROPAGATION_SECONDS
    delay = 1.0
    while True:
        try:
            created = lam.create_function(**kwargs)
            break
        except ClientError as exc:
            message = exc.response.get("Error", {}).get("Message", "")
            retryable = error_code(exc) == "InvalidParameterValueException" and (
                "cannot be assumed" in message or "role" in message.lower())
            if not retryable or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 10)
    require_ready(lam, kwargs["FunctionName"])
    return created


def update_code(lam, name: str, code: dict, architecture: str) -> None:
    """code: {"ZipFile": bytes} or {"S3Bucket": ..., "S3Key": ...}, as Code= in CreateFunction."""
    settle(lam, name)
    lam.update_function_code(FunctionName=name, Architectures=[architecture], **code)
    require_ready(lam, name)


def update_configuration(lam, name: str, **kwargs) -> None:
    # Lambda rejects a second update while the first is still in progress.
    settle(lam, name)
    lam.update_function_configuration(FunctionName=name, **kwargs)
    require_ready(lam, name)


def settle(lam, name: str, *, sleep=time.sleep) -> dict:
    """The function's configuration once it is neither being created (State=Pending) nor
    updated (LastUpdateStatus=InProgress); Lambda refuses changes until then."""
    for _ in range(SETTLE_ATTEMPTS):
        found = lam.get_function_configuration(FunctionName=name)
        if found.get("State") != "Pending" and found.get("LastUpdateStatus") != "InProgress":
            return found
        sleep(SETTLE_DELAY)
    raise AwsError(f"function '{name}' is still {found.get('State')} "
                   f"(last update {found.get('LastUpdateStatus')}) after "
                   f"{SETTLE_ATTEMPTS * SETTLE_DELAY:.0f} s")


def require_ready(lam, name: str, *, sleep=time.sleep) -> None:
    """Wait for a create or update to finish; an error with Lambda's reason if it failed."""
    why = failure(settle(lam, name, sleep=sleep))
    if why:
        raise AwsError(f"function '{name}' cannot run: {why}")


# FunctionConfiguration's two statuses: (field, its reason, its reason code, as said, the
# value of a function that can run). docs.aws.amazon.com/lambda/latest/dg/functions-states.html
_STATUSES = (("State", "StateReason", "StateReasonCode", "State", "Active"),
             ("LastUpdateStatus", "LastUpdateStatusReason", "LastUpdateStatusReasonCode",
              "last update", "Successful"))


def failure(configuration: dict) -> str:
    """Why Lambda cannot run the function ('' when it can): State=Failed (the create
    failed) or LastUpdateStatus=Failed, with the reason and reason code Lambda gives."""
    for field, *said in _STATUSES:
        if configuration.get(field) == "Failed":
            return _said(configuration, field, *said)
    return ""


def condition(configuration: dict) -> str:
    """Each of State and LastUpdateStatus that is not Active / Successful, with Lambda's
    reason ('' when both are): Pending or InProgress while Lambda works on it, Inactive
    once idle (the next invoke wakes it), Failed when it cannot run. An endpoint that
    leaves a status out says nothing about it."""
    return "; ".join(_said(configuration, field, *said) for field, *said in _STATUSES
                     if configuration.get(field) not in (None, said[-1]))


def _said(configuration: dict, field: str, reason: str, code: str, what: str, _: str) -> str:
    text = f"{what} {configuration[field]}: {configuration.get(reason) or 'no reason given'}"
    return f"{text} ({configuration[code]})" if configuration.get(code) else text


def delete_function(lam, name: str) -> None:
    with gone_is_done("ResourceNotFoundException"):
        lam.delete_function(FunctionName=name)


def mappings(lam, function: str, source_arn: str | None = None, *,
             sleep=time.sleep) -> list[dict]:
    """The function's event source mappings once none is changing state, Deleting ones left
    out: Lambda says a deleted mapping "enters a Deleting state and might not be completely
    deleted for several seconds", so it is as good as gone."""
    for _ in range(SETTLE_ATTEMPTS):
        found = _list_mappings(lam, function, source_arn)
        changing = [m for m in found if m.get("State") in MAPPING_CHANGING]
        if not changing:
            return [m for m in found if m.get("State") != "Deleting"]
        sleep(SETTLE_DELAY)
    raise AwsError(f"event source mapping {changing[0]['UUID']} of '{function}' is still "
                   f"{changing[0]['State']} after {SETTLE_ATTEMPTS * SETTLE_DELAY:.0f} s")


def _list_mappings(lam, function: str, source_arn: str | None) -> list[dict]:
    kwargs = {"FunctionName": function}
    if source_arn:
        kwargs["EventSourceArn"] = source_arn
    try:
        return [m for page in lam.get_paginator("list_event_source_mappings").paginate(**kwargs)
                for m in page["EventSourceMappings"]]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return []
        raise


def create_mapping(lam, *, sleep=time.sleep, **kwargs) -> str:
    # A mapping still Deleting holds its function and queue: Lambda refuses a new one for
    # the same pair (ResourceConflictException) until the old one is gone.
    for _ in range(SETTLE_ATTEMPTS):
        found = _list_mappings(lam, kwargs["FunctionName"], kwargs["EventSourceArn"])
        if not any(m.get("State") == "Deleting" for m in found):
            break
        sleep(SETTLE_DELAY)
    return lam.create_event_source_mapping(**kwargs)["UUID"]


def update_mapping(lam, uuid: str, **kwargs) -> None:
    lam.update_event_source_mapping(UUID=uuid, **kwargs)


def delete_mapping(lam, uuid: str) -> None:
    with gone_is_done("ResourceNotFoundException"):
        lam.delete_event_source_mapping(UUID=uuid)


def policy_statements(lam, function: str) -> list[dict]:
    try:
        return json.loads(lam.get_policy(FunctionName=function)["Policy"]).get("Statement", [])
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return []
        raise


def allow_invoke(lam, function: str, statement_id: str, principal: str, source_arn: str) -> None:
    try:
        lam.remove_permission(FunctionName=function, StatementId=statement_id)
    except ClientError as exc:
        if error_code(exc) != "ResourceNotFoundException":
            raise
    lam.add_permission(FunctionName=function, StatementId=statement_id,
                       Action="lambda:InvokeFunction", Principal=principal, SourceArn=source_arn)


def invoke(lam, function: str, payload: dict) -> Any:
    response = lam.invoke(FunctionName=function, InvocationType="RequestResponse",
                          Payload=json.dumps(payload).encode())
    body = response["Payload"].read()
    result = json.loads(body) if body else None
    if response.get("FunctionError"):
        message = result.get("errorMessage") if isinstance(result, dict) else body[:200]
        raise AwsError(f"{function} failed: {message}")
    return result


def invoke_client(aws: Aws, *, read_timeout: int) -> Any:
    """A Lambda client for one RequestResponse Invoke that waits for a whole run: its read
    timeout must outlast the function's, and a retried Invoke would start a second run."""
    return aws.client_with("lambda", endpoint_url=aws.endpoint_url, read_timeout=read_timeout,
                           retries={"max_attempts": 1})


def invoke_if_exists(lam, function: str, payload: bytes) -> tuple[bytes, str | None] | None:
    """A RequestResponse Invoke: (the payload the function returned, its FunctionError or
    None); None when there is no such function."""
    try:
        response = lam.invoke(FunctionName=function, InvocationType="RequestResponse",
                              Payload=payload)
        return response["Payload"].read(), response.get("FunctionError")
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
