"""ops.transfer against moto's in-process S3: locations, upload, download, safety, errors."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import threading
from pathlib import Path

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from moto import mock_aws

from pipectl.aws import s3 as s3_seam
from pipectl.errors import NotFound, UsageError
from pipectl.ops import download as downloads
from pipectl.ops import transfer
from pipectl.ops.download import safe_relative_path
from pipectl.ops.transfer import Location, parse_location
from tests.functional.s3_faults import fail_calls

BUCKET = "raw-bucket"
MiB = 1024 * 1024


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def all_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


class RecordingProgress:
    def __init__(self):
        self.lock = threading.Lock()
        self.total = None
        self.bytes = 0
        self.results = []

    def started(self, files, total_bytes):
        self.total = (files, total_bytes)

    def transferred(self, nbytes):
        with self.lock:
            self.bytes += nbytes

    def finished(self, result):
        with self.lock:
            self.results.append(result)


# ---------------------------------------------------------------- locations

def roles(role: str) -> str:
    return f"bucket-of-{role}"


@pytest.mark.parametrize("text, bucket, key, role", [
    ("raw", "bucket-of-raw", "", "raw"),
    ("raw/", "bucket-of-raw", "", "raw"),
    ("raw/incoming/", "bucket-of-raw", "incoming/", "raw"),
    ("processed/processed/2024/01/a.jsonl", "bucket-of-processed", "processed/2024/01/a.jsonl",
     "processed"),
    ("archive/archive", "bucket-of-archive", "archive", "archive"),
    ("s3://my-bucket", "my-bucket", "", None),
    ("s3://my-bucket/", "my-bucket", "", None),
    ("s3://my-bucket/a b/c+d.csv", "my-bucket", "a b/c+d.csv", None),
    ("S3://my-bucket/k", "my-bucket", "k", None),
])
def test_parse_location(text, bucket, key, role):
    assert parse_location(text, roles) == Location(bucket, key, role)


@pytest.mark.parametrize("text", [
    "", "foo", "foo/bar", "RAW/x", "/raw/x", "./raw", "http://bucket/key", "s3:/bucket/key",
    "s3://", "s3:///key", "s3://a b/key", "s3://-bad/key", "bucket:key",
])
def test_parse_location_rejects(text):
    with pytest.raises(UsageError) as err:
        parse_location(text, roles)
    assert text in str(err.value)


def test_parse_location_resolves_roles_only_when_needed():
    def no_aws(role):
        raise AssertionError("an s3:// URL must not resolve a role")

    assert parse_location("s3://b1/k", no_aws).bucket == "b1"


def test_location_prefix_semantics():
    assert Location("b").is_prefix and Location("b", "a/").is_prefix
    assert not Location("b", "a").is_prefix
    assert Location("b", "a").as_prefix().key == "a/"
    assert Location("b", "a/x").uri == "s3://b/a/x"


# ---------------------------------------------------------------- upload

def test_upload_directory_keeps_tree_and_names(s3, tmp_path):
    data = tmp_path / "data"
    write(data / "a.csv", "a,b\n1,2\n")
    write(data / "nested" / "deeper" / "b.json", '{"x": 1}')
    write(data / "with space+plus.txt", "hello world\n")
    single = write(tmp_path / "solo file.jsonl", '{"y": 2}\n')
    progress = RecordingProgress()

    files = transfer.collect_files([data, single])
    report = transfer.upload(s3, files, Location(BUCKET, "incoming/"), jobs=3, progress=progress)

    assert [f.status for f in report.files] == ["ok"] * 4, report
    keys = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {
        "incoming/data/a.csv": 8,
        "incoming/data/nested/deeper/b.json": 8,
        "incoming/data/with space+plus.txt": 12,
        "incoming/solo file.jsonl": 9,
    }
    assert {f.uri for f in report.files} == {f"s3://{BUCKET}/{k}" for k in keys}
    assert report.ok == 4 and report.failed == 0 and report.bytes == sum(keys.values())
    assert progress.total == (4, sum(keys.values()))
    assert progress.bytes == sum(keys.values())
    assert len(progress.results) == 4


def test_upload_asks_s3_for_a_sha256_checksum(s3, tmp_path):
    body = b"checksummed bytes\n"
    path = write(tmp_path / "c.txt", body)

    transfer.upload(s3, transfer.collect_files([path]), Location(BUCKET, "incoming/c.txt"))

    head = s3.head_object(Bucket=BUCKET, Key="incoming/c.txt", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()


def test_single_file_to_exact_key_or_prefix(s3, tmp_path):
    path = write(tmp_path / "report.csv", "x\n")
    files = transfer.collect_files([path])

    transfer.upload(s3, files, Location(BUCKET, "incoming/renamed.csv"))
    transfer.upload(s3, files, Location(BUCKET, "incoming/"))
    transfer.upload(s3, files, Location(BUCKET, ""))

    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert keys == {"incoming/renamed.csv", "incoming/report.csv", "report.csv"}


def test_large_file_goes_multipart(s3, tmp_path):
    body = bytes(range(256)) * (11 * MiB // 256)  # 11 MiB: three 5 MiB-or-less parts
    path = write(tmp_path / "big.bin", body)
    config = TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB,
                            max_concurrency=2)

    report = transfer.upload(s3, transfer.collect_files([path]), Location(BUCKET, "big/"),
                             config=config)

    assert report.files[0].status == "ok", report.files[0].error
    head = s3.head_object(Bucket=BUCKET, Key="big/big.bin")
    assert head["ContentLength"] == len(body)
    assert head["ETag"].strip('"').endswith("-3")  # a multipart ETag counts its parts
    assert s3.get_object(Bucket=BUCKET, Key="big/big.bin")["Body"].read() == body
    # S3's composite SHA-256 (of the parts' SHA-256s) is the one pipectl computes locally,
    # so a second upload of the same file is skipped.
    stored = s3.head_object(Bucket=BUCKET, Key="big/big.bin", ChecksumMode="ENABLED")
    assert s3_seam.same_checksum(stored["ChecksumSHA256"],
                                 s3_seam.file_checksum(path, len(body), config))
    again = transfer.upload(s3, transfer.collect_files([path]), Location(BUCKET, "big/"),
                            config=config)
    assert (again.files[0].status, again.files[0].reason) == ("skipped", "unchanged")


def test_missing_local_path_is_a_usage_error_naming_it(tmp_path):
    good = write(tmp_path / "a.csv", "x")
    with pytest.raises(UsageError, match="nope.csv: no such file or directory"):
        transfer.collect_files([good, tmp_path / "nope.csv"])


def test_empty_directory_is_a_usage_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UsageError, match="no files to upload"):
        transfer.collect_files([tmp_path / "empty"])


def test_two_files_on_one_key_is_a_usage_error(s3, tmp_path):
    files = transfer.collect_files([write(tmp_path / "a" / "x.csv", "1"),
                                    write(tmp_path / "b" / "x.csv", "2")])
    with pytest.raises(UsageError, match="would both upload to s3://raw-bucket/incoming/x.csv"):
        transfer.upload(s3, files, Location(BUCKET, "incoming/"))
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET)


def test_upload_to_missing_bucket_names_it(s3, tmp_path):
    files = transfer.collect_files([write(tmp_path / "a.csv", "x")])
    with pytest.raises(NotFound, match="bucket 'no-such-bucket' does not exist"):
        transfer.upload(s3, files, Location("no-such-bucket", "incoming/"))


def test_one_failure_does_not_stop_the_others(s3, tmp_path):
    paths = [write(tmp_path / f"f{i}.txt", f"file {i}") for i in range(4)]
    # AccessDenied is not retried, so the failure is immediate.
    fail_calls(s3, "PutObject", "f2.txt", code="AccessDenied")

    report = transfer.upload(s3, transfer.collect_files(paths), Location(BUCKET, "in/"), jobs=2)

    assert [(Path(f.local).name, f.status) for f in report.files] == [
        ("f0.txt", "ok"), ("f1.txt", "ok"), ("f2.txt", "failed"), ("f3.txt", "ok")]
    assert "access denied to s3://raw-bucket/in/f2.txt (uploading)" in report.files[2].error
    assert report.failed == 1 and report.ok == 3
    assert {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET)["Contents"]} == {
        "in/f0.txt", "in/f1.txt", "in/f3.txt"}


def test_checksum_s3_returns_must_match_the_file(s3, tmp_path, monkeypatch):
    path = write(tmp_path / "a.csv", "12345")
    # What S3 would return had it stored other bytes than those whose SHA-256 we sent.
    other = base64.b64encode(hashlib.sha256(b"123").digest()).decode()
    monkeypatch.setattr(s3_seam.Transfers, "uploaded_checksum", lambda self, b, k: other)

    report = transfer.upload(s3, transfer.collect_files([path]), Location(BUCKET, "in/"))

    assert report.files[0].status == "failed"
    assert f"S3 stored SHA-256 {other}" in report.files[0].error


def test_upload_makes_no_head_object_on_a_first_upload(s3, tmp_path):
    calls = []
    s3.meta.events.register("before-call.s3", lambda model, **_: calls.append(model.name))
    paths = [write(tmp_path / "d" / f"f{i}.txt", f"file {i}") for i in range(5)]

    report = transfer.upload(s3, transfer.collect_files([tmp_path / "d"]), Location(BUCKET, "in/"))

    assert report.ok == 5
    # One HeadBucket, one listing of the destination prefix, then only the PUTs.
    assert sorted(calls) == ["HeadBucket", "ListObjectsV2"] + ["PutObject"] * len(paths)


# ---------------------------------------------------------------- ls

def test_list_location_one_level_and_recursive(s3):
    for key in ("incoming/a.csv", "incoming/sub/b.csv", "incoming/sub/c/d.csv", "other.txt"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=b"12")

    level = transfer.list_location(s3, Location(BUCKET, "incoming/"))
    everything = transfer.list_location(s3, Location(BUCKET, "incoming/"), recursive=True)

    assert level.prefixes == ["incoming/sub/"]
    assert [o.key for o in level.objects] == ["incoming/a.csv"]
    assert level.objects[0].size == 2 and level.objects[0].storage_class == "STANDARD"
    assert everything.prefixes == []
    assert [o.key for o in everything.objects] == [
        "incoming/a.csv", "incoming/sub/b.csv", "incoming/sub/c/d.csv"]


def test_list_paginates(s3):
    for i in range(1005):  # more than one page of list_objects_v2 (1,000 keys)
        s3.put_object(Bucket=BUCKET, Key=f"many/{i:04d}", Body=b"")
    assert len(transfer.list_location(s3, Location(BUCKET, "many/")).objects) == 1005


def test_list_missing_bucket_names_it(s3):
    with pytest.raises(NotFound, match="bucket 'no-such-bucket' does not exist"):
        transfer.list_location(s3, Location("no-such-bucket", ""))


def test_bucket_statuses(s3):
    statuses = transfer.bucket_statuses(s3, {"raw": BUCKET, "processed": "missing-bucket"})
    assert [(s.role, s.name, s.exists) for s in statuses] == [
        ("raw", BUCKET, True), ("processed", "missing-bucket", False)]


# ---------------------------------------------------------------- download

def test_download_prefix_reproduces_the_tree(s3, tmp_path):
    bodies = {"incoming/a.csv": b"a,b\n", "incoming/x/y z+.txt": b"spaces\n",
              "incoming/x/deep/er.json": b"{}", "elsewhere/not-me.txt": b"no"}
    for key, body in bodies.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    s3.put_object(Bucket=BUCKET, Key="incoming/folder/", Body=b"")  # console "folder"
    dest = tmp_path / "out"
    progress = RecordingProgress()

    report = downloads.download(s3, Location(BUCKET, "incoming/"), dest, jobs=2,
                               progress=progress)

    assert report.failed == 0 and report.skipped == 0 and report.ok == 3
    assert all_files(dest) == {"a.csv", "x/y z+.txt", "x/deep/er.json"}
    assert (dest / "x" / "y z+.txt").read_bytes() == b"spaces\n"
    assert progress.bytes == sum(len(b) for k, b in bodies.items() if k.startswith("incoming/"))


def test_download_prefix_without_trailing_slash(s3, tmp_path):
    s3.put_object(Bucket=BUCKET, Key="incoming/a.csv", Body=b"1")
    report = downloads.download(s3, Location(BUCKET, "incoming"), tmp_path / "out")
    assert report.ok == 1 and all_files(tmp_path / "out") == {"a.csv"}


def test_download_single_key_to_file_or_directory(s3, tmp_path):
    s3.put_object(Bucket=BUCKET, Key="incoming/a.csv", Body=b"abc")
    (tmp_path / "existing").mkdir()

    downloads.download(s3, Location(BUCKET, "incoming/a.csv"), tmp_path / "new" / "b.csv")
    downloads.download(s3, Location(BUCKET, "incoming/a.csv"), tmp_path / "existing")

    assert (tmp_path / "new" / "b.csv").read_bytes() == b"abc"
    assert (tmp_path / "existing" / "a.csv").read_bytes() == b"abc"


@pytest.mark.parametrize("key", [
    "incoming/../../etc/passwd", "incoming/..", "incoming/a\\b", "incoming/..\\..\\evil",
    "incoming//abs", "incoming/./dot", "incoming/C:/windows/evil", "incoming/c:evil",
    "incoming/a/../../up",
])
def test_download_refuses_keys_that_escape_dest(s3, tmp_path, key):
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"evil")
    s3.put_object(Bucket=BUCKET, Key="incoming/good.txt", Body=b"good")
    dest = tmp_path / "a" / "b" / "dest"

    report = downloads.download(s3, Location(BUCKET, "incoming/"), dest)

    by_uri = {f.uri: f for f in report.files}
    refused = by_uri[f"s3://{BUCKET}/{key}"]
    assert refused.status == "refused" and "outside" in refused.error
    assert report.ok == 1 and report.refused == 1 and report.failed == 0
    assert all_files(tmp_path) == {"a/b/dest/good.txt"}  # nothing anywhere else


def test_download_refuses_to_write_through_a_symlink_out_of_dest(s3, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "link").symlink_to(outside, target_is_directory=True)
    s3.put_object(Bucket=BUCKET, Key="incoming/link/evil.txt", Body=b"evil")

    report = downloads.download(s3, Location(BUCKET, "incoming/"), dest)

    assert report.refused == 1 and report.ok == 0
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("relative, expected", [
    ("a.csv", "a.csv"), ("x/y z+.txt", "x/y z+.txt"), ("2024-01-01T10:00:00.json",
                                                       "2024-01-01T10:00:00.json"),
    ("..", None), ("a/../b", None), ("/etc/passwd", None), ("a\\b", None), ("C:/x", None),
    ("C:x", None), ("a//b", None), ("", None), ("./a", None), ("a/\x00", None),
])
def test_safe_relative_path(relative, expected):
    result = safe_relative_path(relative)
    assert (None if result is None else result.as_posix()) == expected


def test_download_missing_key_names_the_uri(s3, tmp_path):
    with pytest.raises(NotFound, match=f"s3://{BUCKET}/incoming/nope.csv: no such key"):
        downloads.download(s3, Location(BUCKET, "incoming/nope.csv"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_download_from_missing_bucket_names_it(s3, tmp_path):
    with pytest.raises(NotFound, match="bucket 'no-such-bucket' does not exist"):
        downloads.download(s3, Location("no-such-bucket", "incoming/"), tmp_path / "out")


def test_download_size_mismatch_fails_and_leaves_nothing(s3, tmp_path, monkeypatch):
    s3.put_object(Bucket=BUCKET, Key="incoming/a.csv", Body=b"12")
    real = s3_seam.list_objects

    def listed_larger(*args, **kwargs):  # the object was replaced by a shorter one since
        prefixes, objects = real(*args, **kwargs)
        return prefixes, [dataclasses.replace(o, size=5) for o in objects]

    monkeypatch.setattr(s3_seam, "list_objects", listed_larger)
    report = downloads.download(s3, Location(BUCKET, "incoming/"), tmp_path / "out")

    assert report.files[0].status == "failed" and "got 2 bytes" in report.files[0].error
    assert "S3 says 5" in report.files[0].error
    assert all_files(tmp_path / "out") == set()


def test_download_prefix_into_a_file_is_a_usage_error(s3, tmp_path):
    s3.put_object(Bucket=BUCKET, Key="incoming/a.csv", Body=b"1")
    (tmp_path / "file").write_text("mine")

    with pytest.raises(UsageError, match="file: not a directory"):
        downloads.download(s3, Location(BUCKET, "incoming/"), tmp_path / "file")
    with pytest.raises(UsageError, match="cannot create the directory"):
        downloads.download(s3, Location(BUCKET, "incoming/"), tmp_path / "file" / "sub")
    assert (tmp_path / "file").read_text() == "mine"


def test_an_uploader_that_may_not_list_or_read_still_uploads(s3, tmp_path):
    # A write-only role: S3 answers 403 to ListObjectsV2 and HeadObject, never to PutObject.
    fail_calls(s3, "ListObjectsV2", "", code="AccessDenied")
    fail_calls(s3, "HeadObject", "", code="AccessDenied")
    several = [write(tmp_path / "d" / f"f{i}.txt", f"file {i}") for i in range(3)]
    one = write(tmp_path / "one.txt", "one")

    many = transfer.upload(s3, transfer.collect_files(several), Location(BUCKET, "w/"))
    single = transfer.upload(s3, transfer.collect_files([one]), Location(BUCKET, "w/"))

    assert (many.ok, many.failed, single.ok, single.failed) == (3, 0, 1, 0)
