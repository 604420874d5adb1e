"""The emulator's moto patches (pipectl/local/moto_patches.py) change cost, not behaviour.

Every behaviour test runs twice, on plain moto and on patched moto, with the same
assertions; the generated ones run one sequence of calls on both and compare everything
a client can observe.
"""

from __future__ import annotations

import gc
import sys
import threading

import boto3
import moto
import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID

from pipectl.local import moto_patches
from pipectl.local.moto_patches import patch_moto

TABLE, RANGED = "results", "ranged"


def plain(monkeypatch) -> None:
    """moto as released, even if an earlier test in this process patched it for good."""
    for p in moto_patches._patches():
        while getattr(moto_patches._current(p), "moto_patch", False):
            monkeypatch.setattr(p.owner, p.name, moto_patches._current(p).replaces)


def use(variant: str, monkeypatch) -> None:
    plain(monkeypatch)
    if variant == "patched":
        assert patch_moto(monkeypatch.setattr)


def on_plain_and_patched(run, *args) -> dict:
    """What run(*args) observes on plain moto and on patched moto, by variant."""
    observed = {}
    for name in ("plain", "patched"):
        with pytest.MonkeyPatch.context() as monkeypatch:
            use(name, monkeypatch)
            observed[name] = run(*args)
    return observed


@pytest.fixture(params=["plain", "patched"])
def variant(request, monkeypatch):
    use(request.param, monkeypatch)
    return request.param


@pytest.fixture
def ddb(variant):
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        make_tables(client)
        yield client


@pytest.fixture
def sqs(variant):
    with mock_aws():
        yield boto3.client("sqs", region_name="us-east-1")


def make_tables(client) -> None:
    stream = {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                        StreamSpecification=stream)
    client.create_table(TableName=RANGED, BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "S"}])


def scan(client, table: str) -> list[dict]:
    items = client.scan(TableName=table, ConsistentRead=True)["Items"]
    return sorted(items, key=lambda item: (item["pk"]["S"], item.get("sk", {}).get("S", "")))


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


# --- SQS ---------------------------------------------------------------------------------

def attributes(sqs, url: str) -> dict[str, str]:
    got = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return {k: got[k] for k in ("ApproximateNumberOfMessages",
                                "ApproximateNumberOfMessagesNotVisible",
                                "ApproximateNumberOfMessagesDelayed")}


def receive(sqs, url: str, n: int = 10, visibility: int = 300) -> list[dict]:
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=n, VisibilityTimeout=visibility,
                               MessageSystemAttributeNames=["ApproximateReceiveCount"],
                               WaitTimeSeconds=0).get("Messages", [])


def test_a_received_message_is_hidden_for_its_visibility_timeout_then_counts_again(sqs):
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="one")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=300)

    first = receive(sqs, url)
    hidden = receive(sqs, url)
    counts = attributes(sqs, url)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"],
                                  VisibilityTimeout=0)
    again = receive(sqs, url)

    assert [m["Body"] for m in first] == ["one"] and hidden == []
    assert counts == {"ApproximateNumberOfMessages": "0",
                      "ApproximateNumberOfMessagesNotVisible": "1",
                      "ApproximateNumberOfMessagesDelayed": "1"}
    assert [(m["Body"], m["Attributes"]["ApproximateReceiveCount"]) for m in again] == [
        ("one", "2")]


def test_after_max_receive_count_a_message_moves_to_the_dead_letter_queue(sqs):
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName="q", Attributes={
        "RedrivePolicy": f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": "2"}}'})[
        "QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="poison")

    counts = [m["Attributes"]["ApproximateReceiveCount"]
              for _ in range(3) for m in receive(sqs, url, visibility=0)]

    assert counts == ["1", "2"]
    assert attributes(sqs, url)["ApproximateNumberOfMessages"] == "0"
    assert [m["Body"] for m in receive(sqs, dlq)] == ["poison"]


def test_a_message_older_than_the_retention_period_is_not_delivered(sqs):
    from moto.sqs.models import sqs_backends

    url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "60"})[
        "QueueUrl"]
    for body in ("old", "new"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    # as if "old" was sent two minutes ago (moto keeps sent_timestamp in milliseconds)
    queue = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].queues["q"]
    queue._messages[0].sent_timestamp -= 120_000

    assert receive(sqs, url) == []  # moto stops the receive at an expired message
    assert attributes(sqs, url)["ApproximateNumberOfMessagesNotVisible"] == "1"


SQS_STEPS = st.lists(st.one_of(
    st.tuples(st.just("send"), st.integers(1, 12), st.sampled_from([0, 300])),
    st.tuples(st.just("receive"), st.integers(1, 10), st.sampled_from([0, 300])),
    st.tuples(st.just("delete"), st.integers(0, 20), st.just(0)),
    st.tuples(st.just("release"), st.integers(0, 20), st.just(0))), min_size=1, max_size=12)


def run_sqs(steps) -> list:
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        url = sqs.create_queue(QueueName="q", Attributes={
            "RedrivePolicy": f'{{"deadLetterTargetArn": "{arn}", "maxReceiveCount": "3"}}'})[
            "QueueUrl"]
        handles, seen, sent = [], [], 0
        for kind, n, seconds in steps:
            if kind == "send":
                sqs.send_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "MessageBody": f"m{sent + i}", "DelaySeconds": seconds}
                    for i in range(min(n, 10))])
                sent += min(n, 10)
            elif kind == "receive":
                got = receive(sqs, url, n, seconds)
                handles += [m["ReceiptHandle"] for m in got]
                seen.append([(m["Body"], m["Attributes"]["ApproximateReceiveCount"])
                             for m in got])
            elif handles:
                handle = handles.pop(n % len(handles))
                try:
                    if kind == "delete":
                        sqs.delete_message(QueueUrl=url, ReceiptHandle=handle)
                    else:
                        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle,
                                                      VisibilityTimeout=0)
                    seen.append(kind)
                except ClientError as exc:
                    seen.append(exc.response["Error"]["Code"])
            seen.append(attributes(sqs, url))
        seen.append(sorted(m["Body"] for m in receive(sqs, dlq)))
        return seen


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(SQS_STEPS)
def test_generated_queue_traffic_looks_the_same_on_plain_and_patched_moto(steps):
    observed = on_plain_and_patched(run_sqs, steps)
    assert observed["patched"] == observed["plain"]


# --- the version guard -------------------------------------------------------------------

def test_another_moto_release_runs_plain_with_one_warning(monkeypatch):
    plain(monkeypatch)
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    lines: list[str] = []

    assert patch_moto(monkeypatch.setattr, lines.append) is False
    assert lines == ["moto 5.3.0 is not the release pipectl's emulator patches were "
                     "written for (5.2.1): running plain moto, which slows down as queues "
                     "and tables fill"]
    assert not any(getattr(moto_patches._current(p), "moto_patch", False)
                   for p in moto_patches._patches())


def test_changed_moto_code_under_the_same_version_runs_plain(monkeypatch):
    from moto.sqs.models import SQSBackend

    plain(monkeypatch)
    original = SQSBackend.receive_message
    monkeypatch.setattr(SQSBackend, "receive_message",
                        lambda self, *a, **k: original(self, *a, **k))
    lines: list[str] = []

    assert patch_moto(monkeypatch.setattr, lines.append) is False
    assert lines == ["moto's receive_message is not the code pipectl's emulator patches were "
                     "written against: running plain moto, which slows down as queues and "
                     "tables fill"]
    assert not any(getattr(moto_patches._current(p), "moto_patch", False)
                   for p in moto_patches._patches())


def test_the_switch_turns_the_patches_off(monkeypatch):
    plain(monkeypatch)
    monkeypatch.setenv(moto_patches.SWITCH, "0")
    lines: list[str] = []

    assert patch_moto(monkeypatch.setattr, lines.append) is False
    assert lines == []
    assert not any(getattr(moto_patches._current(p), "moto_patch", False)
                   for p in moto_patches._patches())


def test_patching_is_idempotent_and_keeps_the_dynamodb_lock(monkeypatch):
    from moto.dynamodb.models import DynamoDBBackend

    from pipectl.local.emulator import atomic_dynamodb

    plain(monkeypatch)
    atomic_dynamodb(monkeypatch.setattr)  # the lock first, as a test fixture may add it
    assert patch_moto(monkeypatch.setattr) and patch_moto(monkeypatch.setattr)

    installed = DynamoDBBackend.__dict__["transact_write_items"]
    assert installed.moto_patch and installed.atomic
    assert not getattr(installed.replaces, "moto_patch", False)


# --- the server's backend per host --------------------------------------------------------

SERVICES = ["s3", "dynamodb", "sqs", "lambda", "logs", "iam", "sts", "events", "monitoring",
            "s3-control", "unknown-service"]
hosts = st.one_of(
    st.builds(lambda service, region: f"{service}.{region}.amazonaws.com",
              st.sampled_from(SERVICES), st.sampled_from(["us-east-1", "eu-west-1"])),
    st.builds(lambda bucket: f"{bucket}.s3.amazonaws.com",
              st.from_regex(r"[a-z0-9][a-z0-9-]{2,20}", fullmatch=True)),
    st.sampled_from([None, "moto_api", "s3", "dynamodb", "instance_metadata", "localhost",
                     "127.0.0.1:4566"]),
    st.text(st.characters(codec="ascii", exclude_categories=("Cc",)), max_size=30))


def dispatcher(variant: str, monkeypatch):
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    use(variant, monkeypatch)
    return DomainDispatcherApplication(create_backend_app)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(asked=st.lists(hosts, min_size=1, max_size=8))
def test_a_backend_found_per_host_is_the_one_moto_finds(monkeypatch, capsys, asked):
    found = {}
    for variant in ("plain", "patched"):
        app = dispatcher(variant, monkeypatch)
        found[variant] = [app.get_backend_for_host(host) for host in asked + asked]
        capsys.readouterr()      # moto prints a line for an unknown amazonaws.com host

    assert found["patched"] == found["plain"]


def test_the_module_list_is_read_once_per_host(monkeypatch):
    from moto import backends

    app = dispatcher("patched", monkeypatch)
    listed = []
    original = backends.list_of_moto_modules
    monkeypatch.setattr(backends, "list_of_moto_modules",
                        lambda: listed.append(1) or original())

    for _ in range(3):
        assert app.get_backend_for_host("s3.us-east-1.amazonaws.com") == "s3"
        assert app.get_backend_for_host("sqs.us-east-1.amazonaws.com") == "sqs"

    assert len(listed) == 2


# --- SQS from many threads at once (the emulator's server runs a thread per request) -------

@pytest.fixture
def racy(monkeypatch):
    """Thread switches as often as CPython allows, so a race shows in a few hundred calls."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_concurrent_deletes_and_sends_lose_nothing_on_patched_moto(monkeypatch, racy):
    use("patched", monkeypatch)
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        url = client.create_queue(QueueName="busy")["QueueUrl"]
        for first in range(0, 200, 10):
            client.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "MessageBody": f"old-{i}"} for i in range(first, first + 10)])
        received = []
        while len(received) < 200:
            received += client.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                               VisibilityTimeout=300)["Messages"]

        # when four threads delete every received message while another sends 200 more
        def delete(part: list[dict]) -> None:
            for m in part:
                client.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])

        def send() -> None:
            for i in range(200):
                client.send_message(QueueUrl=url, MessageBody=f"new-{i}")

        threads = [threading.Thread(target=delete, args=(received[k::4],)) for k in range(4)]
        threads.append(threading.Thread(target=send))
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        # then exactly the 200 new ones are left (a deleted one brought back would be
        # in flight until its visibility timeout), each delivered once
        counts = client.get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
        assert counts["Attributes"] == {"ApproximateNumberOfMessages": "200",
                                        "ApproximateNumberOfMessagesNotVisible": "0"}
        left = []
        while batch := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                              VisibilityTimeout=300).get("Messages"):
            left += [m["Body"] for m in batch]
    assert sorted(left) == sorted(f"new-{i}" for i in range(200))


def test_concurrent_receives_take_each_message_once_on_patched_moto(monkeypatch, racy):
    use("patched", monkeypatch)
    with mock_aws():
        client = boto3.client("sqs", region_name="us-east-1")
        url = client.create_queue(QueueName="shared")["QueueUrl"]
        for first in range(0, 300, 10):
            client.send_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "MessageBody": str(i)} for i in range(first, first + 10)])
        taken: list[str] = []

        def receive() -> None:
            while batch := client.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                  VisibilityTimeout=300).get("Messages"):
                taken.extend(m["Body"] for m in batch)

        threads = [threading.Thread(target=receive) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(taken, key=int) == [str(i) for i in range(300)]
