"""A Parquet pipeline's processor zip (pyarrow inside, past Lambda's 50 MB direct upload) is
staged in a hardened artifacts bucket and created from S3Bucket/S3Key (issue 18)."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile

import boto3

from pipectl import config as config_module
from pipectl.aws import buckets
from pipectl.deploy import engine, package
from pipectl.deploy.desired import STAGED_CODE_RULE, TLS_STATEMENT, VERSIONS_LIFECYCLE_RULE


def test_a_parquet_pipeline_deploys_its_large_processor_zip_through_s3(aws, cfg, names,
                                                                      monkeypatch):
    # given the repository's pipeline, asking for Parquet output; moto applies the TLS-only
    # Deny without its aws:SecureTransport condition (DESIGN.md) and would refuse deploy's
    # own https upload of the zip, which AWS would not: the policy is recorded, not applied
    policies = {}
    monkeypatch.setattr(buckets, "put_policy",
                        lambda s3, bucket, document: policies.__setitem__(bucket, document))
    path = cfg.path
    path.write_text(path.read_text() + "\noutput:\n  format: parquet\n")
    parquet = config_module.load(path)

    # when it is deployed (the real packager: pyarrow installed for Lambda's platform)
    plan = engine.build_plan(aws, parquet)
    processor = next(s.desired for s in plan.steps if s.desired.kind == "function"
                     and s.desired.name.endswith("-processor"))
    engine.apply(aws, plan)

    # then the processor's zip is past the direct-upload quota and carries pyarrow, and
    # only the processor's: the fetcher's zip has none of it
    assert len(processor.zip_bytes) > package.DIRECT_UPLOAD_BYTES
    members = zipfile.ZipFile(io.BytesIO(processor.zip_bytes)).namelist()
    assert "pyarrow/__init__.py" in members and "processing/parquet_writer.py" in members
    fetcher = next(s.desired for s in plan.steps if s.desired.kind == "function"
                   and s.desired.name.endswith("-fetcher"))
    assert not [m for m in zipfile.ZipFile(io.BytesIO(fetcher.zip_bytes)).namelist()
                if m.startswith("pyarrow")]
    # and Lambda got it from the artifacts bucket, which deploy made private
    s3 = boto3.client("s3", region_name="us-east-1")
    bucket = names.artifacts_bucket
    assert buckets.public_access_blocked(s3, bucket)
    assert buckets.encryption(s3, bucket) == "AES256"
    assert buckets.ownership(s3, bucket) == "BucketOwnerEnforced"
    assert [st["Sid"] for st in policies[bucket]["Statement"]] == [TLS_STATEMENT]
    # and a staged zip expires a week after it was staged (Lambda keeps its own copy),
    # its old versions and lone delete markers as in every bucket
    rules = {r["ID"]: r for r in buckets.lifecycle_rules(s3, bucket)}
    assert rules[STAGED_CODE_RULE]["Expiration"] == {"Days": 7}
    assert rules[VERSIONS_LIFECYCLE_RULE]["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": parquet.archiver.noncurrent_version_days}
    staged = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]]
    assert staged == [f"{processor.name}/" + processor.code_sha256.replace("/", "_")
                      .replace("+", "-") + ".zip"]
    deployed = boto3.client("lambda", region_name="us-east-1").get_function(
        FunctionName=processor.name)["Configuration"]
    digest = base64.b64encode(hashlib.sha256(processor.zip_bytes).digest()).decode()
    assert deployed["CodeSha256"] == digest == processor.code_sha256
    assert deployed["Environment"]["Variables"]["OUTPUT_FORMAT"] == "parquet"

    # and a second deploy compares CodeSha256 as before: every function is a noop (the
    # bucket policies, which moto never got, are the only differences)
    again = engine.build_plan(aws, parquet)
    assert {s.desired.name: s.action for s in again.steps if s.desired.kind == "function"} \
        == {f.name: "noop" for f in (processor, fetcher)} | {
            processor.name.replace("processor", "archiver"): "noop"}
    assert {c.field.split(".")[0] for s in again.steps if s.action != "noop"
            for c in s.changes} == {"policy_statements"}
