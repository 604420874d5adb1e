"""SNS: the alarm topic and its email subscription."""

from __future__ import annotations

from botocore.exceptions import ClientError

from pipectl.aws.session import error_code, gone_is_done


def topic_exists(sns, arn: str) -> bool:
    try:
        sns.get_topic_attributes(TopicArn=arn)
        return True
    except ClientError as exc:
        if error_code(exc) in ("NotFound", "NotFoundException"):
            return False
        raise


def email_subscriptions(sns, arn: str) -> list[str]:
    return [s["Endpoint"] for page in sns.get_paginator("list_subscriptions_by_topic").paginate(
        TopicArn=arn) for s in page["Subscriptions"] if s["Protocol"] == "email"]


def create_topic(sns, name: str) -> str:
    return sns.create_topic(Name=name)["TopicArn"]  # idempotent for the same name


def subscribe_email(sns, arn: str, email: str) -> None:
    # The address receives a confirmation mail; alarms reach it once confirmed.
    sns.subscribe(TopicArn=arn, Protocol="email", Endpoint=email)


def delete_topic(sns, arn: str) -> None:
    with gone_is_done("NotFound"):
        sns.delete_topic(TopicArn=arn)


def tags(sns, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in sns.list_tags_for_resource(
        ResourceArn=arn).get("Tags", [])}


def tag(sns, arn: str, wanted: dict[str, str]) -> None:
    sns.tag_resource(ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in wanted.items()])


def topic_arns(sns) -> list[str]:
    return [t["TopicArn"] for page in sns.get_paginator("list_topics").paginate()
            for t in page.get("Topics", [])]
