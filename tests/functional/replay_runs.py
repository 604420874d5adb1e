"""replay-dlq's domain function run as the command runs it, and the results table that
--skip-done and a dry run read, for the replay tests under mock_aws."""

from __future__ import annotations

import boto3

from pipectl.aws import dynamodb
from pipectl.naming import RESULTS_PARTITION_KEY, STATUS_INDEX, STATUS_INDEX_KEYS, Names
from pipectl.ops import replay as replay_ops
from pipectl.ops.dead_letters import ReplayOptions, ReplayReport
from tests.helpers import result_item


def run(aws, names: Names, queue: str = "processing", **options) -> ReplayReport:
    """Replay `queue`'s dead letters with these ReplayOptions (and `to`, as --to)."""
    dlq, source = replay_ops.queue_pair(names, queue)
    route = replay_ops.locate(aws.client("sqs"), dlq, source, options.pop("to", None))
    return replay_ops.replay(aws, names, route, ReplayOptions(**options))


def results_table(names: Names, rows: dict[str, str], kind: str = "csv") -> None:
    """The results table as deploy makes it, with a row of status rows[key] for each key."""
    ddb = boto3.client("dynamodb", region_name="us-east-1")
    dynamodb.create_table(ddb, names.results_table, partition_key=RESULTS_PARTITION_KEY,
                          indexes={STATUS_INDEX: STATUS_INDEX_KEYS}, tags={})
    for key, status in rows.items():
        ddb.put_item(TableName=names.results_table, Item=result_item(
            names.bucket("raw"), key, key=key, bucket=names.bucket("raw"), status=status,
            kind=kind, updated_at="2026-11-23T14:00:00+00:00"))
