"""DynamoDB: the results table's definition and the reads the operator's views make."""

from __future__ import annotations

import time
from functools import cache

from botocore.exceptions import ClientError

from pipectl.aws.session import error_code, gone_is_done
from pipectl.errors import AwsError


@cache
def _deserializer():
    # On first use: importing boto3 costs about 150 ms, which `pipectl --help` should not pay.
    from boto3.dynamodb.types import TypeDeserializer

    return TypeDeserializer()


def describe_table(ddb, name: str) -> dict | None:
    try:
        return ddb.describe_table(TableName=name)["Table"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def create_table(ddb, name: str, *, partition_key: str, indexes: dict[str, tuple[str, str]],
                 tags: dict[str, str]) -> None:
    attributes = {partition_key} | {k for pair in indexes.values() for k in pair}
    kwargs = {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"}
                                 for a in sorted(attributes)],
        "KeySchema": [{"AttributeName": partition_key, "KeyType": "HASH"}],
        "SSESpecification": {"Enabled": True},
        "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
    }
    if indexes:
        kwargs["GlobalSecondaryIndexes"] = [_index(i, pk, sk) for i, (pk, sk) in indexes.items()]
    ddb.create_table(**kwargs)
    # A new table is CREATING for a few seconds on AWS; writes before ACTIVE fail.
    ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 2,
                                                                       "MaxAttempts": 60})


def add_index(ddb, name: str, index: str, partition_key: str, sort_key: str) -> None:
    ddb.update_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": partition_key, "AttributeType": "S"},
                              {"AttributeName": sort_key, "AttributeType": "S"}],
        GlobalSecondaryIndexUpdates=[{"Create": _index(index, partition_key, sort_key)}])


def point_in_time_recovery(ddb, name: str) -> bool:
    found = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    status = found.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
    return status == "ENABLED"


def enable_point_in_time_recovery(ddb, name: str) -> None:
    ddb.update_continuous_backups(
        TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True})


def _index(name: str, partition_key: str, sort_key: str) -> dict:
    return {"IndexName": name,
            "KeySchema": [{"AttributeName": partition_key, "KeyType": "HASH"},
                          {"AttributeName": sort_key, "KeyType": "RANGE"}],
            "Projection": {"ProjectionType": "ALL"}}


def _plain(item: dict) -> dict:
    return {k: _deserializer().deserialize(v) for k, v in item.items()}


def get_item(ddb, table: str, key: dict[str, str]) -> dict | None:
    found = ddb.get_item(TableName=table, Key={k: {"S": v} for k, v in key.items()},
                         ConsistentRead=True).get("Item")
    return _plain(found) if found else None


# BatchGetItem takes at most 100 keys per call; what it leaves unread (throttling, or the
# 16 MB answer limit) comes back as UnprocessedKeys, to ask again.
BATCH_GET_KEYS = 100


def batch_get(ddb, table: str, attribute: str, values: list[str]) -> dict[str, dict]:
    """The items whose `attribute` (the partition key) is one of values, by that value;
    strongly consistent, 100 keys per call, unprocessed keys asked again with backoff."""
    found: dict[str, dict] = {}
    for first in range(0, len(values), BATCH_GET_KEYS):
        request = {table: {"Keys": [{attribute: {"S": v}}
                                    for v in dict.fromkeys(values[first:first + BATCH_GET_KEYS])],
                           "ConsistentRead": True}}
        for attempt in range(10):
            answer = ddb.batch_get_item(RequestItems=request)
            for item in answer.get("Responses", {}).get(table, []):
                plain = _plain(item)
                found[plain[attribute]] = plain
            request = answer.get("UnprocessedKeys") or {}
            if not request:
                break
            time.sleep(min(0.05 * 2 ** attempt, 2.0))
        else:
            raise AwsError(f"DynamoDB left keys of table {table} unread after 10 attempts "
                           "(throttled); try again")
    return found


def query_index(ddb, table: str, index: str, partition: tuple[str, str], *,
                sort_at_least: tuple[str, str] | None = None, newest_first: bool = True,
                limit: int | None = None, count_only: bool = False) -> tuple[list[dict], int]:
    """Items (or just their count) from one index partition, following pagination."""
    names = {"#p": partition[0]}
    values = {":p": {"S": partition[1]}}
    condition = "#p = :p"
    if sort_at_least:
        names["#s"] = sort_at_least[0]
        values[":s"] = {"S": sort_at_least[1]}
        condition += " AND #s >= :s"
    kwargs = {"TableName": table, "IndexName": index, "KeyConditionExpression": condition,
              "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
              "ScanIndexForward": not newest_first}
    if count_only:
        kwargs["Select"] = "COUNT"
    items: list[dict] = []
    count = 0
    while True:
        if limit is not None and not count_only:
            kwargs["Limit"] = limit - len(items)
        page = ddb.query(**kwargs)
        count += page.get("Count", 0)
        items += [_plain(i) for i in page.get("Items", [])]
        if "LastEvaluatedKey" not in page or (limit is not None and len(items) >= limit):
            return items, count
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def query_page(ddb, table: str, index: str, partition: tuple[str, str], *,
               sort_between: tuple[str, str | None, str | None] | None = None,
               key_prefix: tuple[str, str] | None = None, newest_first: bool = True,
               limit: int, start_key: dict | None = None,
               equals: tuple[str, str, bool] | None = None) -> tuple[list[dict], dict | None]:
    """Up to `limit` items from one index partition, following pages until limit or the end.

    sort_between: (sort key name, lowest or None, highest or None), both inclusive.
    key_prefix: (attribute, prefix) applied as a FilterExpression; equals: (attribute,
    value, True for equal | False for differing or missing), also a filter. DynamoDB applies a
    filter after reading, so the filtered-out items are still read (and paid for), and
    Limit counts items read, not items returned. Returns the items and the key to resume
    after (None at the end), in DynamoDB's own (typed) form, ready for ExclusiveStartKey.
    """
    names = {"#p": partition[0]}
    values: dict = {":p": {"S": partition[1]}}
    condition = "#p = :p"
    if sort_between and (sort_between[1] or sort_between[2]):
        names["#s"] = sort_between[0]
        low, high = sort_between[1], sort_between[2]
        if low and high:
            condition += " AND #s BETWEEN :lo AND :hi"
            values.update({":lo": {"S": low}, ":hi": {"S": high}})
        elif low:
            condition += " AND #s >= :lo"
            values[":lo"] = {"S": low}
        else:
            condition += " AND #s <= :hi"
            values[":hi"] = {"S": high}
    kwargs = {"TableName": table, "IndexName": index, "KeyConditionExpression": condition,
              "ExpressionAttributeNames": names, "ExpressionAttributeValues": values,
              "ScanIndexForward": not newest_first}
    filters = []
    if key_prefix:
        names["#k"] = key_prefix[0]
        values[":k"] = {"S": key_prefix[1]}
        filters.append("begins_with(#k, :k)")
    if equals:
        names["#e"] = equals[0]
        values[":e"] = {"S": equals[1]}
        filters.append("#e = :e" if equals[2] else "(attribute_not_exists(#e) OR #e <> :e)")
    if filters:
        kwargs["FilterExpression"] = " AND ".join(filters)
    if start_key:
        kwargs["ExclusiveStartKey"] = start_key
    items: list[dict] = []
    while True:
        # Asking for no more than is still needed means a page never holds items past
        # the ones returned, so LastEvaluatedKey is exactly where the next page starts.
        kwargs["Limit"] = limit - len(items)
        page = ddb.query(**kwargs)
        items += [_plain(i) for i in page.get("Items", [])]
        last = page.get("LastEvaluatedKey")
        if last is None or len(items) >= limit:
            return items, last
        kwargs["ExclusiveStartKey"] = last


def count_items(ddb, name: str, *, at_most: int = 100_000) -> int:
    """How many items the table holds, counted by a Scan (Select=COUNT), stopping once
    past at_most. DescribeTable's ItemCount is refreshed only about every six hours."""
    count = 0
    for page in ddb.get_paginator("scan").paginate(TableName=name, Select="COUNT",
                                                    ConsistentRead=True):
        count += page["Count"]
        if count > at_most:
            break
    return count


def delete_table(ddb, name: str) -> None:
    with gone_is_done("ResourceNotFoundException"):
        ddb.delete_table(TableName=name)


def tags(ddb, arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for page in ddb.get_paginator("list_tags_of_resource")
            .paginate(ResourceArn=arn) for t in page.get("Tags", [])}


def tag(ddb, arn: str, wanted: dict[str, str]) -> None:
    ddb.tag_resource(ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in wanted.items()])


def owned_tags(ddb, arn: str) -> dict[str, str]:
    """The table's tags, or none when it went away since it was listed."""
    try:
        return tags(ddb, arn)
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return {}
        raise


def table_names(ddb) -> list[str]:
    return [n for page in ddb.get_paginator("list_tables").paginate()
            for n in page.get("TableNames", [])]
