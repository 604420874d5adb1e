"""Generated trees of files through upload and download (mock_aws): any key S3 accepts
comes back as the same file, and a second run of either sends nothing."""

from __future__ import annotations

import itertools
import tempfile
from pathlib import Path

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from pipectl.ops import download as downloads
from pipectl.ops import transfer
from pipectl.ops.transfer import Location

BUCKET = "roundtrip"
# Any character a local file name can hold: unicode, spaces, +, %, #; not the separator,
# NUL or lone surrogates. Backslashes and drive-like "x:" are refused by download on purpose
# (tests/functional/test_transfer.py), so they are left out here.
segment = st.text(st.characters(blacklist_categories=("Cs", "Cc"),
                                blacklist_characters="/\\:"),
                  min_size=1, max_size=24).filter(lambda s: s not in (".", "..")
                                                  and len(s.encode()) <= 200)
tree = st.dictionaries(st.lists(segment, min_size=1, max_size=3).map(tuple),
                       st.binary(max_size=2048), min_size=1, max_size=6)
_prefixes = itertools.count()


@pytest.fixture(scope="module")
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def write_tree(root: Path, files: dict[tuple[str, ...], bytes]) -> dict[str, bytes]:
    written = {}
    for parts, body in files.items():
        # A name that is both a file and a directory cannot exist locally: keep the first.
        if any(Path(*parts[:i]).as_posix() in written for i in range(1, len(parts))) or any(
                k.startswith(Path(*parts).as_posix() + "/") for k in written):
            continue
        path = root.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        written[Path(*parts).as_posix()] = body
    return written


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*")
            if p.is_file()}


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=tree)
def test_upload_then_download_is_the_same_tree_and_reruns_send_nothing(s3, files):
    with tempfile.TemporaryDirectory() as scratch:
        source, target = Path(scratch) / "src", Path(scratch) / "dst"
        source.mkdir()
        expected = write_tree(source, files)
        destination = Location(BUCKET, f"run-{next(_prefixes)} +%#/")
        local = transfer.collect_files([f"{source}/"])

        first = transfer.upload(s3, local, destination)
        again = transfer.upload(s3, local, destination)
        fetched = downloads.download(s3, destination, target)
        refetched = downloads.download(s3, destination, target)

        assert (first.ok, first.failed) == (len(expected), 0), first.files
        assert (again.ok, again.skipped) == (0, len(expected)), again.files
        assert read_tree(target) == expected
        assert (fetched.ok, refetched.ok, refetched.skipped) == (
            len(expected), 0, len(expected)), refetched.files
