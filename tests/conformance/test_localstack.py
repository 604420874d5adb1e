"""The pipeline's life on LocalStack + moto DynamoDB, through the real `pipectl`: deploy,
a no-op second deploy, uploads from any client, `run --until-idle`, replay (native and
batched), archive, destroy then deploy again."""

from __future__ import annotations

import json

from tests.helpers import s3_put_body

# DEPLOYED: 27 steps on the default pipeline, as on moto (tests/server/test_end_to_end.py).
DEPLOYED = 27


def keys(s3, bucket: str, prefix: str = "") -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def deploy(pipectl) -> None:
    done = pipectl("deploy", "--yes")
    assert done.code == 0, done.err


def test_deploy_then_a_second_deploy_changes_nothing(pipectl, client, names):
    deploy(pipectl)
    again = pipectl("--output", "json", "deploy", "--dry-run")
    assert again.code == 0, again.err
    plan = again.json()
    assert plan["changes"] is False, plan
    assert plan["summary"] == {"create": 0, "update": 0, "delete": 0, "noop": DEPLOYED}

    # LocalStack's Lambda took the function to Active without Docker (store-only executor)
    function = client("lambda").get_function(FunctionName=names["processor"])["Configuration"]
    assert (function["State"], function["LastUpdateStatus"]) == ("Active", "Successful")
    # and the results table is on moto, as AWS_ENDPOINT_URL_DYNAMODB says
    assert client("dynamodb").describe_table(TableName=names["table"])["Table"]


def test_uploads_from_any_client_are_processed_by_the_local_runtime(pipectl, client, names):
    deploy(pipectl)
    s3 = client("s3")
    s3.put_object(Bucket=names["raw"], Key="incoming/orders.csv",
                  Body=b"Order ID,Customer Name\n1,Ada\n2,Grace\n")
    s3.put_object(Bucket=names["raw"], Key="incoming/my report (v2)+final.csv",
                  Body=b"A B,C\n1,2\n")
    s3.put_object(Bucket=names["raw"], Key="incoming/bad.json", Body=b'{"a": [1, 2')

    run = pipectl("--output", "json", "run", "--until-idle", "--timeout", "120")

    assert run.code == 0, run.err
    report = run.json()
    # three uploads, and s3:TestEvents: LocalStack sends one per notification rule (8 to
    # the processing queue, 3 to the fetch queue), moto one per queue
    assert (report["messages"], report["failed"], report["idle"]) == (3 + 11, 0, True)
    rows = {r["key"]: r for r in pipectl("--output", "json", "results").json()["results"]}
    assert {k: r["status"] for k, r in rows.items()} == {
        "incoming/orders.csv": "PROCESSED", "incoming/my report (v2)+final.csv": "PROCESSED",
        "incoming/bad.json": "FAILED"}
    assert keys(s3, names["raw"], "incoming/") == []
    assert keys(s3, names["raw"], "failed/") == ["failed/bad.json"]
    output = rows["incoming/orders.csv"]["output"].split("/", 3)[3]
    lines = s3.get_object(Bucket=names["processed"], Key=output)["Body"].read().splitlines()
    assert [json.loads(line)["customer_name"] for line in lines] == ["Ada", "Grace"]


def test_replay_native_uses_sqs_move_task_and_batched_replay_moves_the_rest(
        pipectl, client, names):
    deploy(pipectl)
    sqs = client("sqs")
    s3 = client("s3")
    dlq = sqs.get_queue_url(QueueName=names["dlq"])["QueueUrl"]
    for i in range(3):
        s3.put_object(Bucket=names["raw"], Key=f"incoming/late-{i}.csv", Body=b"a\n1\n")
    # the uploads' notifications go to the queue; drain it and make them dead letters
    assert pipectl("run", "--until-idle", "--timeout", "120").code == 0
    for i in range(3):
        s3.copy_object(Bucket=names["raw"], Key=f"incoming/late-{i}.csv",
                       CopySource={"Bucket": names["raw"], "Key": f"completed/late-{i}.csv"})
    queue = sqs.get_queue_url(QueueName=names["queue"])["QueueUrl"]
    moved = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=1).get("Messages"):
        for message in batch:
            sqs.send_message(QueueUrl=dlq, MessageBody=message["Body"])
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            moved.append(message)
    assert len(moved) == 3

    native = pipectl("--output", "json", "replay-dlq", "--native", "--yes", timeout=300)

    assert native.code == 0, native.err
    report = native.json()
    assert (report["method"], report["moved"], report["failed"]) == ("native", 3, 0), report
    # then the replayed files are processed again (idempotently: the rows stay PROCESSED)
    run = pipectl("--output", "json", "run", "--until-idle", "--timeout", "120")
    assert run.code == 0 and run.json()["messages"] == 3, run.err
    assert keys(s3, names["raw"], "incoming/") == []

    # batched replay (what --filter needs) on the same backend
    sqs.send_message(QueueUrl=dlq, MessageBody=s3_put_body(names["raw"], "incoming/late-0.csv"))
    batched = pipectl("--output", "json", "replay-dlq", "--filter", "incoming/*", "--yes")
    assert batched.code == 0, batched.err
    assert (batched.json()["method"], batched.json()["moved"]) == ("batched", 1)


def test_archive_moves_processed_output_to_the_archive_bucket(pipectl, client, names):
    deploy(pipectl)
    s3 = client("s3")
    s3.put_object(Bucket=names["raw"], Key="incoming/users.json", Body=b'{"User Name": "J"}')
    assert pipectl("run", "--until-idle", "--timeout", "120").code == 0
    before = keys(s3, names["processed"])
    assert len(before) == 1

    run = pipectl("-o", "json", "archive", "--older-than", "0d", "--yes")

    assert run.code == 0, run.err
    assert run.json()["moved"] == 1 and run.json()["errors"] == 0
    assert keys(s3, names["processed"]) == []
    archived = keys(s3, names["archive"], "archive/")
    assert archived == ["archive/" + before[0].removeprefix("processed/")]
    assert s3.head_object(Bucket=names["archive"], Key=archived[0])["StorageClass"] == \
        "STANDARD_IA"


def test_destroy_keeps_data_then_purge_and_deploy_again_creates_everything(
        pipectl, client, names):
    deploy(pipectl)
    # the s3:TestEvent messages are consumed, so only the row and the dead letter hold data
    assert pipectl("run", "--until-idle", "--timeout", "120").code == 0
    client("dynamodb").put_item(TableName=names["table"], Item={
        "object_key": {"S": f"s3://{names['raw']}/incoming/x.csv"},
        "key": {"S": "incoming/x.csv"}, "status": {"S": "PROCESSED"}})
    sqs = client("sqs")
    sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName=names["dlq"])["QueueUrl"],
                     MessageBody=s3_put_body(names["raw"], "incoming/x.csv"))

    kept = pipectl("--output", "json", "destroy", "--yes")

    assert kept.code == 0, kept.err
    reasons = {s["name"]: s["reason"] for s in kept.json()["steps"] if s["action"] == "noop"}
    assert reasons == {names["table"]: "kept: holds 1 row (pass --purge to delete them)",
                       names["dlq"]: "kept: holds 1 message (pass --purge to delete them)"}

    purged = pipectl("destroy", "--yes", "--purge")
    assert purged.code == 0, purged.err
    # at once, while LocalStack may still be deleting the mapping: deploy creates it anew
    again = pipectl("--output", "json", "deploy", "--yes")
    assert again.code == 0, again.err
    assert again.json()["summary"]["create"] == DEPLOYED
    mappings = client("lambda").list_event_source_mappings(
        FunctionName=names["processor"])["EventSourceMappings"]
    assert [m["State"] for m in mappings] == ["Disabled"]
