"""Bucket configuration: creation, hardening, policy, lifecycle and event notifications.

Object-level work (listing, transfers) lives in s3.py. Every getter returns None
when the setting is absent, so the deploy engine can compare it with the desired one.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from pipectl.aws.session import error_code, gone_is_done
from pipectl.errors import AwsError

_ABSENT = {
    "NoSuchBucketPolicy", "NoSuchLifecycleConfiguration", "NoSuchPublicAccessBlockConfiguration",
    "ServerSideEncryptionConfigurationNotFoundError", "OwnershipControlsNotFoundError",
}


def _absent_as_none(call, **kwargs) -> Any:
    try:
        return call(**kwargs)
    except ClientError as exc:
        if error_code(exc) in _ABSENT:
            return None
        raise


def exists(s3, bucket: str) -> bool:
    """True if the bucket exists and is ours; an error naming it if it belongs to someone else."""
    try:
        s3.head_bucket(Bucket=bucket)
        return True
    except ClientError as exc:
        code = error_code(exc)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return False
        if code in ("403", "AccessDenied"):
            raise AwsError(f"bucket '{bucket}' exists but is not accessible with these "
                           "credentials (S3 bucket names are global; set buckets.<role> "
                           "in pipeline.yaml to another name)") from None
        raise


def create(s3, bucket: str, region: str) -> None:
    kwargs: dict[str, Any] = {"Bucket": bucket, "ObjectOwnership": "BucketOwnerEnforced"}
    # us-east-1 is the one region that rejects an explicit LocationConstraint.
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if error_code(exc) == "BucketAlreadyExists":
            raise AwsError(f"bucket name '{bucket}' is taken by another account; set "
                           "buckets.<role> in pipeline.yaml to another name") from None
        if error_code(exc) != "BucketAlreadyOwnedByYou":
            raise


def versioning(s3, bucket: str) -> str | None:
    return s3.get_bucket_versioning(Bucket=bucket).get("Status")


def put_versioning(s3, bucket: str, status: str) -> None:
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": status})


def encryption(s3, bucket: str) -> str | None:
    found = _absent_as_none(s3.get_bucket_encryption, Bucket=bucket)
    if not found:
        return None
    rules = found["ServerSideEncryptionConfiguration"].get("Rules", [])
    default = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
    return default.get("SSEAlgorithm")


def put_encryption(s3, bucket: str, algorithm: str) -> None:
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [
        {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algorithm},
         "BucketKeyEnabled": algorithm == "aws:kms"}]})


def public_access_blocked(s3, bucket: str) -> bool:
    found = _absent_as_none(s3.get_public_access_block, Bucket=bucket)
    if not found:
        return False
    return all(found["PublicAccessBlockConfiguration"].values())


def block_public_access(s3, bucket: str) -> None:
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True,
        "BlockPublicPolicy": True, "RestrictPublicBuckets": True})


def ownership(s3, bucket: str) -> str | None:
    found = _absent_as_none(s3.get_bucket_ownership_controls, Bucket=bucket)
    if not found:
        return None
    rules = found["OwnershipControls"].get("Rules", [])
    return rules[0]["ObjectOwnership"] if rules else None


def put_ownership(s3, bucket: str, value: str) -> None:
    s3.put_bucket_ownership_controls(Bucket=bucket,
                                     OwnershipControls={"Rules": [{"ObjectOwnership": value}]})


def policy(s3, bucket: str) -> dict | None:
    found = _absent_as_none(s3.get_bucket_policy, Bucket=bucket)
    return json.loads(found["Policy"]) if found else None


def put_policy(s3, bucket: str, document: dict) -> None:
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))


def delete_policy(s3, bucket: str) -> None:
    s3.delete_bucket_policy(Bucket=bucket)


def lifecycle_rules(s3, bucket: str) -> list[dict]:
    found = _absent_as_none(s3.get_bucket_lifecycle_configuration, Bucket=bucket)
    return found.get("Rules", []) if found else []


def lifecycle_rules_if_exists(s3, bucket: str) -> list[dict] | None:
    """The bucket's lifecycle rules ([] when it has none); None when there is no bucket."""
    try:
        return s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
    except ClientError as exc:
        code = error_code(exc)
        if code == "NoSuchBucket":
            return None
        if code != "NoSuchLifecycleConfiguration":
            raise
        return []


def put_lifecycle_rules(s3, bucket: str, rules: list[dict]) -> None:
    s3.put_bucket_lifecycle_configuration(Bucket=bucket,
                                          LifecycleConfiguration={"Rules": rules})


def notifications(s3, bucket: str) -> dict:
    found = s3.get_bucket_notification_configuration(Bucket=bucket)
    found.pop("ResponseMetadata", None)
    return found


def put_notifications(s3, bucket: str, configuration: dict) -> None:
    # S3 replaces the whole configuration on every put: callers merge first.
    s3.put_bucket_notification_configuration(Bucket=bucket,
                                             NotificationConfiguration=configuration)


def is_empty(s3, bucket: str) -> bool:
    """No object versions and no delete markers: what DeleteBucket requires."""
    found = s3.list_object_versions(Bucket=bucket, MaxKeys=1)
    return not found.get("Versions") and not found.get("DeleteMarkers")


def purge(s3, bucket: str) -> int:
    """Delete every version and delete marker (a versioned bucket keeps both); returns count."""
    deleted = 0
    with gone_is_done("NoSuchBucket"):
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            batch = [{"Key": v["Key"], "VersionId": v["VersionId"]}
                     for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
            for start in range(0, len(batch), 1000):  # DeleteObjects takes 1,000 keys a call
                response = s3.delete_objects(Bucket=bucket, Delete={
                    "Objects": batch[start:start + 1000], "Quiet": True})
                if response.get("Errors"):
                    error = response["Errors"][0]
                    raise AwsError(f"could not delete s3://{bucket}/{error['Key']}: "
                                   f"{error.get('Code')}: {error.get('Message')}")
                deleted += len(batch[start:start + 1000])
    return deleted


def remove_queue_rules(s3, bucket: str, rule_ids: set[str]) -> None:
    """Take these rules out of the bucket's notification configuration, keeping the rest."""
    with gone_is_done("NoSuchBucket"):
        configuration = notifications(s3, bucket)
        configuration["QueueConfigurations"] = [
            q for q in configuration.get("QueueConfigurations", [])
            if q.get("Id") not in rule_ids]
        put_notifications(s3, bucket, configuration)


def delete(s3, bucket: str) -> None:
    with gone_is_done("NoSuchBucket"):
        s3.delete_bucket(Bucket=bucket)


def tags(s3, bucket: str, *, absent: tuple[str, ...] = ("NoSuchTagSet",)) -> dict[str, str]:
    """The bucket's tags; none when S3 answers one of the `absent` error codes."""
    try:
        found = s3.get_bucket_tagging(Bucket=bucket)
    except ClientError as exc:
        if error_code(exc) in absent:
            return {}
        raise
    return {t["Key"]: t["Value"] for t in found.get("TagSet", [])}


def owned_tags(s3, bucket: str) -> dict[str, str]:
    """The tags that can show pipectl made a bucket: none when it has none, went away since
    it was listed, or its tags may not be read (someone else's policy)."""
    return tags(s3, bucket, absent=("NoSuchTagSet", "NoSuchBucket", "AccessDenied"))


def add_tags(s3, bucket: str, wanted: dict[str, str]) -> None:
    """Set these tags, keeping the bucket's others: PutBucketTagging replaces the whole set."""
    merged = {**tags(s3, bucket), **wanted}
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [
        {"Key": k, "Value": v} for k, v in merged.items()]})


def names_in_region(s3, region: str) -> list[str]:
    """Every bucket of the account in this region (ListBuckets' BucketRegion filter)."""
    return [b["Name"] for page in s3.get_paginator("list_buckets").paginate(BucketRegion=region)
            for b in page.get("Buckets", [])
            # An endpoint that ignores the filter still says where each bucket is.
            if b.get("BucketRegion", region) == region]
