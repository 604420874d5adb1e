"""Record schemas, the record sink and images through the real `pipectl` and the local runtime."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

pytestmark = pytest.mark.server

SETTINGS = """
schemas:
  - match: "incoming/orders/*"
    required: [order_id, email_address]
    fields:
      order_id: {type: integer, min: 1}
      email_address: {type: string, pattern: "^[^@]+@[^@]+$"}
      country: {type: string, allowed: [UK, US, NL]}
    max_reject_ratio: 0.5
sink: {table: orders-records, key: order_id}
images: {thumbnail_width: 64}
"""
ORDERS = (b"Order ID,Email Address,Country\n"
          b"1,ada@example.com,UK\n"
          b"0,grace@example.com,US\n"            # order_id below 1
          b"3,nobody,DE\n"                       # two reasons
          b"4,alan@example.com,NL\n"
          b"5,kate@example.com,\n")


def photo() -> bytes:
    image = Image.new("RGB", (640, 320), "teal")
    exif = image.getexif()
    exif[0x0112] = 6                             # stored sideways: upright it is 320x640
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif)
    return out.getvalue()


def test_schema_rejects_the_sink_and_an_image_end_up_in_results(pipectl, pipeline_dir,
                                                                 client, names):
    config = pipeline_dir / "pipeline.yaml"
    config.write_text(config.read_text() + SETTINGS)
    deployed = pipectl("deploy", "--yes", timeout=300)
    assert deployed.code == 0, deployed.err
    s3 = client("s3")
    s3.put_object(Bucket=names["raw"], Key="incoming/orders/day1.csv", Body=ORDERS)
    s3.put_object(Bucket=names["raw"], Key="incoming/cat.jpg", Body=photo())

    run = pipectl("--output", "json", "run", "--until-idle", "--timeout", "90")
    assert run.code == 0, run.err

    orders = pipectl("--output", "json", "results", "incoming/orders/day1.csv").json()
    assert orders["status"] == "PROCESSED", orders
    assert (orders["records_in"], orders["records_out"]) == (5, 3)
    assert orders["details"]["records_rejected"] == 2
    rejects_uri = orders["details"]["rejects"]
    bucket, key = rejects_uri.removeprefix("s3://").split("/", 1)
    assert bucket == names["processed"] and key.startswith("rejects/")
    assert key.endswith("/orders/day1.csv.jsonl")
    lines = [json.loads(line) for line in
             s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()]
    assert [(line["record"]["order_id"], line["reasons"]) for line in lines] == [
        ("0", ['order_id: "0" is below the minimum 1']),
        # Fields are checked in name order (deploy passes the schema as canonical JSON).
        ("3", ['country: "DE" is not one of UK, US, NL',
               "email_address: \"nobody\" does not match '^[^@]+@[^@]+$'"])]

    items = client("dynamodb").scan(TableName="orders-records")["Items"]
    assert sorted(i["order_id"]["S"] for i in items) == ["1", "4", "5"]

    cat = pipectl("--output", "json", "results", "incoming/cat.jpg").json()
    assert cat["status"] == "PROCESSED" and cat["kind"] == "image", cat
    assert (cat["details"]["width"], cat["details"]["height"]) == (640, 320)
    thumb_bucket, thumb_key = cat["details"]["thumbnail"].removeprefix("s3://").split("/", 1)
    assert thumb_key.startswith("thumbnails/") and thumb_key.endswith("/cat.jpg")
    thumb = Image.open(io.BytesIO(
        s3.get_object(Bucket=thumb_bucket, Key=thumb_key)["Body"].read()))
    assert thumb.size == (64, 128)
    output = cat["output"].removeprefix("s3://").split("/", 1)[1]
    line = json.loads(s3.get_object(Bucket=names["processed"], Key=output)["Body"].read())
    assert (line["format"], line["exif_orientation"], line["size_bytes"]) == (
        "JPEG", 6, len(photo()))
