"""`pipectl reprocess --engine s3-batch`: past one machine, on AWS only.

Instead of streaming messages from the operator's machine, pipectl writes a CSV manifest
of the selected files to the raw bucket (under MANIFEST_PREFIX, which never lies under
the incoming prefix), makes sure of a role S3 Batch Operations can assume that may do
exactly this job's work (invoke the processor, read the manifest, write the report), and
creates a LambdaInvoke job on the processor with invocation schema 2.0, the run id and
target version as the job's user arguments. The processor answers each task Succeeded,
TemporaryFailure or PermanentFailure (handlers/common/invocation.batch_operations).

Batch Operations is not emulated by moto or LocalStack: this engine refuses an emulator
target. Shapes: docs.aws.amazon.com/AmazonS3/latest/API/API_control_CreateJob.html,
.../userguide/batch-ops-create-job.html (manifest: Bucket,Key with URL-encoded keys),
.../userguide/batch-ops-examples-reports.html (the completion report).
"""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from pipectl.aws import iam as iam_api
from pipectl.aws import s3 as s3_api
from pipectl.aws import s3control
from pipectl.aws.session import Aws
from pipectl.errors import PipectlError, UsageError
from pipectl.naming import (
    BATCH_RUN_ARGUMENT,
    BATCH_VERSION_ARGUMENT,
    REPROCESS_BATCH_ROLE,
    Names,
)
from pipectl.ops.reprocess import Candidate, ReprocessReport

MANIFEST_PREFIX = "pipectl-reprocess/"      # in the raw bucket: manifests and reports
MANIFEST_FORMAT, REPORT_FORMAT = "S3BatchOperations_CSV_20180820", "Report_CSV_20180820"
TERMINAL = ("Complete", "Failed", "Cancelled")
POLICY_NAME = "reprocess-batch-access"
# A role IAM just created is not assumable everywhere at once (IAM is eventually
# consistent): CreateJob is asked again this many times, ROLE_WAIT seconds apart.
CREATE_ATTEMPTS, ROLE_WAIT = 8, 5.0
POLL_SECONDS = 10.0


@dataclass
class BatchJob:
    job_id: str
    manifest: str                 # s3:// URI
    report: str                   # s3:// prefix of the completion report
    role_arn: str
    status: str = "New"
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    failure_reasons: list[str] = field(default_factory=list)
    failed_tasks: list[dict] = field(default_factory=list)   # from the completion report


def refuse_emulator(aws: Aws) -> None:
    if aws.effective_endpoint is not None:
        raise UsageError("--engine s3-batch is for AWS: S3 Batch Operations is not emulated "
                         f"(the target's endpoint is {aws.effective_endpoint}); use "
                         "--engine queue")


def manifest(candidates: list[Candidate]) -> bytes:
    """Bucket,Key per line, keys URL-encoded as Batch Operations requires; each file named
    where it lies (its row's location, or incoming/ for a file without one)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for c in candidates:
        writer.writerow([c.bucket, quote(c.location or c.key, safe="/")])
    return out.getvalue().encode()


def trust_policy() -> dict:
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "batchoperations.s3.amazonaws.com"},
        "Action": "sts:AssumeRole"}]}


def role_policy(names: Names) -> dict:
    """Exactly the job's work: invoke the processor, read manifests, write reports."""
    raw = names.bucket_arn("raw")
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "InvokeTheProcessor", "Effect": "Allow", "Action": "lambda:InvokeFunction",
         "Resource": names.function_arn("processor")},
        {"Sid": "ReadTheManifest", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:GetObjectVersion"],
         "Resource": f"{raw}/{MANIFEST_PREFIX}*"},
        {"Sid": "WriteTheReport", "Effect": "Allow", "Action": "s3:PutObject",
         "Resource": f"{raw}/{MANIFEST_PREFIX}*"},
        {"Sid": "LocateTheBucket", "Effect": "Allow", "Action": "s3:GetBucketLocation",
         "Resource": raw}]}


def ensure_role(aws: Aws, names: Names) -> str:
    client = aws.client("iam")
    name = names.role(REPROCESS_BATCH_ROLE)
    found = iam_api.get_role(client, name)
    if found is None:
        iam_api.create_role(client, name, trust_policy(), {"managed-by": "pipectl"})
    elif found["AssumeRolePolicyDocument"] != trust_policy():
        iam_api.update_trust(client, name, trust_policy())
    iam_api.put_inline_policy(client, name, POLICY_NAME, role_policy(names))
    return names.role_arn(REPROCESS_BATCH_ROLE)


def job_request(names: Names, report: ReprocessReport, *, manifest_key: str,
                manifest_etag: str, role_arn: str) -> dict:
    """The CreateJob request (S3 Control), as documented for a LambdaInvoke job."""
    raw = names.bucket_arn("raw")
    return {
        "AccountId": names.account, "ConfirmationRequired": False,
        "ClientRequestToken": report.run_id,          # a retried CreateJob makes one job
        "Operation": {"LambdaInvoke": {
            "FunctionArn": names.function_arn("processor"), "InvocationSchemaVersion": "2.0",
            "UserArguments": {BATCH_RUN_ARGUMENT: report.run_id,
                              BATCH_VERSION_ARGUMENT: report.target_version}}},
        "Manifest": {"Spec": {"Format": MANIFEST_FORMAT, "Fields": ["Bucket", "Key"]},
                     "Location": {"ObjectArn": f"{raw}/{manifest_key}",
                                  "ETag": manifest_etag.strip('"')}},
        "Report": {"Bucket": raw, "Prefix": f"{MANIFEST_PREFIX}{report.run_id}/report",
                   "Format": REPORT_FORMAT, "Enabled": True, "ReportScope": "AllTasks"},
        "Priority": 10, "RoleArn": role_arn,
        "Description": f"pipectl reprocess {report.run_id} -> {report.target_version}"[:256],
    }


def start(aws: Aws, names: Names, report: ReprocessReport,
          sleep: Callable[[float], None] = time.sleep) -> BatchJob:
    """Write the manifest, make sure of the role, create the job."""
    refuse_emulator(aws)
    if MANIFEST_PREFIX.startswith(names.config.prefixes.incoming):
        raise UsageError(f"the incoming prefix {names.config.prefixes.incoming!r} would "
                         f"trigger on the manifest under {MANIFEST_PREFIX!r}")
    s3 = aws.client("s3")
    raw = names.bucket("raw")
    key = f"{MANIFEST_PREFIX}{report.run_id}/manifest.csv"
    etag = s3.put_object(Bucket=raw, Key=key, Body=manifest(report.selected),
                         ContentType="text/csv")["ETag"]
    role_arn = ensure_role(aws, names)
    request = job_request(names, report, manifest_key=key, manifest_etag=etag,
                          role_arn=role_arn)
    job_id = s3control.create_job(aws.client("s3control"), request, attempts=CREATE_ATTEMPTS,
                                  wait=ROLE_WAIT, sleep=sleep)
    return BatchJob(job_id=job_id, manifest=f"s3://{raw}/{key}",
                    report=f"s3://{raw}/{request['Report']['Prefix']}/", role_arn=role_arn)


def refresh(aws: Aws, names: Names, job: BatchJob) -> BatchJob:
    found = aws.client("s3control").describe_job(AccountId=names.account,
                                                 JobId=job.job_id)["Job"]
    progress = found.get("ProgressSummary", {})
    job.status = found.get("Status", job.status)
    job.total = int(progress.get("TotalNumberOfTasks", 0))
    job.succeeded = int(progress.get("NumberOfTasksSucceeded", 0))
    job.failed = int(progress.get("NumberOfTasksFailed", 0))
    job.failure_reasons = [f"{r.get('FailureCode', '')}: {r.get('FailureReason', '')}"
                           for r in found.get("FailureReasons", [])]
    return job


def watch(aws: Aws, names: Names, job: BatchJob, *,
          on_progress: Callable[[BatchJob], None] | None = None,
          sleep: Callable[[float], None] = time.sleep) -> BatchJob:
    """Follow the job to its end, then read the failed tasks from its completion report."""
    while refresh(aws, names, job).status not in TERMINAL:
        if on_progress is not None:
            on_progress(job)
        sleep(POLL_SECONDS)
    if on_progress is not None:
        on_progress(job)
    job.failed_tasks = failed_tasks(aws, names, job)
    return job


def failed_tasks(aws: Aws, names: Names, job: BatchJob) -> list[dict]:
    """The failed tasks the completion report lists: its manifest.json names a CSV of
    Bucket, Key, VersionId, TaskStatus, ErrorCode, HTTPStatusCode, ResultMessage each."""
    s3 = aws.client("s3")
    prefix = job.report.split("/", 3)[3]
    body = s3_api.read_if_exists(s3, names.bucket("raw"),
                                 f"{prefix}job-{job.job_id}/manifest.json")
    if body is None:
        return []        # no task ran: Batch Operations writes no report then
    top = json.loads(body)
    failed = []
    for result in top.get("Results", []):
        if result.get("TaskExecutionStatus") != "failed":
            continue
        body = s3.get_object(Bucket=result["Bucket"], Key=result["Key"])["Body"].read()
        for row in csv.reader(io.StringIO(body.decode())):
            if len(row) >= 7:
                failed.append({"bucket": row[0], "key": row[1], "status": row[3],
                               "error_code": row[4], "result": row[6]})
    return failed


def check_finished(job: BatchJob) -> None:
    if job.status != "Complete":
        reasons = "; ".join(job.failure_reasons) or "no reason given"
        raise PipectlError(f"S3 Batch Operations job {job.job_id} ended {job.status}: "
                           f"{reasons}")
