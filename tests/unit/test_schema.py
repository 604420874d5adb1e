"""Record schema rules (handlers/processing/schema.py) and their settings in pipeline.yaml."""

from __future__ import annotations

import json

import pytest
from processing import schema

from pipectl.config import parse
from pipectl.deploy.desired import function_environment
from pipectl.errors import ConfigError
from pipectl.naming import Names
from tests.helpers import ACCOUNT

ORDERS = schema.Schema(
    match="incoming/orders/*", required=("order_id", "email_address"),
    fields={"order_id": {"type": "integer", "min": 1},
            "email_address": {"type": "string", "pattern": "^[^@]+@[^@]+$"},
            "country": {"type": "string", "allowed": ["UK", "US", "NL"]},
            "signup_date": {"type": "date", "min": "2020-01-01"},
            "seen_at": {"type": "datetime"},
            "amount": {"type": "number", "max": 100},
            "vip": {"type": "boolean"},
            "code": {"type": "string", "min": 2, "max": 3}},
    max_reject_ratio=0.5)


def reasons(record: dict, strings: bool = False) -> list[str]:
    return schema.Validator(ORDERS, strings=strings).reasons(record)


def test_a_valid_record_has_no_reasons():
    assert reasons({"order_id": 7, "email_address": "a@b", "country": "NL",
                    "signup_date": "2024-02-29", "seen_at": "2024-02-29T10:00:00Z",
                    "amount": 99.5, "vip": False, "code": "ab", "other": [1]}) == []


def test_every_reason_is_reported_not_only_the_first():
    got = reasons({"order_id": 0, "country": "DE", "signup_date": "2024-02-30",
                   "amount": 101, "vip": "yes", "code": "abcd"})
    assert got == [
        "email_address: required but missing or empty",
        "order_id: 0 is below the minimum 1",
        'country: "DE" is not one of UK, US, NL',
        'signup_date: expected a date (YYYY-MM-DD), got "2024-02-30"',
        "amount: 101 is above the maximum 100",
        'vip: expected true or false, got "yes"',
        'code: "abcd" is longer than the maximum 3',
    ]


@pytest.mark.parametrize("field, value, expected", [
    ("order_id", "7", 'order_id: expected an integer, got "7"'),     # JSON: the type itself
    ("order_id", True, "order_id: expected an integer, got true"),   # a boolean is no integer
    ("order_id", 1.5, "order_id: expected an integer, got 1.5"),
    ("email_address", "nobody", 'email_address: "nobody" does not match \'^[^@]+@[^@]+$\''),
    ("signup_date", "2019-12-31", 'signup_date: "2019-12-31" is below the minimum 2020-01-01'),
    ("seen_at", "2024-01-01", 'seen_at: expected a date-time (YYYY-MM-DDThh:mm:ss, optional '
                              'offset), got "2024-01-01"'),
    ("amount", "12", 'amount: expected a number, got "12"'),
])
def test_json_values_must_have_the_declared_type(field, value, expected):
    record = {"order_id": 1, "email_address": "a@b", field: value}
    assert reasons(record) == [expected]


def test_csv_strings_that_spell_the_type_count_as_it_and_compare_by_value():
    ok = {"order_id": "12", "email_address": "a@b", "amount": "99.5", "vip": "TRUE"}
    assert reasons(ok, strings=True) == []
    bad = {"order_id": "0", "email_address": "a@b", "amount": "1e3", "vip": "maybe"}
    assert reasons(bad, strings=True) == [
        'order_id: "0" is below the minimum 1', 'amount: "1e3" is above the maximum 100',
        'vip: expected true or false, got "maybe"']


def test_the_first_matching_schema_applies_by_glob_or_suffix():
    by_suffix = schema.Schema(suffix=".CSV")
    schemas = [ORDERS, by_suffix]
    assert schema.schema_for("incoming/orders/2024/a.json", schemas) is ORDERS
    assert schema.schema_for("incoming/other/a.csv", schemas) is by_suffix
    assert schema.schema_for("incoming/other/a.json", schemas) is None


def test_schemas_round_trip_through_the_environment_variable():
    env = {"RECORD_SCHEMAS": schema.dumps([ORDERS])}
    (loaded,) = schema.load(env)
    assert loaded.fields == ORDERS.fields and loaded.required == ORDERS.required
    assert loaded.match == ORDERS.match and loaded.max_reject_ratio == 0.5
    assert schema.load({}) == []


def test_the_reject_threshold():
    assert schema.too_many_rejected(ORDERS, 5, 10) is None
    assert schema.too_many_rejected(ORDERS, 6, 10) == (
        "6 of 10 records (60%) failed the record schema; at most 50% may be rejected "
        "(max_reject_ratio)")
    assert schema.too_many_rejected(ORDERS, 0, 0) is None


# --- pipeline.yaml -----------------------------------------------------------------

GOOD = """\
pipeline: orders
schemas:
  - match: "incoming/orders/*"
    required: [order_id, email_address]
    fields:
      order_id: {type: integer, min: 1}
      email_address: {type: string, pattern: "^[^@]+@[^@]+$"}
      country: {type: string, allowed: [UK, US, NL]}
      signup_date: {type: date, min: 2020-01-01}
    max_reject_ratio: 0.5
sink: {table: orders-records, key: order_id}
images: {thumbnail_width: 128}
"""


def test_schemas_sink_and_images_reach_the_function_environment():
    config = parse(GOOD)
    env = function_environment(config, Names(config, ACCOUNT, "us-east-1"), "processor")
    (loaded,) = schema.load(env)
    assert loaded.fields["signup_date"] == {"type": "date", "min": "2020-01-01"}
    assert loaded.required == ("order_id", "email_address")
    assert (env["SINK_TABLE"], env["SINK_KEY"], env["THUMBNAIL_WIDTH"]) == (
        "orders-records", "order_id", "128")
    assert json.loads(env["RECORD_SCHEMAS"])[0]["max_reject_ratio"] == 0.5


def test_every_schema_problem_has_its_line_and_key_path():
    text = """\
pipeline: orders
schemas:
  - match: "incoming/orders/*"
    required: [order_id, Email]
    fields:
      order_id: {type: integer, min: 5, max: 1}
      email_address: {type: strin, pattern: "^["}
      country: {allowed: []}
      signup_date: {type: date, min: yesterday}
      x: {tpe: string}
    max_reject_ratio: 2
  - fields: {}
sink: {key: order_id}
"""
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert caught.value.problems == [
        "pipeline.yaml:4: schemas[0].required[1]: must be a lower snake_case field name as "
        "normalization writes it, such as 'email_address' (got 'Email')",
        "pipeline.yaml:6: schemas[0].fields.order_id.max: must not be below min (5)",
        "pipeline.yaml:7: schemas[0].fields.email_address.type: must be one of string, integer, "
        "number, boolean, date, datetime (got 'strin')",
        "pipeline.yaml:7: schemas[0].fields.email_address.pattern: is not a valid regular "
        "expression: unterminated character set at position 1",
        "pipeline.yaml:8: schemas[0].fields.country.allowed: must be a non-empty list of "
        "strings, numbers or booleans (got [])",
        "pipeline.yaml:9: schemas[0].fields.signup_date.min: must be a date such as 2024-01-31 "
        "(got 'yesterday')",
        "pipeline.yaml:10: schemas[0].fields.x.tpe: unknown rule (known: type, allowed, "
        "pattern, min, max)",
        "pipeline.yaml:11: schemas[0].max_reject_ratio: must be a number from 0 to 1 (got 2)",
        "pipeline.yaml:12: schemas[1]: needs match (a glob on the key, e.g. "
        "'incoming/orders/*') or suffix (e.g. '.csv')",
        "pipeline.yaml:13: sink.table: is required: the DynamoDB table that receives the records",
    ]


def test_image_suffixes_may_be_listed_for_the_processor():
    config = parse("pipeline: orders\nprocessor:\n  suffixes: [.csv, .jpg, .png, .webp]\n")
    assert config.processor.suffixes == (".csv", ".jpg", ".png", ".webp")
