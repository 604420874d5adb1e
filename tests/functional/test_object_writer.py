"""storage.ObjectWriter against moto: the output streams up in parts, one uploading while the
next fills."""

from __future__ import annotations

import base64
import hashlib
import threading

import pytest
from botocore import httpchecksum
from botocore.exceptions import ClientError
from common import storage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.functional.conftest import PROCESSED

KEY = "processed/overlap.jsonl"


@pytest.fixture
def tiny_parts(monkeypatch):
    monkeypatch.setattr(storage, "PART_SIZE", 1024)
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 256)


def _wrap_upload_part(monkeypatch, s3, before_send):
    real = s3.upload_part

    def upload_part(**kwargs):
        before_send(kwargs["PartNumber"])
        return real(**kwargs)

    monkeypatch.setattr(s3, "upload_part", upload_part)


def test_the_caller_keeps_writing_while_a_part_uploads(aws_world, tiny_parts, monkeypatch):
    # given part 1's upload held until the caller has written more bytes after it
    more_written = threading.Event()
    held_until_written: list[bool] = []
    in_flight, most_in_flight = [0], [0]
    lock = threading.Lock()

    def before_send(number: int) -> None:
        with lock:
            in_flight[0] += 1
            most_in_flight[0] = max(most_in_flight[0], in_flight[0])
        if number == 1:
            held_until_written.append(more_written.wait(timeout=10))
        with lock:
            in_flight[0] -= 1

    _wrap_upload_part(monkeypatch, aws_world.s3, before_send)
    writer = storage.ObjectWriter(aws_world.s3, PROCESSED, KEY)
    chunks = [(b"%05d\n" % i) * 50 for i in range(12)]        # 3,600 bytes: four parts

    # when
    for i, chunk in enumerate(chunks):
        writer.write(chunk)
        if i == 4:                  # 1,500 bytes: part 1 (1,024) is out, part 2 is filling
            more_written.set()
    writer.close()

    # then part 1 was still uploading while part 2 filled, one part at a time, none lost
    assert held_until_written == [True]
    assert most_in_flight[0] == 1
    assert aws_world.read(PROCESSED, KEY) == b"".join(chunks).decode()
    assert aws_world.s3.head_object(Bucket=PROCESSED, Key=KEY)["ETag"].endswith('-4"')


def test_a_failed_background_part_surfaces_and_abort_leaves_nothing(aws_world, tiny_parts,
                                                                     monkeypatch):
    # given part 2's upload fails (say, the connection dropped for good)
    def before_send(number: int) -> None:
        if number == 2:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "boom"}},
                              "UploadPart")

    _wrap_upload_part(monkeypatch, aws_world.s3, before_send)
    writer = storage.ObjectWriter(aws_world.s3, PROCESSED, KEY)

    # when the caller goes on writing, then closes
    with pytest.raises(ClientError, match="boom"):
        for _ in range(10):
            writer.write(b"y" * 600)
        writer.close()
    writer.abort()

    # then the error reached the caller, and no upload or object is left behind
    assert not aws_world.s3.list_multipart_uploads(Bucket=PROCESSED).get("Uploads")
    assert aws_world.keys(PROCESSED) == []



def test_object_writer_streams_multipart_and_verifies(aws_world, tiny_parts):
    # given tiny parts (moto's 5 MiB part minimum lowered to match)
    writer = storage.ObjectWriter(aws_world.s3, PROCESSED, "processed/big.jsonl")
    chunks = [(b"%05d\n" % i) * 50 for i in range(40)]

    # when
    for chunk in chunks:
        writer.write(chunk)
    writer.close()

    # then the object is the concatenation, uploaded in parts
    head = aws_world.s3.head_object(Bucket=PROCESSED, Key="processed/big.jsonl")
    assert head["ETag"].endswith('-12"')
    assert aws_world.read(PROCESSED, "processed/big.jsonl") == b"".join(chunks).decode()


def test_object_writer_abort_leaves_no_upload_behind(aws_world, monkeypatch):
    # given a multipart upload in progress
    monkeypatch.setattr(storage, "PART_SIZE", 1024)
    writer = storage.ObjectWriter(aws_world.s3, PROCESSED, "processed/partial.jsonl")
    writer.write(b"x" * 3000)
    assert aws_world.s3.list_multipart_uploads(Bucket=PROCESSED).get("Uploads")

    # when
    writer.abort()

    # then
    assert not aws_world.s3.list_multipart_uploads(Bucket=PROCESSED).get("Uploads")
    assert aws_world.keys(PROCESSED) == []


@given(body=st.binary(max_size=4096))
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_single_put_hashes_its_body_once_and_sends_that_sha256(aws_world, body):
    # given botocore's own checksum hashing watched, and the request's headers caught
    hashed_by_botocore: list[int] = []
    real_update = httpchecksum.Sha256Checksum.update

    def counted_update(self, chunk):
        hashed_by_botocore.append(len(chunk))
        return real_update(self, chunk)

    sent = []
    catch = lambda request, **_: sent.append(dict(request.headers))  # noqa: E731
    aws_world.s3.meta.events.register("before-send.s3.PutObject", catch)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(httpchecksum.Sha256Checksum, "update", counted_update)
            # when one part's worth is written and closed
            writer = storage.ObjectWriter(aws_world.s3, PROCESSED, "processed/small.jsonl")
            writer.write(body)
            writer.close()
    finally:
        aws_world.s3.meta.events.unregister("before-send.s3.PutObject", catch)

    # then the request carried our SHA-256 of the body as its only checksum, botocore
    # hashed nothing itself, and the object holds the body
    ours = base64.b64encode(hashlib.sha256(body).digest()).decode()
    [headers] = sent
    assert {k.lower(): v.decode() if isinstance(v, bytes) else v for k, v in headers.items()
            if k.lower().startswith("x-amz-checksum-")} == {"x-amz-checksum-sha256": ours}
    assert hashed_by_botocore == []
    got = aws_world.s3.get_object(Bucket=PROCESSED, Key="processed/small.jsonl")
    assert got["Body"].read() == body and writer.etag == got["ETag"]
