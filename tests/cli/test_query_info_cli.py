"""pipectl query-info (issue 18): the Athena table and the DuckDB line for processed/."""

from __future__ import annotations

import io
import json

import boto3
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from moto import mock_aws

from tests.cli.conftest import ACCOUNT, AWS_CONFIG

PROCESSED = f"demo-dev-processed-{ACCOUNT}"


@pytest.fixture
def parquet_pipeline(aws_pipeline):
    (aws_pipeline / "pipeline.yaml").write_text(AWS_CONFIG + "output:\n  format: parquet\n")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=PROCESSED)
        yield s3


def test_query_info_reads_the_columns_from_a_parquet_outputs_footer(parquet_pipeline, pipectl):
    # given one Parquet output under processed/dt=.../
    table = pa.table({"user_name": ["ana"], "age": pa.array([31], pa.int64()),
                      "tags": pa.array([{"vip": True}]),
                      "_metadata": pa.array([{"processed_at": None, "source": "s3://r/k"}],
                                            pa.struct([("processed_at", pa.timestamp("us", "UTC")),
                                                       ("source", pa.string())]))})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    key = "processed/dt=2026-01-02/users.csv.parquet"
    parquet_pipeline.put_object(Bucket=PROCESSED, Key=key, Body=buffer.getvalue())

    # when
    code, out, err = pipectl("-o", "json", "query-info")

    # then the table has the file's columns, the dt partition and the processed prefix
    assert code == 0, err
    info = json.loads(out)
    assert info["format"] == "parquet" and info["partition_columns"] == ["dt"]
    assert info["columns_from"] == f"s3://{PROCESSED}/{key}"
    assert info["athena"] == (
        "CREATE EXTERNAL TABLE IF NOT EXISTS `demo_dev_processed` (\n"
        "  `user_name` string,\n  `age` bigint,\n  `tags` struct<vip:boolean>,\n"
        "  `_metadata` struct<processed_at:timestamp,source:string>\n)\n"
        "PARTITIONED BY (`dt` string)\nSTORED AS PARQUET\n"
        f"LOCATION 's3://{PROCESSED}/processed/';\nMSCK REPAIR TABLE `demo_dev_processed`;")
    assert info["duckdb"] == (f"SELECT * FROM read_parquet('s3://{PROCESSED}/processed/**/"
                              "*.parquet', hive_partitioning=1);")
    code, out, err = pipectl("query-info")
    assert code == 0 and "STORED AS PARQUET" in out and "read_parquet(" in out
    assert "columns from s3://" in err


def test_query_info_for_json_lines_uses_the_json_serde_and_the_schemas(aws_pipeline, pipectl):
    # given today's JSON Lines and a record schema (nothing is read from S3)
    (aws_pipeline / "pipeline.yaml").write_text(
        AWS_CONFIG + "schemas:\n  - suffix: .csv\n    fields:\n      age: {type: integer}\n")
    with mock_aws():                            # the account, for the bucket's name
        code, out, err = pipectl("-o", "json", "query-info")
    assert code == 0, err
    info = json.loads(out)
    assert info["partition_columns"] == []     # YYYY/MM/DD/ is no Hive-style partition
    assert "`age` bigint" in info["athena"] and "JsonSerDe" in info["athena"]
    assert "PARTITIONED BY" not in info["athena"]
    assert info["duckdb"].startswith("SELECT * FROM read_json_auto('s3://demo-dev-processed-")
