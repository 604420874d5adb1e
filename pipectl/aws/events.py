"""EventBridge: the archiver's schedule rule and its target."""

from __future__ import annotations

from botocore.exceptions import ClientError

from pipectl.aws.session import error_code, gone_is_done


def get_rule(events, name: str) -> dict | None:
    try:
        return events.describe_rule(Name=name)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def targets(events, rule: str) -> list[dict]:
    return events.list_targets_by_rule(Rule=rule).get("Targets", [])


def put_schedule(events, name: str, expression: str, enabled: bool, description: str) -> str:
    return events.put_rule(Name=name, ScheduleExpression=expression, Description=description,
                           State="ENABLED" if enabled else "DISABLED")["RuleArn"]


def put_target(events, rule: str, target_id: str, arn: str) -> None:
    response = events.put_targets(Rule=rule, Targets=[{"Id": target_id, "Arn": arn}])
    if response.get("FailedEntryCount"):
        entry = response["FailedEntries"][0]
        raise ClientError({"Error": {"Code": entry.get("ErrorCode", "PutTargetsFailed"),
                                     "Message": entry.get("ErrorMessage", "")}}, "PutTargets")


def delete_rule(events, name: str) -> None:
    """Targets first: EventBridge refuses to delete a rule that still has any."""
    with gone_is_done("ResourceNotFoundException"):
        ids = [t["Id"] for t in targets(events, name)]
        if ids:
            events.remove_targets(Rule=name, Ids=ids)
        events.delete_rule(Name=name)


def tags(events, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in events.list_tags_for_resource(
        ResourceARN=arn).get("Tags", [])}


def tag(events, arn: str, wanted: dict[str, str]) -> None:
    # PutRule ignores Tags when it updates a rule: TagResource is how tags change.
    events.tag_resource(ResourceARN=arn, Tags=[{"Key": k, "Value": v}
                                               for k, v in wanted.items()])
