"""moto's costs that grow with what it holds, plain and with pipectl's patches, in one run.

    python bench/moto_costs.py [--rows 2000] [--depth 2000]

In process (mock_aws), so only moto's own work is timed: one TransactWriteItems (a Put
and a counter Update, as the processor's) beside a table of --rows items; one
ReceiveMessage(10) and one SendMessageBatch(10) on a queue --depth messages deep. Plain
moto first, then the same after pipectl/local/moto_patches/ is applied.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import boto3
from moto import mock_aws

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipectl.local.moto_patches import patch_moto  # noqa: E402

REPEAT = 10


def timed(call) -> float:
    started = time.perf_counter()
    for i in range(REPEAT):
        call(i)
    return (time.perf_counter() - started) / REPEAT * 1000


def measure(rows: int, depth: int) -> dict[str, float]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name="us-east-1")
        ddb.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        for i in range(rows):
            ddb.put_item(TableName="t", Item={"pk": {"S": f"k{i}"}, "v": {"S": "x" * 100}})
        transact = timed(lambda i: ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": "t", "Item": {"pk": {"S": f"new{i}"}},
                     "ConditionExpression": "attribute_not_exists(pk)"}},
            {"Update": {"TableName": "t", "Key": {"pk": {"S": "__counters__"}},
                        "UpdateExpression": "ADD n :one",
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}}]))

        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        batch = [{"Id": str(j), "MessageBody": "{}"} for j in range(10)]
        for _ in range(0, depth, 10):
            sqs.send_message_batch(QueueUrl=url, Entries=batch)
        receive = timed(lambda i: sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                      VisibilityTimeout=300))
        send = timed(lambda i: sqs.send_message_batch(QueueUrl=url, Entries=batch))
    return {"TransactWriteItems": transact, "ReceiveMessage(10)": receive,
            "SendMessageBatch(10)": send}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--depth", type=int, default=2000)
    args = parser.parse_args()

    plain = measure(args.rows, args.depth)
    if not patch_moto(notice=print):
        raise SystemExit("the patches did not apply to this moto")
    patched = measure(args.rows, args.depth)
    print(f"ms per call, {args.rows} rows in the table, {args.depth} messages in the queue")
    for name in plain:
        print(f"  {name:<22} plain {plain[name]:8.1f}   patched {patched[name]:8.1f}   "
              f"{plain[name] / patched[name]:6.1f}x")


if __name__ == "__main__":
    main()
