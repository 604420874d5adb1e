"""Outputs never collide (issue 19 item 8): the source's whole name stays in the output's
(collide.csv -> processed/<day>/collide.csv.jsonl), so no two sources share an output."""

from __future__ import annotations

import gzip
import io
import itertools
import json

import processor
from PIL import Image
from processing.transform import GZIP_SUFFIX, KINDS

from tests.functional.conftest import PROCESSED

TEXT_SUFFIXES = [s for s, kind in KINDS.items() if kind != "image"]
IMAGE_SUFFIXES = [s for s, kind in KINDS.items() if kind == "image"]
# Every supported suffix, and the gzip-wrapped form of each that may be compressed.
SUFFIXES = TEXT_SUFFIXES + [s + GZIP_SUFFIX for s in TEXT_SUFFIXES] + IMAGE_SUFFIXES


def _body(suffix: str) -> bytes:
    """A small valid file of the suffix's kind whose one record names the suffix."""
    plain = suffix.removesuffix(GZIP_SUFFIX)
    if plain in IMAGE_SUFFIXES:
        fmt = {".jpg": "JPEG", ".jpeg": "JPEG"}.get(plain, plain[1:].upper())
        buffer = io.BytesIO()
        Image.new("RGB", (8 + len(suffix), 4), "red").save(buffer, fmt)
        return buffer.getvalue()
    data = {".csv": f"suffix\n{suffix}\n", ".txt": f"{suffix}\n"}.get(
        plain, json.dumps({"suffix": suffix}) + "\n").encode()
    return gzip.compress(data) if suffix.endswith(GZIP_SUFFIX) else data


def test_sources_that_differ_only_in_suffix_get_one_output_each(aws_world):
    # given one file per supported suffix, all named "collide", uploaded the same day
    keys = [f"incoming/collide{suffix}" for suffix in SUFFIXES]
    for key, suffix in zip(keys, SUFFIXES, strict=True):
        aws_world.upload(key, _body(suffix))

    # when they arrive in one batch
    messages = [aws_world.message(key) for key in keys]
    assert processor.lambda_handler(aws_world.event(*messages), None) == {"batchItemFailures": []}

    # then every pair of sources has two different outputs, and none was overwritten
    rows = {key: aws_world.row(key) for key in keys}
    assert {key: row["status"] for key, row in rows.items()} == dict.fromkeys(keys, "PROCESSED")
    outputs = {key: row["output"].split("/", 3)[3] for key, row in rows.items()}
    for (a, out_a), (b, out_b) in itertools.combinations(outputs.items(), 2):
        assert out_a != out_b, (a, b)
    for key, output in outputs.items():
        assert output.endswith("/" + key.removeprefix("incoming/") + ".jsonl")
        assert len(aws_world.versions(PROCESSED, output)) == 1
    # and each output holds its own source's record
    for key, suffix in zip(keys, SUFFIXES, strict=True):
        record = json.loads(aws_world.read(PROCESSED, outputs[key]).splitlines()[0])
        assert record["_metadata"]["source"].endswith("/" + key)
        if suffix.removesuffix(GZIP_SUFFIX) in (".csv", ".json", ".jsonl", ".ndjson"):
            assert record["suffix"] == suffix
    thumbnails = aws_world.keys(PROCESSED, "thumbnails/")
    assert len(thumbnails) == len(IMAGE_SUFFIXES)
    assert sorted(t.rsplit("/", 1)[1] for t in thumbnails) == sorted(
        f"collide{s}" for s in IMAGE_SUFFIXES)
