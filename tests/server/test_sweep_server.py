"""Deploy removes what it made and pipeline.yaml no longer holds (issue 20), through the real
`pipectl` against a moto server: found by ownership tags, kept while it holds data unless
--purge, and nothing untagged (or tagged for another pipeline) is ever touched."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.server

SINK = "sink: {table: orders-records, key: order_id}\n"
ORDERS = b"order_id,email\n1,ada@example.com\n2,grace@example.com\n3,alan@example.com\n"
OWNER = {"managed-by": "pipectl", "pipectl:pipeline": "pipectl-demo"}


def steps(plan) -> dict[tuple[str, str], dict]:
    return {(s["kind"], s["name"]): s for s in plan.json()["steps"]}


def decoys(client) -> None:
    """Tables and a bucket deploy did not make for this pipeline: untagged, or tagged for
    another environment of it."""
    ddb = client("dynamodb")
    for name, tags in (("orders-legacy", []),
                       ("orders-prod", [{"Key": k, "Value": v} for k, v in
                                        {**OWNER, "pipectl:environment": "prod"}.items()])):
        ddb.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                         **({"Tags": tags} if tags else {}))
    client("s3").create_bucket(Bucket="pipectl-demo-dev-raw-elsewhere")


def test_a_removed_sink_is_planned_applied_and_kept_until_purged(pipectl, pipeline_dir, client):
    # given a pipeline with a sink whose table holds three records, and tables it did not make
    config = pipeline_dir / "pipeline.yaml"
    original = config.read_text()
    config.write_text(original + SINK)
    assert pipectl("deploy", "--yes", timeout=300).code == 0
    decoys(client)
    ddb = client("dynamodb")
    arn = ddb.describe_table(TableName="orders-records")["Table"]["TableArn"]
    tags = {t["Key"]: t["Value"] for t in ddb.list_tags_of_resource(ResourceArn=arn)["Tags"]}
    assert tags == {**OWNER, "pipectl:environment": "dev"}
    client("s3").put_object(Bucket="pipectl-demo-dev-raw-123456789012",
                            Key="incoming/orders.csv", Body=ORDERS)
    assert pipectl("run", "--until-idle", "--timeout", "90").code == 0
    assert ddb.scan(TableName="orders-records", Select="COUNT")["Count"] == 3

    # when the sink is taken out of pipeline.yaml
    config.write_text(original)
    plan = pipectl("deploy", "--dry-run", "--detailed-exitcode", "-o", "json")

    # then the plan drops the sink from the processor and keeps the table, saying why
    assert plan.code == 2, plan.err
    planned = steps(plan)
    kept = planned[("table", "orders-records")]
    assert kept["action"] == "noop"
    assert kept["reason"] == "kept: holds 3 rows (pass --purge to delete them)"
    processor = planned[("function", "pipectl-demo-dev-processor")]
    assert processor["action"] == "update"
    # (a sink is a setting that changes output, so the processor's version changes too)
    assert {c["field"] for c in processor["changes"]} == {
        "environment.SINK_TABLE", "environment.SINK_KEY", "environment.PROCESSOR_VERSION"}
    assert planned[("role", "pipectl-demo-dev-processor-role")]["action"] == "update"
    assert not {name for kind, name in planned if name.startswith("orders-") and
                name != "orders-records"}
    shown = pipectl("deploy", "--dry-run")
    assert "= table        orders-records  kept: holds 3 rows (pass --purge to delete them)" \
        in shown.out, shown.out

    applied = pipectl("deploy", "--yes")
    assert applied.code == 0, applied.err
    env = client("lambda").get_function_configuration(
        FunctionName="pipectl-demo-dev-processor")["Environment"]["Variables"]
    assert "SINK_TABLE" not in env
    again = pipectl("deploy", "--dry-run", "--detailed-exitcode", "-o", "json")
    assert again.code == 0, again.out                          # a second deploy: all no-op
    assert {s["action"] for s in again.json()["steps"]} == {"noop"}
    assert "orders-records" in ddb.list_tables()["TableNames"]
    # destroy knows it too: what deploy made stays deploy's to remove
    destroying = steps(pipectl("destroy", "--dry-run", "-o", "json"))
    assert destroying[("table", "orders-records")]["reason"] == (
        "kept: holds 3 rows (pass --purge to delete them)")
    assert ("table", "orders-legacy") not in destroying

    # and --purge deletes the table with its rows, after which nothing is left to do
    purged = pipectl("deploy", "--yes", "--purge", "--detailed-exitcode", "-o", "json")
    assert purged.code == 2, purged.err
    gone = steps(purged)[("table", "orders-records")]
    assert (gone["action"], gone["reason"]) == ("delete",
                                                "holds 3 rows: --purge deletes them")
    tables = ddb.list_tables()["TableNames"]
    assert "orders-records" not in tables
    assert {"orders-legacy", "orders-prod"} <= set(tables)    # never touched
    assert "pipectl-demo-dev-raw-elsewhere" in {
        b["Name"] for b in client("s3").list_buckets()["Buckets"]}
    final = pipectl("deploy", "--dry-run", "--detailed-exitcode", "-o", "json")
    assert final.code == 0 and not [s for s in final.json()["steps"]
                                    if s["name"] == "orders-records"]


def test_a_removed_alarm_topic_and_suffix_rule_are_swept(pipectl, pipeline_dir, client):
    # given a pipeline with alarm email and an extra suffix
    config = pipeline_dir / "pipeline.yaml"
    original = config.read_text()
    config.write_text(original.replace("alarm_email:", "alarm_email: ops@example.com")
                      .replace(".jpg, .png]", ".jpg, .png, .gif]"))
    assert pipectl("deploy", "--yes", timeout=300).code == 0
    topic = "arn:aws:sns:us-east-1:123456789012:pipectl-demo-dev-alarms"
    sns = client("sns")
    assert topic in {t["TopicArn"] for t in sns.list_topics()["Topics"]}
    sns.create_topic(Name="pipectl-demo-dev-someone-elses")   # untagged, pipectl-like name

    # when both are taken out
    config.write_text(original)
    plan = pipectl("deploy", "--yes", "--detailed-exitcode", "-o", "json")

    # then the topic is deleted (it holds no data), the rule goes, and the rest stays
    assert plan.code == 2, plan.err
    planned = steps(plan)
    assert planned[("topic", "pipectl-demo-dev-alarms")]["action"] == "delete"
    assert planned[("topic", "pipectl-demo-dev-alarms")]["reason"] == "no longer in pipeline.yaml"
    rule = planned[("notification", "pipectl-demo-dev-raw-123456789012")]
    assert [(c["field"], c["after"]) for c in rule["changes"]] == [
        ("queue_rules.pipectl-demo-dev-incoming-gif", None)]
    topics = {t["TopicArn"] for t in sns.list_topics()["Topics"]}
    assert topic not in topics
    assert topic.replace("alarms", "someone-elses") in topics
    rules = client("s3").get_bucket_notification_configuration(
        Bucket="pipectl-demo-dev-raw-123456789012")["QueueConfigurations"]
    assert "pipectl-demo-dev-incoming-gif" not in {r["Id"] for r in rules}
    assert "pipectl-demo-dev-incoming-csv" in {r["Id"] for r in rules}
    assert pipectl("deploy", "--dry-run", "--detailed-exitcode").code == 0


def test_a_renamed_raw_bucket_loses_its_rules_and_is_kept_while_it_holds_objects(
        pipectl, pipeline_dir, client):
    # given a deployed pipeline whose raw bucket holds an upload
    old = "pipectl-demo-dev-raw-123456789012"
    assert pipectl("deploy", "--yes", timeout=300).code == 0
    s3 = client("s3")
    s3.put_object(Bucket=old, Key="notes/keep.txt", Body=b"keep me")

    # when buckets.raw names another bucket
    config = pipeline_dir / "pipeline.yaml"
    config.write_text(config.read_text().replace("  raw:   ", "  raw: pipectl-demo-raw-v2"))
    done = pipectl("deploy", "--yes", "--detailed-exitcode", "-o", "json")

    # then the new bucket is made, the old one stops sending to the queue and is kept
    assert done.code == 2, done.err
    planned = steps(done)
    assert planned[("bucket", "pipectl-demo-raw-v2")]["action"] == "create"
    assert planned[("notification", old)]["action"] == "delete"
    assert planned[("bucket", old)]["reason"] == (
        "kept: holds objects and their versions (pass --purge to delete them)")
    assert s3.get_bucket_notification_configuration(Bucket=old).get(
        "QueueConfigurations", []) == []
    assert s3.get_object(Bucket=old, Key="notes/keep.txt")["Body"].read() == b"keep me"
    assert pipectl("deploy", "--dry-run", "--detailed-exitcode").code == 0

    # and --purge empties and deletes it
    assert pipectl("deploy", "--yes", "--purge").code == 0
    assert old not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
