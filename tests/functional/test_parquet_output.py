"""output.format parquet / jsonl.gz (issue 18): what the processor writes, read back by the
readers a data engineer uses (pyarrow, DuckDB over the emulator's S3)."""

from __future__ import annotations

import datetime
import gzip
import io
import json
from pathlib import Path

import boto3
import duckdb
import duckdb_extension_httpfs
import processor
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.functional.conftest import PROCESSED, RAW, TABLE, World

CSV = "User Name,Age,Signup Date,Score\nana,31,2026-01-02,1.5\nbo,,2026-01-03,2\ncy,44,,x\n"
JSONL = ('{"id": 1, "name": "ana", "tags": {"vip": true}}\n'
         '{"id": 2, "name": "bo", "score": 2.5}\n'
         '{"id": "three", "name": "cy"}\n')
SCHEMAS = [{"suffix": ".csv", "fields": {"age": {"type": "integer"},
                                         "signup_date": {"type": "date"},
                                         "score": {"type": "number"}},
            "max_reject_ratio": 1.0}]


def _parquet_env(monkeypatch, **more):
    monkeypatch.setenv("OUTPUT_FORMAT", "parquet")
    monkeypatch.setenv("RECORD_SCHEMAS", json.dumps(SCHEMAS))
    for name, value in more.items():
        monkeypatch.setenv(name, value)


def _process(world: World, *keys_bodies: tuple[str, str]) -> dict:
    for key, body in keys_bodies:
        world.upload(key, body)
    event = world.event(*(world.message(key) for key, _ in keys_bodies))
    assert processor.lambda_handler(event, None) == {"batchItemFailures": []}
    return {key: world.row(key) for key, _ in keys_bodies}


def test_csv_and_jsonl_become_typed_parquet_under_hive_partitions(aws_world, monkeypatch):
    # given format parquet, a schema typing the CSV's columns, and one CSV and one JSONL
    _parquet_env(monkeypatch)

    # when both are processed
    rows = _process(aws_world, ("incoming/users.csv", CSV), ("incoming/events.jsonl", JSONL))

    # then each output is Parquet under processed/dt=YYYY-MM-DD/ with the source's name
    outputs = {k: r["output"].split("/", 3)[3] for k, r in rows.items()}
    for key, out in outputs.items():
        assert rows[key]["status"] == "PROCESSED"
        day, name = out.removeprefix("processed/").split("/", 1)
        assert day.startswith("dt=") and len(day) == len("dt=2026-01-02")
        assert name == key.removeprefix("incoming/") + ".parquet"
    csv_table = _read(aws_world, outputs["incoming/users.csv"])
    # the schema's types (CSV strings converted as the validator reads them); the
    # record whose score is "x" failed the schema and went to rejects/, not the output
    assert csv_table.schema.field("age").type == pa.int64()
    assert csv_table.schema.field("signup_date").type == pa.date32()
    assert csv_table.schema.field("score").type == pa.float64()
    assert csv_table.schema.field("user_name").type == pa.string()
    assert pa.types.is_struct(csv_table.schema.field("_metadata").type)
    got = csv_table.drop(["_metadata"]).to_pylist()
    assert [r["user_name"] for r in got] == ["ana", "bo"]
    assert got[0]["age"] == 31 and got[1]["age"] is None and got[1]["score"] == 2.0
    assert rows["incoming/users.csv"]["records_rejected"] == 1
    # without a schema the JSONL's types are inferred from the first row group; "three"
    # does not fit the integer id column and goes to rejects/ with the reason
    jsonl_table = _read(aws_world, outputs["incoming/events.jsonl"])
    assert jsonl_table.schema.field("id").type == pa.int64()
    assert jsonl_table.schema.field("tags").type == pa.struct([("vip", pa.bool_())])
    assert jsonl_table.column("id").to_pylist() == [1, 2]
    row = rows["incoming/events.jsonl"]
    assert row["records_out"] == 2 and row["records_rejected"] == 1
    rejects_key = row["rejects"].split("/", 3)[3]
    assert rejects_key.startswith("rejects/dt=") and rejects_key.endswith(".jsonl")
    reject = json.loads(aws_world.read(PROCESSED, rejects_key))
    assert reject["record"] == {"id": "three", "name": "cy"}
    assert reject["reasons"] == ['id: expected an integer (the column\'s Parquet type), '
                                 'got "three"']


def test_a_field_the_first_row_group_never_had_is_rejected_not_dropped(aws_world, monkeypatch):
    # given row groups of 100 records, and a field that appears only in the 101st
    _parquet_env(monkeypatch, OUTPUT_ROW_GROUP_ROWS="100")
    lines = [json.dumps({"n": i}) for i in range(100)] + [json.dumps({"n": 100, "late": "x"}),
                                                         json.dumps({"n": 101})]
    row = _process(aws_world, ("incoming/late.jsonl", "\n".join(lines) + "\n"))[
        "incoming/late.jsonl"]
    # then the output has two row groups and every record but the late one
    data = _object(aws_world, row["output"].split("/", 3)[3])
    assert pq.ParquetFile(io.BytesIO(data)).num_row_groups == 2
    assert pq.read_table(io.BytesIO(data)).column("n").to_pylist() == [*range(100), 101]
    reject = json.loads(aws_world.read(PROCESSED, row["rejects"].split("/", 3)[3]))
    assert reject["record"] == {"n": 100, "late": "x"}
    assert reject["reasons"][0].startswith("late: not a column of this file's Parquet schema")


def test_jsonl_gz_is_the_jsonl_output_gzipped(aws_world, monkeypatch):
    # given the same file processed as JSON Lines and as gzipped JSON Lines
    plain = _process(aws_world, ("incoming/a.jsonl", JSONL))["incoming/a.jsonl"]
    monkeypatch.setenv("OUTPUT_FORMAT", "jsonl.gz")
    packed = _process(aws_world, ("incoming/b.jsonl", JSONL))["incoming/b.jsonl"]
    # then the gzipped output decompresses to the same lines (the source differs only)
    assert packed["output"].endswith("/b.jsonl.jsonl.gz")
    text = gzip.decompress(_object(aws_world, packed["output"].split("/", 3)[3])).decode()
    expected = aws_world.read(PROCESSED, plain["output"].split("/", 3)[3])
    def records(lines: str) -> list[dict]:
        found = [json.loads(line) for line in lines.splitlines()]
        for r in found:
            r["_metadata"].pop("processed_at")
            r["_metadata"].pop("source")
        return found

    assert records(text) == records(expected) and len(records(text)) == 3


def _object(world: World, key: str) -> bytes:
    return world.s3.get_object(Bucket=PROCESSED, Key=key)["Body"].read()


def _read(world: World, key: str) -> pa.Table:
    return pq.read_table(io.BytesIO(_object(world, key)))


# --- DuckDB against the emulator ---------------------------------------------------

HTTPFS = next(Path(duckdb_extension_httpfs.__file__).parent.rglob("httpfs.duckdb_extension"))


@pytest.fixture
def server_world(moto_server, monkeypatch):
    """The processor's buckets and table on a moto server (DuckDB reads over HTTP)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    for name, value in {"PIPELINE": "pipectl-demo", "ENVIRONMENT": "test", "RAW_BUCKET": RAW,
                        "PROCESSED_BUCKET": PROCESSED, "RESULTS_TABLE": TABLE}.items():
        monkeypatch.setenv(name, value)
    processor.reset_clients()
    s3 = boto3.client("s3", endpoint_url=moto_server)
    for bucket in (RAW, PROCESSED):
        s3.create_bucket(Bucket=bucket)
    dynamodb = boto3.resource("dynamodb", endpoint_url=moto_server)
    dynamodb.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "object_key", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "object_key", "AttributeType": "S"}])
    yield World(s3, dynamodb), moto_server
    processor.reset_clients()


def test_duckdb_reads_the_processed_prefix_with_its_partitions(server_world, monkeypatch):
    world, endpoint = server_world
    _parquet_env(monkeypatch)
    rows = _process(world, ("incoming/users.csv", CSV), ("incoming/events.jsonl", JSONL))
    day = rows["incoming/users.csv"]["output"].split("/")[4]

    con = duckdb.connect()
    con.execute(f"LOAD '{HTTPFS}'")
    host = endpoint.removeprefix("http://")
    con.execute(f"SET s3_endpoint='{host}'; SET s3_use_ssl=false; SET s3_url_style='path'; "
                "SET s3_region='us-east-1'; SET s3_access_key_id='testing'; "
                "SET s3_secret_access_key='testing'")
    glob = f"s3://{PROCESSED}/processed/**/*.parquet"
    users = con.execute(
        f"SELECT user_name, age, signup_date, score, dt, _metadata.source FROM read_parquet("
        f"'{glob}', hive_partitioning=1, union_by_name=1) WHERE user_name IS NOT NULL "
        "ORDER BY user_name").fetchall()
    # the partition is a column (DuckDB reads dt=YYYY-MM-DD as a DATE)
    partition = datetime.date.fromisoformat(day.removeprefix("dt="))
    assert users == [
        ("ana", 31, datetime.date(2026, 1, 2), 1.5, partition, f"s3://{RAW}/incoming/users.csv"),
        ("bo", None, datetime.date(2026, 1, 3), 2.0, partition, f"s3://{RAW}/incoming/users.csv")]
    types = {r[0]: r[1] for r in con.execute(
        f"DESCRIBE SELECT * FROM read_parquet('{glob}', hive_partitioning=1, "
        "union_by_name=1)").fetchall()}
    assert types["age"] == "BIGINT" and types["signup_date"] == "DATE"
    assert types["id"] == "BIGINT" and types["tags"] == "STRUCT(vip BOOLEAN)"
    assert types["_metadata"].startswith("STRUCT(processed_at TIMESTAMP WITH TIME ZONE")
    ids = con.execute(f"SELECT id, name FROM read_parquet('{glob}', hive_partitioning=1, "
                      "union_by_name=1) WHERE id IS NOT NULL ORDER BY id").fetchall()
    assert ids == [(1, "ana"), (2, "bo")]


def test_an_image_and_a_text_file_become_one_row_parquet_files(aws_world, monkeypatch):
    from PIL import Image

    monkeypatch.setenv("OUTPUT_FORMAT", "parquet")
    png = io.BytesIO()
    Image.new("RGB", (64, 32), "navy").save(png, "PNG")
    aws_world.upload("incoming/logo.png", png.getvalue())
    rows = _process(aws_world, ("incoming/notes.txt", "two words\nand three more\n"))
    assert processor.lambda_handler(aws_world.event(aws_world.message("incoming/logo.png")),
                                    None) == {"batchItemFailures": []}
    image = aws_world.row("incoming/logo.png")
    # the thumbnail keeps the source's own name; the record names it
    assert image["thumbnail"].split("/", 3)[3].endswith("/logo.png")
    assert image["thumbnail"].split("/", 3)[3].startswith("thumbnails/dt=")
    record = _read(aws_world, image["output"].split("/", 3)[3]).to_pylist()
    assert len(record) == 1 and record[0]["width"] == 64 and record[0]["height"] == 32
    assert record[0]["thumbnail"] == image["thumbnail"]
    text = _read(aws_world, rows["incoming/notes.txt"]["output"].split("/", 3)[3]).to_pylist()
    assert text[0]["words"] == 5 and text[0]["_metadata"]["source"].endswith("/notes.txt")
