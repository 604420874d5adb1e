"""CloudWatch Logs: the log groups the local runtime writes to, as Lambda would."""

from __future__ import annotations

from botocore.exceptions import ClientError

from pipectl.aws.session import error_code, gone_is_done


def ensure_stream(logs, group: str, stream: str) -> None:
    for call, kwargs in ((logs.create_log_group, {"logGroupName": group}),
                         (logs.create_log_stream, {"logGroupName": group,
                                                   "logStreamName": stream})):
        try:
            call(**kwargs)
        except ClientError as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise


def put_events(logs, group: str, stream: str, events: list[tuple[int, str]]) -> None:
    """events: (timestamp ms, message), in order. PutLogEvents takes up to 10,000 per call."""
    for start in range(0, len(events), 10_000):
        chunk = events[start:start + 10_000]
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
            {"timestamp": ts, "message": message} for ts, message in chunk])


def filter_events(logs, group: str, *, start_ms: int, pattern: str | None = None,
                  end_ms: int | None = None) -> list[dict] | None:
    """Every event in the group from start_ms on (all pages); None when the group is missing.

    FilterLogEvents may return an empty page with a nextToken while it searches, so
    pages are followed until there is no token.
    """
    kwargs: dict = {"logGroupName": group, "startTime": start_ms}
    if pattern:
        kwargs["filterPattern"] = pattern
    if end_ms is not None:
        kwargs["endTime"] = end_ms
    events: list[dict] = []
    try:
        while True:
            page = logs.filter_log_events(**kwargs)
            events += page.get("events", [])
            token = page.get("nextToken")
            if not token or token == kwargs.get("nextToken"):
                return events
            kwargs["nextToken"] = token
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def log_group(logs, name: str) -> dict | None:
    for page in logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=name):
        for group in page["logGroups"]:
            if group["logGroupName"] == name:
                return group
    return None


def create_group(logs, name: str, tags: dict[str, str] | None = None) -> None:
    try:
        logs.create_log_group(logGroupName=name, **({"tags": tags} if tags else {}))
    except ClientError as exc:
        if error_code(exc) != "ResourceAlreadyExistsException":
            raise


def set_retention(logs, name: str, days: int) -> None:
    logs.put_retention_policy(logGroupName=name, retentionInDays=days)


def delete_group(logs, name: str) -> None:
    with gone_is_done("ResourceNotFoundException"):
        logs.delete_log_group(logGroupName=name)


def group_arn(group: dict) -> str:
    """The ARN TagResource takes: DescribeLogGroups' `arn` ends in `:*`, `logGroupArn`
    (newer) does not."""
    return group.get("logGroupArn") or group["arn"].removesuffix(":*")


def tags(logs, arn: str) -> dict[str, str]:
    return logs.list_tags_for_resource(resourceArn=arn).get("tags", {})


def tag(logs, arn: str, wanted: dict[str, str]) -> None:
    logs.tag_resource(resourceArn=arn, tags=wanted)
