"""A Parquet pipeline's processor zip (pyarrow inside, past Lambda's 50 MB direct upload) on
LocalStack's S3 and Lambda: staged in the hardened artifacts bucket, created and then updated
from S3Bucket/S3Key, and what Lambda reports is the zip's (tests/functional/test_staged_code.py
on moto). The real packager builds the real zip: no quota is lowered."""

from __future__ import annotations

import base64
import hashlib
import urllib.parse
import urllib.request

import pytest
from botocore.exceptions import ClientError

from pipectl.deploy.engine import PLAIN_HTTP_NOTE
from pipectl.deploy.package import DIRECT_UPLOAD_BYTES

OWNER = {"managed-by": "pipectl", "pipectl:pipeline": "pipectl-demo"}
CODE_TAG = "pipectl:code-sha256"


def keys(s3, bucket: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def sha256(body: bytes) -> str:
    """As Lambda reports CodeSha256."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode()


def staged_key(function: str, body: bytes) -> str:
    return f"{function}/{sha256(body).replace('/', '_').replace('+', '-')}.zip"


def code_at(location: str, endpoint: str) -> bytes:
    """The zip behind GetFunction's Code.Location. LocalStack names its own host there
    (localhost.localstack.cloud), which resolves only with network access: ask the
    endpoint for the same URL, with the Host header that URL names."""
    url = urllib.parse.urlsplit(location)
    request = urllib.request.Request(f"{endpoint}{url.path}?{url.query}",
                                     headers={"Host": url.netloc})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def deployed_code(lam, name: str, endpoint: str) -> tuple[dict, bytes]:
    found = lam.get_function(FunctionName=name)
    return found, code_at(found["Code"]["Location"], endpoint)


def test_a_zip_past_the_direct_upload_quota_is_created_and_updated_from_the_artifacts_bucket(
        pipectl, pipeline, client, names, environment, localstack):
    # given the repository's pipeline, asking for Parquet output
    config = pipeline / "pipeline.yaml"
    config.write_text(config.read_text() + "\noutput:\n  format: parquet\n")
    s3, lam = client("s3"), client("lambda")
    bucket = f"pipectl-demo-{environment}-artifacts-{names['account']}"
    processor = names["processor"]

    # when it is deployed
    created = pipectl("--output", "json", "deploy", "--yes", timeout=300)

    # then the processor's zip (and no other) is past the quota and staged by its hash
    assert created.code == 0, created.err
    [key] = keys(s3, bucket)
    first = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert len(first) > DIRECT_UPLOAD_BYTES
    assert key == staged_key(processor, first)
    # and LocalStack's Lambda holds that zip, under the zip's own CodeSha256 (its
    # CreateFunction refuses a ZipFile past the quota, as AWS's does: this came from S3)
    function, code = deployed_code(lam, processor, localstack)
    configuration = function["Configuration"]
    assert (configuration["CodeSha256"], configuration["CodeSize"]) == (sha256(first),
                                                                        len(first))
    assert code == first
    assert (configuration["State"], configuration["LastUpdateStatus"]) == ("Active",
                                                                           "Successful")
    # and the artifacts bucket is hardened like the others
    assert all(s3.get_public_access_block(Bucket=bucket)[
        "PublicAccessBlockConfiguration"].values())
    [rule] = s3.get_bucket_encryption(Bucket=bucket)[
        "ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_ownership_controls(Bucket=bucket)["OwnershipControls"]["Rules"] == [
        {"ObjectOwnership": "BucketOwnerEnforced"}]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rules = {r["ID"]: r for r in s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert sorted(rules) == ["pipectl-noncurrent-expiry", "pipectl-staged-code-expiry"]
    expiry, staged = rules["pipectl-noncurrent-expiry"], rules["pipectl-staged-code-expiry"]
    assert (expiry["Status"], expiry["NoncurrentVersionExpiration"]) == (
        "Enabled", {"NoncurrentDays": 30})
    assert (staged["Status"], staged["Expiration"]) == ("Enabled", {"Days": 7})
    tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=bucket)["TagSet"]}
    assert tags == {**OWNER, "pipectl:environment": environment}
    # (the TLS-only policy is the one setting held back, and the plan says why: LocalStack
    # is plain HTTP here, which that policy would deny; on AWS it is always applied)
    assert PLAIN_HTTP_NOTE in created.json()["notes"]
    with pytest.raises(ClientError, match="NoSuchBucketPolicy"):
        s3.get_bucket_policy(Bucket=bucket)

    # when a module only the processor imports changes
    writer = pipeline / "handlers" / "processing" / "parquet_writer.py"
    writer.write_text(writer.read_text() + "\n# a change only the processor's zip carries\n")
    updated = pipectl("--output", "json", "deploy", "--yes", timeout=300)

    # then the plan saw LocalStack's CodeSha256 as the first zip's, and changed the code
    # alone (and the processor's version, which is its source's)
    assert updated.code == 0, updated.err
    changed = {(s["kind"], s["name"]): {c["field"]: c["before"] for c in s["changes"]}
               for s in updated.json()["steps"] if s["action"] != "noop"}
    assert list(changed) == [("function", processor)]
    assert set(changed["function", processor]) == {"code_sha256", "source_sha256",
                                                   "environment.PROCESSOR_VERSION"}
    assert changed["function", processor]["code_sha256"] == sha256(first)
    # and UpdateFunctionCode read the new zip from the bucket, beside the first one
    [second_key] = set(keys(s3, bucket)) - {key}
    second = s3.get_object(Bucket=bucket, Key=second_key)["Body"].read()
    assert second_key == staged_key(processor, second)
    function, code = deployed_code(lam, processor, localstack)
    assert function["Configuration"]["CodeSha256"] == sha256(second)
    assert code == second
    # tagged with it, so the next plan finds the function as deployed (a no-op)
    assert function["Tags"][CODE_TAG] == sha256(second)
