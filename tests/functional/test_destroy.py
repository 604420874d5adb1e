"""destroy under moto (mock_aws): data is kept unless --purge, and what is already gone is done."""

from __future__ import annotations

import json

import boto3
import pytest

from pipectl.deploy import destroy, engine
from pipectl.naming import row_key
from pipectl.ops import reprocess_batch


def drain(sqs, url: str) -> None:
    """Take S3's s3:TestEvent (sent when the notification was configured) off a queue."""
    while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages"):
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)])


def kept(plan) -> dict[str, str]:
    return {s.name: s.reason for s in plan.steps if s.action == "noop"}


def test_results_rows_and_dead_letters_are_kept_with_what_they_hold(deployed, aws, cfg):
    # given 3 result rows, 2 dead letters, and the processing queues emptied
    names = deployed
    sqs = boto3.client("sqs", region_name="us-east-1")
    for queue in (names.queue, names.fetch_queue):
        drain(sqs, sqs.get_queue_url(QueueName=queue)["QueueUrl"])
    table = boto3.resource("dynamodb", region_name="us-east-1").Table(names.results_table)
    for i in range(3):
        table.put_item(Item={"object_key": row_key(names.bucket("raw"), f"incoming/{i}.csv"),
                             "status": "PROCESSED"})
    dlq = sqs.get_queue_url(QueueName=names.dlq)["QueueUrl"]
    for i in range(2):
        sqs.send_message(QueueUrl=dlq, MessageBody=f"dead letter {i}")

    # when destroying without --purge
    plan = destroy.build_destroy_plan(aws, cfg, purge=False)
    destroy.apply_destroy(aws, plan)

    # then the table and the DLQ are kept, and the plan says what each holds
    assert kept(plan) == {
        names.results_table: "kept: holds 3 rows (pass --purge to delete them)",
        names.dlq: "kept: holds 2 messages (pass --purge to delete them)"}
    assert table.scan(Select="COUNT")["Count"] == 3
    assert sqs.get_queue_url(QueueName=names.dlq)
    left = {s.name for s in engine.build_plan(aws, cfg).steps if s.action != "create"}
    assert left == {names.results_table, names.dlq}

    # and --purge deletes them, saying so
    purge = destroy.build_destroy_plan(aws, cfg, purge=True)
    assert {s.name: s.reason for s in purge.steps} == {
        names.results_table: "holds 3 rows: --purge deletes them",
        names.dlq: "holds 2 messages: --purge deletes them"}
    destroy.apply_destroy(aws, purge)
    assert {s.action for s in engine.build_plan(aws, cfg).steps} == {"create"}


def test_the_processing_queue_keeps_s3s_test_event_like_any_message(deployed, aws, cfg):
    # S3 sends s3:TestEvent when the notification is configured; nothing consumed it yet
    plan = destroy.build_destroy_plan(aws, cfg, purge=False)
    assert kept(plan) == {q: "kept: holds 1 message (pass --purge to delete them)"
                          for q in (deployed.queue, deployed.fetch_queue)}


def test_destroy_finishes_when_everything_it_listed_is_already_gone(deployed, aws, cfg):
    # given a purge plan, and then each of its resources deleted by someone else (one
    # destroy racing another, a console user, a mapping that finished Deleting)
    plan = destroy.build_destroy_plan(aws, cfg, purge=True)
    deletes = [s for s in plan.steps if s.action == "delete"]
    assert {s.kind for s in deletes} == {"alarm", "schedule", "mapping", "function", "role",
                                         "log_group", "table", "notification", "bucket",
                                         "queue"}
    destroy.apply_destroy(aws, plan)

    # when destroy carries out the same plan again, then every delete of the absent
    # resource is success and nothing of ours is left
    destroy.apply_destroy(aws, plan)
    assert {s.action for s in engine.build_plan(aws, cfg).steps} == {"create"}


def test_destroy_removes_the_role_reprocess_made_for_s3_batch_operations(deployed, aws, cfg):
    # given the role `reprocess --engine s3-batch` made (its trust and inline policy), and
    # a managed policy someone attached to it by hand (IAM refuses to delete a role with
    # either still on it)
    reprocess_batch.ensure_role(aws, deployed)
    iam = boto3.client("iam", region_name="us-east-1")
    role = deployed.role("reprocess-batch")
    managed = iam.create_policy(PolicyName="read-the-key", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt",
                                                "Resource": "*"}]}))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=managed)

    # when destroying
    plan = destroy.build_destroy_plan(aws, cfg, purge=False)
    destroy.apply_destroy(aws, plan)

    # then the plan deletes it first, saying what made it, and it is gone
    assert (plan.steps[0].action, plan.steps[0].kind, plan.steps[0].name,
            plan.steps[0].reason) == ("delete", "role", role,
                                      "made by `pipectl reprocess --engine s3-batch`")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=role)
    # and carrying out the same plan again, with the role already gone, is success
    destroy.apply_destroy(aws, plan)
    assert role not in {s.name for s in destroy.build_destroy_plan(aws, cfg, purge=False).steps}
