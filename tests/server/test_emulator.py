"""The embedded emulator keeps DynamoDB's atomicity, which the handlers' counting relies on."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest

from pipectl.local.emulator import SWITCH_INTERVAL, Emulator

pytestmark = pytest.mark.server

TABLE = "counted"


def _transact(ddb, key: str) -> bool:
    """A row created and a counter added in one transaction, as row_access.transition does."""
    try:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": key}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "__counters__"}},
                        "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}}])
        return True
    except ddb.exceptions.TransactionCanceledException:
        return False


def test_concurrent_transactions_count_exactly_and_undo_nobody_elses_writes():
    with Emulator(port=0) as emulator:
        ddb = boto3.client("dynamodb", endpoint_url=emulator.endpoint, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        # given every key attempted twice, so half the transactions fail their condition
        # (moto restores its table snapshot on those) while others are writing
        keys = [f"k{i}" for i in range(150)] * 2

        # when eight clients race
        with ThreadPoolExecutor(max_workers=8) as pool:
            won = sum(pool.map(lambda key: _transact(ddb, key), keys))

        # then exactly one attempt per key won, and the counter and the rows agree
        rows = ddb.scan(TableName=TABLE, ConsistentRead=True)["Items"]
        counted = next(int(r["n"]["N"]) for r in rows if r["pk"]["S"] == "__counters__")
        assert won == 150
        assert (counted, len(rows) - 1) == (150, 150)


def test_the_embedded_emulator_runs_moto_patched_for_bursts():
    from moto.dynamodb.models import DynamoDBBackend
    from moto.sqs.models import SQSBackend

    with Emulator(port=0) as emulator:
        assert emulator.patched
        assert DynamoDBBackend.transact_write_items.moto_patch
        assert DynamoDBBackend.transact_write_items.atomic  # still under the one lock
        assert SQSBackend.receive_message.moto_patch


def test_the_emulator_lengthens_the_gil_switch_interval_for_its_life_only():
    before = sys.getswitchinterval()
    with Emulator(port=0):
        assert sys.getswitchinterval() == max(SWITCH_INTERVAL, before)
    assert sys.getswitchinterval() == before
