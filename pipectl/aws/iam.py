"""IAM: the functions' execution roles and their inline policies."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from pipectl.aws.session import error_code, gone_is_done


def _document(value) -> dict:
    # boto3 decodes IAM's URL-encoded JSON into a dict; older stacks hand back a string.
    return json.loads(value) if isinstance(value, str) else value


def get_role(iam, name: str) -> dict | None:
    try:
        role = iam.get_role(RoleName=name)["Role"]
    except ClientError as exc:
        if error_code(exc) == "NoSuchEntity":
            return None
        raise
    role["AssumeRolePolicyDocument"] = _document(role["AssumeRolePolicyDocument"])
    return role


def inline_policies(iam, role: str) -> dict[str, dict]:
    names = [n for page in iam.get_paginator("list_role_policies").paginate(RoleName=role)
             for n in page["PolicyNames"]]
    return {n: _document(iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"])
            for n in names}


def create_role(iam, name: str, trust: dict, tags: dict[str, str]) -> str:
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust),
                           Tags=[{"Key": k, "Value": v} for k, v in tags.items()])["Role"]["Arn"]


def update_trust(iam, name: str, trust: dict) -> None:
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))


def put_inline_policy(iam, role: str, name: str, document: dict) -> None:
    iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))


def delete_role(iam, name: str) -> None:
    """Policies first: IAM refuses to delete a role that still has an inline policy or an
    attached managed one (someone may have attached one by hand)."""
    with gone_is_done("NoSuchEntity"):
        for policy in inline_policies(iam, name):
            iam.delete_role_policy(RoleName=name, PolicyName=policy)
        for arn in attached_policies(iam, name):
            iam.detach_role_policy(RoleName=name, PolicyArn=arn)
        iam.delete_role(RoleName=name)


def attached_policies(iam, role: str) -> list[str]:
    return [p["PolicyArn"] for page in iam.get_paginator("list_attached_role_policies")
            .paginate(RoleName=role) for p in page["AttachedPolicies"]]


def role_tags(iam, name: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for page in iam.get_paginator("list_role_tags")
            .paginate(RoleName=name) for t in page.get("Tags", [])}


def tag_role(iam, name: str, wanted: dict[str, str]) -> None:
    iam.tag_role(RoleName=name, Tags=[{"Key": k, "Value": v} for k, v in wanted.items()])
