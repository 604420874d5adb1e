"""The emulator's DynamoDB patches (pipectl/local/moto_patches/dynamodb.py) change cost,
not behaviour: each test runs on plain and patched moto with the same assertions, and the
generated ones compare everything a client can observe."""

from __future__ import annotations

import gc

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from tests.functional.moto_patches.variants import (
    RANGED,
    TABLE,
    make_tables,
    on_plain_and_patched,
    scan,
    use,
)


def stream_events(client) -> list[tuple[str, dict, dict]]:
    streams = boto3.client("dynamodbstreams", region_name="us-east-1")
    arn = client.describe_table(TableName=TABLE)["Table"]["LatestStreamArn"]
    shard = streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return [(r["eventName"], r["dynamodb"].get("OldImage", {}), r["dynamodb"].get("NewImage", {}))
            for r in streams.get_records(ShardIterator=iterator)["Records"]]


def cancellation(call) -> list[dict]:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    return caught.value.response["CancellationReasons"]


# --- DynamoDB transactions -----------------------------------------------------------------

def test_a_cancelled_transaction_undoes_its_writes_and_says_which_condition_failed(ddb):
    # given two rows and a counter
    for pk in ("a", "b"):
        ddb.put_item(TableName=TABLE, Item={"pk": {"S": pk}, "status": {"S": "PROCESSING"}})
    ddb.put_item(TableName=RANGED, Item={"pk": {"S": "c"}, "sk": {"S": "1"}, "n": {"N": "1"}})
    before = (scan(ddb, TABLE), scan(ddb, RANGED), stream_events(ddb))

    # when a transaction writes three items, then fails its last condition
    reasons = cancellation(lambda: ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "new"}}}},
        {"Update": {"TableName": RANGED, "Key": {"pk": {"S": "c"}, "sk": {"S": "1"}},
                    "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}},
        {"Delete": {"TableName": TABLE, "Key": {"pk": {"S": "a"}}}},
        {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "b"}},
                    "UpdateExpression": "SET #s = :done",
                    "ConditionExpression": "#s = :done",
                    "ExpressionAttributeNames": {"#s": "status"},
                    "ExpressionAttributeValues": {":done": {"S": "PROCESSED"}},
                    "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}}]))

    # then nothing it wrote remains (rows, counter, stream), and the reasons name the item
    assert (scan(ddb, TABLE), scan(ddb, RANGED), stream_events(ddb)) == before
    assert [r["Code"] for r in reasons] == ["None", "None", "None", "ConditionalCheckFailed"]
    assert reasons[3]["Item"] == {"pk": {"S": "b"}, "status": {"S": "PROCESSING"}}


def test_a_validation_error_mid_transaction_undoes_the_writes_before_it(ddb):
    ddb.put_item(TableName=RANGED, Item={"pk": {"S": "c"}, "sk": {"S": "1"}})
    before = (scan(ddb, TABLE), scan(ddb, RANGED))

    with pytest.raises(ClientError) as caught:
        ddb.transact_write_items(TransactItems=[
            {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "new"}}}},
            {"Delete": {"TableName": RANGED, "Key": {"pk": {"S": "c"}, "sk": {"S": "1"}}}},
            # the ranged table's key without its range key
            {"Delete": {"TableName": RANGED, "Key": {"pk": {"S": "c"}}}}])

    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert (scan(ddb, TABLE), scan(ddb, RANGED)) == before


def test_a_successful_transaction_writes_every_item(ddb):
    ddb.transact_write_items(TransactItems=[
        {"Put": {"TableName": TABLE, "Item": {"pk": {"S": "x"}},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Update": {"TableName": TABLE, "Key": {"pk": {"S": "__counters__"}},
                    "UpdateExpression": "ADD n :one",
                    "ExpressionAttributeValues": {":one": {"N": "1"}}}}])

    assert scan(ddb, TABLE) == [{"n": {"N": "1"}, "pk": {"S": "__counters__"}},
                                {"pk": {"S": "x"}}]


def test_patched_transactions_copy_no_table(monkeypatch):
    """moto deep-copies each named table per item and leaves the copies to the cyclic
    collector; the patch copies only the items, so no Table object is ever made."""
    from moto.dynamodb.models.table import Table

    use("patched", monkeypatch)
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        make_tables(client)
        gc.collect()
        gc.disable()
        try:
            for i in range(5):
                cancellation(lambda i=i: client.transact_write_items(TransactItems=[
                    {"Put": {"TableName": TABLE, "Item": {"pk": {"S": f"k{i}"}}}},
                    {"ConditionCheck": {"TableName": TABLE, "Key": {"pk": {"S": "absent"}},
                                        "ConditionExpression": "attribute_exists(pk)"}}]))
            tables = sum(isinstance(o, Table) for o in gc.get_objects())
        finally:
            gc.enable()
    assert tables == 2  # the two this test created


PKS = st.sampled_from(["a", "b", "c"])
CONDITIONS = st.sampled_from([None, "attribute_exists(pk)", "attribute_not_exists(pk)"])


@st.composite
def operations(draw) -> dict:
    kind = draw(st.sampled_from(["Put", "Update", "Delete", "ConditionCheck"]))
    pk = draw(PKS)
    condition = draw(CONDITIONS)
    if kind == "Put":
        op = {"Item": {"pk": {"S": pk}, "v": {"S": draw(st.text(max_size=8))}}}
    else:
        op = {"Key": {"pk": {"S": pk}}}
    if kind == "Update":
        op.update(UpdateExpression="ADD n :one", ExpressionAttributeValues={":one": {"N": "1"}})
    if kind == "ConditionCheck" or condition:
        op["ConditionExpression"] = condition or "attribute_exists(pk)"
        op["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return {kind: {"TableName": TABLE, **op}}


def run_transactions(transactions: list[list[dict]]) -> tuple:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        make_tables(client)
        outcomes = []
        for items in transactions:
            try:
                client.transact_write_items(TransactItems=items)
                outcomes.append("ok")
            except ClientError as exc:
                outcomes.append((exc.response["Error"]["Code"],
                                 exc.response.get("CancellationReasons")))
        return outcomes, scan(client, TABLE), stream_events(client)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(operations(), min_size=1, max_size=4), min_size=1, max_size=6))
def test_generated_transactions_end_the_same_on_plain_and_patched_moto(transactions):
    observed = on_plain_and_patched(run_transactions, transactions)
    assert observed["patched"] == observed["plain"]


# --- DynamoDB update expressions ----------------------------------------------------------

PATHS = st.sampled_from(["a", "b", "pk", "sk", "a.b", "#x", "#y", "#x.b"])
ACTIONS = st.one_of(
    st.builds(lambda path, value: f"{path} = {value}", PATHS,
              st.sampled_from([":s", ":n", "if_not_exists(a, :n)", "a + :n", ":missing"])),
    st.builds(lambda path: f"{path} :n", PATHS),
    PATHS)


@st.composite
def update_requests(draw) -> dict:
    """An UpdateItem as a client may send it, valid or not: clauses in any number (SET, ADD
    and REMOVE, repeated or not), paths that overlap or name a key, placeholders that
    are defined or not, and now and then text that does not parse."""
    clauses = draw(st.lists(st.tuples(st.sampled_from(["SET", "ADD", "REMOVE"]),
                                      st.lists(ACTIONS, min_size=1, max_size=3)),
                            min_size=1, max_size=3))
    expression = " ".join(f"{word} {', '.join(actions)}" for word, actions in clauses)
    if draw(st.integers(0, 9)) == 0:
        expression += draw(st.sampled_from([" ,", " SET", " = :s", ")"]))
    names = draw(st.dictionaries(st.sampled_from(["#x", "#y"]),
                                 st.sampled_from(["a", "b", "pk", "sk"])))
    request = {"TableName": draw(st.sampled_from([TABLE, RANGED])),
               "UpdateExpression": expression,
               "ExpressionAttributeValues": {":s": {"S": "v"}, ":n": {"N": "1"}}}
    request["Key"] = {"pk": {"S": "k"}, **({"sk": {"S": "1"}} if request["TableName"] == RANGED
                                          else {})}
    if names:
        request["ExpressionAttributeNames"] = names
    return request


def run_updates(requests: list[dict]) -> tuple:
    """Each request twice (the second sees what the first left), on one fresh moto."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        make_tables(client)
        outcomes = []
        for request in requests + requests:
            try:
                outcomes.append(client.update_item(**request, ReturnValues="ALL_NEW")
                                .get("Attributes"))
            except ClientError as exc:
                outcomes.append((exc.response["Error"]["Code"],
                                 exc.response["Error"]["Message"]))
        return outcomes, scan(client, TABLE), scan(client, RANGED)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(update_requests(), min_size=1, max_size=6))
def test_generated_update_expressions_answer_the_same_on_plain_and_patched_moto(requests):
    observed = on_plain_and_patched(run_updates, requests)
    assert observed["patched"] == observed["plain"]


def test_an_expression_is_checked_per_names_and_table_not_only_per_text(ddb):
    overlap = {"UpdateExpression": "SET #x = :s, #y = :s",
               "ExpressionAttributeValues": {":s": {"S": "v"}}}
    key_update = {"UpdateExpression": "SET sk = :s",
                  "ExpressionAttributeValues": {":s": {"S": "v"}}}

    # the same text is fine with two names, then refused when both name one attribute
    ddb.update_item(TableName=TABLE, Key={"pk": {"S": "k"}}, **overlap,
                    ExpressionAttributeNames={"#x": "a", "#y": "b"})
    with pytest.raises(ClientError, match="Two document paths overlap"):
        ddb.update_item(TableName=TABLE, Key={"pk": {"S": "k"}}, **overlap,
                        ExpressionAttributeNames={"#x": "a", "#y": "a"})
    # and setting sk is fine where sk is an attribute, refused where it is the range key
    ddb.update_item(TableName=TABLE, Key={"pk": {"S": "k"}}, **key_update)
    with pytest.raises(ClientError, match="part of the key"):
        ddb.update_item(TableName=RANGED, Key={"pk": {"S": "k"}, "sk": {"S": "1"}},
                        **key_update)
    assert scan(ddb, TABLE) == [{"pk": {"S": "k"}, "a": {"S": "v"}, "b": {"S": "v"},
                                 "sk": {"S": "v"}}]


def test_patched_moto_parses_checks_and_copies_an_expression_cheaply(monkeypatch):
    from moto.dynamodb.parsing import validators
    from moto.dynamodb.parsing.tokens import ExpressionTokenizer

    use("patched", monkeypatch)
    seen = {"tokenized": 0, "counted": 0, "deep-copied": 0}
    tokenize, count = ExpressionTokenizer.make_list, validators.ActionCountValidator.traverse
    deepcopy = validators.deepcopy

    def tokenized(expression):
        seen["tokenized"] += 1
        return tokenize(expression)

    def counted(self, node):
        seen["counted"] += 1
        return count(self, node)

    def deep_copied(value, *args):
        seen["deep-copied"] += 1
        return deepcopy(value, *args)

    monkeypatch.setattr(ExpressionTokenizer, "make_list", staticmethod(tokenized))
    monkeypatch.setattr(validators.ActionCountValidator, "traverse", counted)
    monkeypatch.setattr(validators, "deepcopy", deep_copied)
    expression = "SET checked_once = :n ADD hits :n"   # a text no other test sends
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        make_tables(client)
        for _ in range(5):
            client.update_item(TableName=TABLE, Key={"pk": {"S": "k"}},
                               UpdateExpression=expression,
                               ExpressionAttributeValues={":n": {"N": "1"}})
        assert scan(client, TABLE)[0]["hits"] == {"N": "5"}

    # plain moto tokenizes it twice per request (10), and per validation (twice for the
    # request that creates the item: 6) runs the action count and deep-copies the tree
    assert seen == {"tokenized": 1, "counted": 1, "deep-copied": 0}
