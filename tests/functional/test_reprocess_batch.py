"""`reprocess --engine s3-batch`: the manifest, the role and the CreateJob request.

moto does not emulate S3 Batch Operations (S3 Control jobs), so the S3 Control client is
botocore's Stubber, which checks each request against the service model; the answers are
the documented shapes (CreateJob: {"JobId"}; DescribeJob: {"Job": {"Status",
"ProgressSummary"}}: docs.aws.amazon.com/AmazonS3/latest/API/API_control_CreateJob.html,
API_control_DescribeJob.html; the completion report:
docs.aws.amazon.com/AmazonS3/latest/userguide/batch-ops-examples-reports.html). The
buckets, the results table and IAM are moto's.
"""

from __future__ import annotations

import json

import boto3
import parliament
import pytest
from botocore.stub import Stubber

from pipectl.deploy.desired import processor_version
from pipectl.errors import PipectlError, UsageError
from pipectl.ops import reprocess_batch
from pipectl.ops.reprocess import Selection, reprocess

JOB_ID = "f8fb9d89-a3aa-461d-bddc-ea6a1b131955"


@pytest.fixture
def selected(deployed, aws, cfg):
    """Two rows of an older version, originals in completed/ and failed/."""
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    raw = deployed.bucket("raw")
    for key, status, where in (("incoming/a b+c ü.csv", "PROCESSED", "completed/a b+c ü.csv"),
                               ("incoming/d.json", "FAILED", "failed/d.json")):
        ddb.put_item(TableName=deployed.results_table, Item={
            "object_key": {"S": f"s3://{raw}/{key}"}, "key": {"S": key},
            "status": {"S": status}, "updated_at": {"S": "2026-01-01T00:00:00+00:00"},
            "processor_version": {"S": "old"}, "location": {"S": where},
            "size": {"N": "5"}})
    report = reprocess(aws, deployed, Selection(not_current=True), dry_run=True,
                       run_id="run42")
    assert report.target_version == processor_version(cfg)
    return report


@pytest.fixture
def control(aws, monkeypatch):
    client = boto3.client("s3control", region_name="us-east-1")
    stubber = Stubber(client)
    real = aws.client

    monkeypatch.setattr(aws, "client", lambda service: client if service == "s3control"
                        else real(service))
    with stubber:
        yield stubber
    stubber.assert_no_pending_responses()


def expect_create_job(control, names, report, etag: str) -> None:
    raw = names.bucket_arn("raw")
    control.add_response("create_job", {"JobId": JOB_ID}, {
        "AccountId": names.account, "ConfirmationRequired": False,
        "ClientRequestToken": "run42",
        "Operation": {"LambdaInvoke": {
            "FunctionArn": names.function_arn("processor"), "InvocationSchemaVersion": "2.0",
            "UserArguments": {"pipectlReprocessRunId": "run42",
                              "pipectlReprocessVersion": report.target_version}}},
        "Manifest": {"Spec": {"Format": "S3BatchOperations_CSV_20180820",
                              "Fields": ["Bucket", "Key"]},
                     "Location": {"ObjectArn": f"{raw}/pipectl-reprocess/run42/manifest.csv",
                                  "ETag": etag}},
        "Report": {"Bucket": raw, "Prefix": "pipectl-reprocess/run42/report",
                   "Format": "Report_CSV_20180820", "Enabled": True,
                   "ReportScope": "AllTasks"},
        "Priority": 10, "RoleArn": names.role_arn("reprocess-batch"),
        "Description": f"pipectl reprocess run42 -> {report.target_version}"})


def test_the_job_invokes_the_processor_on_a_manifest_of_where_the_files_lie(
        deployed, aws, selected, control):
    # given the manifest's bytes (its ETag is their MD5: a single PUT)
    import hashlib

    body = reprocess_batch.manifest(selected.selected)
    assert body.decode() == (f"{deployed.bucket('raw')},completed/a%20b%2Bc%20%C3%BC.csv\n"
                             f"{deployed.bucket('raw')},failed/d.json\n")
    expect_create_job(control, deployed, selected, hashlib.md5(body).hexdigest())  # noqa: S324

    # when the job is started
    job = reprocess_batch.start(aws, deployed, selected, sleep=lambda s: None)

    # then the manifest is in the raw bucket, outside incoming/
    assert job.job_id == JOB_ID
    s3 = boto3.client("s3", region_name="us-east-1")
    stored = s3.get_object(Bucket=deployed.bucket("raw"),
                           Key="pipectl-reprocess/run42/manifest.csv")["Body"].read()
    assert stored == body
    assert job.report == f"s3://{deployed.bucket('raw')}/pipectl-reprocess/run42/report/"


def test_the_role_may_do_exactly_the_jobs_work(deployed, aws, selected, control):
    import hashlib

    body = reprocess_batch.manifest(selected.selected)
    expect_create_job(control, deployed, selected, hashlib.md5(body).hexdigest())  # noqa: S324
    reprocess_batch.start(aws, deployed, selected)

    iam = boto3.client("iam", region_name="us-east-1")
    name = deployed.role("reprocess-batch")
    trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Effect": "Allow",
                      "Principal": {"Service": "batchoperations.s3.amazonaws.com"},
                      "Action": "sts:AssumeRole"}]
    document = iam.get_role_policy(RoleName=name, PolicyName="reprocess-batch-access")[
        "PolicyDocument"]
    assert [(f.issue, f.detail) for f in
            parliament.analyze_policy_string(json.dumps(document)).findings] == []
    allowed = {(s["Action"] if isinstance(s["Action"], str) else tuple(s["Action"]),
                s["Resource"]) for s in document["Statement"]}
    raw = deployed.bucket_arn("raw")
    assert allowed == {
        ("lambda:InvokeFunction", deployed.function_arn("processor")),
        (("s3:GetObject", "s3:GetObjectVersion"), f"{raw}/pipectl-reprocess/*"),
        ("s3:PutObject", f"{raw}/pipectl-reprocess/*"),
        ("s3:GetBucketLocation", raw)}


def test_watching_follows_the_job_and_reads_the_failed_tasks_from_its_report(
        deployed, aws, control):
    # given a job that runs, then completes with one failed task in its report
    raw = deployed.bucket("raw")
    for status, done, failed in (("Active", 1, 0), ("Complete", 1, 1)):
        control.add_response("describe_job", {"Job": {
            "JobId": JOB_ID, "Status": status,
            "ProgressSummary": {"TotalNumberOfTasks": 2, "NumberOfTasksSucceeded": done,
                                "NumberOfTasksFailed": failed}}},
            {"AccountId": deployed.account, "JobId": JOB_ID})
    s3 = boto3.client("s3", region_name="us-east-1")
    prefix = "pipectl-reprocess/run42/report/"
    s3.put_object(Bucket=raw, Key=f"{prefix}job-{JOB_ID}/manifest.json", Body=json.dumps({
        "Format": "Report_CSV_20180820", "ReportCreationDate": "2019-04-05T17:48:39.725Z",
        "Results": [{"TaskExecutionStatus": "failed", "Bucket": raw, "MD5Checksum": "x",
                     "Key": f"{prefix}job-{JOB_ID}/results/b2dd.csv"}],
        "ReportSchema": "Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, "
                        "ResultMessage"}))
    s3.put_object(Bucket=raw, Key=f"{prefix}job-{JOB_ID}/results/b2dd.csv",
                  Body=f'{raw},failed/d.json,,failed,200,PermanentFailure,"line 1: too long"\n')
    job = reprocess_batch.BatchJob(job_id=JOB_ID, manifest="", report=f"s3://{raw}/{prefix}",
                                   role_arn="")
    seen = []

    # when it is watched
    job = reprocess_batch.watch(aws, deployed, job, on_progress=lambda j: seen.append(
        (j.status, j.succeeded, j.failed)), sleep=lambda s: None)

    # then each state was reported and the failed task named with its reason
    assert seen == [("Active", 1, 0), ("Complete", 1, 1)]
    assert job.failed_tasks == [{"bucket": raw, "key": "failed/d.json", "status": "failed",
                                 "error_code": "200", "result": "line 1: too long"}]
    reprocess_batch.check_finished(job)


def test_a_failed_job_says_why(deployed):
    job = reprocess_batch.BatchJob(job_id=JOB_ID, manifest="", report="", role_arn="",
                                   status="Failed",
                                   failure_reasons=["AccessDenied: cannot read the manifest"])
    with pytest.raises(PipectlError, match="ended Failed: AccessDenied: cannot read"):
        reprocess_batch.check_finished(job)


def test_an_emulator_target_is_refused(deployed, aws, monkeypatch):
    monkeypatch.setattr(aws, "endpoint_url", "http://127.0.0.1:4567")
    with pytest.raises(UsageError, match="--engine s3-batch is for AWS"):
        reprocess_batch.refuse_emulator(aws)
