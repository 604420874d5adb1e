"""The processor's AWS world under moto: raw and processed buckets, results table, queue."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from urllib.parse import quote_plus

import pytest
from moto import mock_aws

from pipectl.naming import row_key
from tests.helpers import ACCOUNT, Queues

EVENTS = Path(__file__).resolve().parents[1] / "events"
RAW, PROCESSED, TABLE = "raw-bucket", "processed-bucket", "pipectl-demo-dev-results"


class World:
    def __init__(self, s3, dynamodb):
        self.s3 = s3
        self.table = dynamodb.Table(TABLE)
        self._next_id = 0

    def upload(self, key: str, body: bytes | str) -> str:
        data = body.encode() if isinstance(body, str) else body
        return self.s3.put_object(Bucket=RAW, Key=key, Body=data)["ETag"]

    def message(self, key: str, encode_slash: bool = False, version_id: str | None = None,
                bucket: str = RAW) -> dict:
        """An SQS message carrying S3's notification for `key`, encoded as S3 encodes it
        (with the versionId a versioned bucket's notifications carry, when given)."""
        template = json.loads((EVENTS / "sqs_s3_put.json").read_text())["Records"][0]
        body = json.loads(template["body"])
        record = body["Records"][0]
        record["s3"]["bucket"]["name"] = bucket
        if version_id is not None:
            record["s3"]["object"]["versionId"] = version_id
        # AWS: space -> "+", "+" -> "%2B", "/" kept; moto also encodes "/" as %2F.
        record["s3"]["object"]["key"] = quote_plus(key, safe="" if encode_slash else "/")
        message = copy.deepcopy(template)
        self._next_id += 1
        message["messageId"] = f"message-{self._next_id}"
        message["body"] = json.dumps(body)
        return message

    @staticmethod
    def event(*messages: dict) -> dict:
        return {"Records": list(messages)}

    def row(self, key: str, bucket: str = RAW) -> dict | None:
        """The results row of bucket/key (rows are keyed by both); __counters__ as it is."""
        row_id = key if key.startswith("__") else row_key(bucket, key)
        return self.table.get_item(Key={"object_key": row_id}, ConsistentRead=True).get("Item")

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        r = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for o in r.get("Contents", []))

    def read(self, bucket: str, key: str) -> str:
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode()

    def versions(self, bucket: str, prefix: str) -> list[dict]:
        return self.s3.list_object_versions(Bucket=bucket, Prefix=prefix).get("Versions", [])


@pytest.fixture
def atomic_dynamodb(monkeypatch):
    """DynamoDB's guarantee that moto lacks: each write and transaction is atomic (see
    pipectl/local/emulator.py), for tests that run handlers on threads under mock_aws."""
    from pipectl.local.emulator import atomic_dynamodb

    atomic_dynamodb(monkeypatch.setattr)


@pytest.fixture
def aws_world(monkeypatch):
    """moto with the buckets, table and queue the processor expects, and its environment."""
    import boto3
    import processor

    for name, value in {"PIPELINE": "pipectl-demo", "ENVIRONMENT": "test", "RAW_BUCKET": RAW,
                        "PROCESSED_BUCKET": PROCESSED, "RESULTS_TABLE": TABLE}.items():
        monkeypatch.setenv(name, value)
    for name in ("INCOMING_PREFIX", "COMPLETED_PREFIX", "FAILED_PREFIX", "PROCESSED_PREFIX"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        processor.reset_clients()
        s3 = boto3.client("s3")
        for bucket in (RAW, PROCESSED):
            s3.create_bucket(Bucket=bucket)
            s3.put_bucket_versioning(Bucket=bucket,
                                     VersioningConfiguration={"Status": "Enabled"})
        dynamodb = boto3.resource("dynamodb")
        dynamodb.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "object_key", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"}
                                  for n in ("object_key", "status", "updated_at")],
            GlobalSecondaryIndexes=[{
                "IndexName": "by-status",
                "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"},
                              {"AttributeName": "updated_at", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"}}])
        boto3.client("sqs").create_queue(QueueName="pipectl-demo-test-processing")
        yield World(s3, dynamodb)
        processor.reset_clients()


# The repository's pipeline under mock_aws: moto intercepts boto3 only without an
# endpoint, so the pipeline gets a plain AWS target as its default.


def with_aws_target(text: str) -> str:
    text = text.replace("default_target: local", "default_target: aws")
    return text.replace("targets:\n", "targets:\n  aws:\n    region: us-east-1\n", 1)


@pytest.fixture
def cfg(pipeline_dir):
    from pipectl import config as config_module

    path = pipeline_dir / "pipeline.yaml"
    path.write_text(with_aws_target(path.read_text()))
    return config_module.load(path)


@pytest.fixture
def aws(cfg, monkeypatch):
    from pipectl.aws.session import Aws
    from pipectl.local.emulator import lifecycle_size_filters

    lifecycle_size_filters(monkeypatch.setattr)  # as pipectl's emulator keeps them
    with mock_aws():
        yield Aws.for_target(cfg.target("aws"))


@pytest.fixture
def names(cfg, aws):
    from pipectl.naming import Names

    return Names(cfg, ACCOUNT, "us-east-1")


@pytest.fixture
def deployed(aws, cfg, names):
    """The whole pipeline, deployed by the real deploy engine."""
    import boto3

    from pipectl.deploy import engine

    engine.apply(aws, engine.build_plan(aws, cfg))
    # moto applies the TLS-only Deny without its aws:SecureTransport condition and would
    # refuse the tests' own https writes; AWS would not. deploy tests read it back.
    s3 = boto3.client("s3", region_name="us-east-1")
    for bucket in names.bucket_roles().values():
        s3.delete_bucket_policy(Bucket=bucket)
    return names


@pytest.fixture
def queues(aws, names):
    """The processing queue and its dead-letter queue (tests.helpers.Queues)."""
    return Queues.of(names)
