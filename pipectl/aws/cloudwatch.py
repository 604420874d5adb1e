"""CloudWatch alarms."""

from __future__ import annotations

from pipectl.aws.session import gone_is_done


def alarms(cw, names: list[str]) -> dict[str, dict]:
    found = {}
    for start in range(0, len(names), 100):  # DescribeAlarms takes up to 100 names
        for page in cw.get_paginator("describe_alarms").paginate(
                AlarmNames=names[start:start + 100], AlarmTypes=["MetricAlarm"]):
            found.update({a["AlarmName"]: a for a in page["MetricAlarms"]})
    return found


def put_alarm(cw, **kwargs) -> None:
    cw.put_metric_alarm(**kwargs)


def delete_alarms(cw, names: list[str]) -> None:
    for start in range(0, len(names), 100):
        with gone_is_done("ResourceNotFound"):
            cw.delete_alarms(AlarmNames=names[start:start + 100])


def tags(cw, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in cw.list_tags_for_resource(
        ResourceARN=arn).get("Tags", [])}


def tag(cw, arn: str, wanted: dict[str, str]) -> None:
    # PutMetricAlarm ignores Tags when it updates an alarm: TagResource is how tags change.
    cw.tag_resource(ResourceARN=arn, Tags=[{"Key": k, "Value": v} for k, v in wanted.items()])
