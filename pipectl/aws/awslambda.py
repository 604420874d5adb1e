"""Lambda: functions, their code and configuration, event source mappings, permissions."""

from __future__ import annotations

import json
import time

from botocore.exceptions import ClientError

from pipectl.aws.session import error_code
from pipectl.errors import AwsError

# IAM is eventually consistent: a role created seconds ago may not be assumable by
# Lambda yet. Back off instead of sleeping a fixed time.
ROLE_PROPAGATION_SECONDS = 90


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
    wait_updated(lam, kwargs["FunctionName"], "function_active_v2")
    return created


def update_code(lam, name: str, zip_bytes: bytes, architecture: str) -> None:
    wait_updated(lam, name)
    lam.update_function_code(FunctionName=name, ZipFile=zip_bytes, Architectures=[architecture])
    wait_updated(lam, name)


def update_configuration(lam, name: str, **kwargs) -> None:
    # Lambda rejects a second update while the first is still in progress.
    wait_updated(lam, name)
    lam.update_function_configuration(FunctionName=name, **kwargs)
    wait_updated(lam, name)


def wait_updated(lam, name: str, waiter: str = "function_updated_v2") -> None:
    lam.get_waiter(waiter).wait(FunctionName=name, WaiterConfig={"Delay": 2, "MaxAttempts": 150})


def delete_function(lam, name: str) -> None:
    lam.delete_function(FunctionName=name)


def mappings(lam, function: str, source_arn: str | None = None) -> list[dict]:
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


def create_mapping(lam, **kwargs) -> str:
    return lam.create_event_source_mapping(**kwargs)["UUID"]


def update_mapping(lam, uuid: str, **kwargs) -> None:
    lam.update_event_source_mapping(UUID=uuid, **kwargs)


def delete_mapping(lam, uuid: str) -> None:
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


def invoke(lam, function: str, payload: dict) -> dict:
    response = lam.invoke(FunctionName=function, InvocationType="RequestResponse",
                          Payload=json.dumps(payload).encode())
    body = response["Payload"].read()
    result = json.loads(body) if body else None
    if response.get("FunctionError"):
        message = result.get("errorMessage") if isinstance(result, dict) else body[:200]
        raise AwsError(f"{function} failed: {message}")
    return result
