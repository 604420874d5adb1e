"""pipectl ls / upload / download through pipectl.cli.app.run: exit codes, messages, JSON."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import RAW
from tests.helpers import ACCOUNT

PROCESSED = f"demo-dev-processed-{ACCOUNT}"
ARCHIVE = f"demo-dev-archive-{ACCOUNT}"


def keys(client, bucket=RAW) -> dict[str, int]:
    return {o["Key"]: o["Size"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_ls_buckets_json(s3, pipectl):
    code, out, err = pipectl("--output", "json", "ls")

    assert code == 0, err
    assert json.loads(out) == [
        {"role": "raw", "name": RAW, "exists": True},
        {"role": "processed", "name": PROCESSED, "exists": False},
        {"role": "archive", "name": ARCHIVE, "exists": False},
    ]


def test_ls_buckets_table(s3, pipectl):
    code, out, err = pipectl("ls")

    assert code == 0, err
    assert RAW in out and "yes" in out and "no" in out


def test_upload_then_ls_json(s3, pipectl, pipeline_dir):
    data = pipeline_dir / "data"
    (data / "sub").mkdir(parents=True)
    (data / "a.csv").write_text("a,b\n1,2\n")
    (data / "sub" / "b c+d.json").write_text('{"k": 1}')

    code, out, err = pipectl("--output", "json", "upload", "data")

    assert code == 0, err
    report = json.loads(out)
    assert set(report) == {"operation", "ok", "failed", "skipped", "refused", "bytes",
                           "dry_run", "warnings", "files"}
    assert (report["operation"], report["ok"], report["failed"], report["skipped"],
            report["refused"], report["bytes"], report["dry_run"], report["warnings"]) == (
        "upload", 2, 0, 0, 0, 16, False, [])
    assert sorted(report["files"], key=lambda f: f["uri"]) == [
        {"local": "data/a.csv", "uri": f"s3://{RAW}/incoming/data/a.csv", "bytes": 8,
         "status": "ok", "error": None, "reason": None},
        {"local": "data/sub/b c+d.json", "uri": f"s3://{RAW}/incoming/data/sub/b c+d.json",
         "bytes": 8, "status": "ok", "error": None, "reason": None},
    ]
    assert keys(s3) == {"incoming/data/a.csv": 8, "incoming/data/sub/b c+d.json": 8}
    assert "uploaded 2 files (16 B)" in err

    code, out, err = pipectl("-o", "json", "ls", "raw/incoming/data/")

    assert code == 0, err
    listing = json.loads(out)
    assert set(listing) == {"bucket", "prefix", "prefixes", "objects"}
    assert (listing["bucket"], listing["prefix"], listing["prefixes"]) == (
        RAW, "incoming/data/", ["incoming/data/sub/"])
    [obj] = listing["objects"]
    assert set(obj) == {"key", "size", "last_modified", "storage_class"}
    assert (obj["key"], obj["size"], obj["storage_class"]) == ("incoming/data/a.csv", 8, "STANDARD")


def test_upload_plain_lines_off_a_terminal(s3, pipectl, pipeline_dir):
    (pipeline_dir / "a.csv").write_text("x" * 2048)

    code, out, err = pipectl("upload", "a.csv", "--to", "raw/incoming/")

    assert code == 0, err
    assert out == ""  # data only on stdout; progress and summary on stderr
    assert f"uploaded a.csv -> s3://{RAW}/incoming/a.csv (2.0 KiB)" in err


def test_ls_table_shows_prefixes_and_objects(s3, pipectl):
    s3.put_object(Bucket=RAW, Key="incoming/a.csv", Body=b"1234")
    s3.put_object(Bucket=RAW, Key="incoming/sub/b.csv", Body=b"1")

    code, out, err = pipectl("ls", "raw/incoming/")

    assert code == 0, err
    assert "incoming/sub/" in out and "PRE" in out and "incoming/a.csv" in out
    assert "incoming/sub/b.csv" not in out
    code, out, err = pipectl("ls", "-r", f"s3://{RAW}/incoming/")
    assert "incoming/sub/b.csv" in out


def test_upload_missing_local_path_is_exit_2_and_uploads_nothing(s3, pipectl, pipeline_dir):
    (pipeline_dir / "a.csv").write_text("x")

    code, out, err = pipectl("upload", "a.csv", "missing.csv")

    assert code == 2
    assert err.strip() == "error: missing.csv: no such file or directory"
    assert keys(s3) == {}


@pytest.mark.parametrize("args", [
    ("ls", "nowhere/x"),
    ("ls", "http://bucket/key"),
    ("download", "s3://", "out"),
    ("upload", "pipeline.yaml", "--to", "rawr/incoming/"),
])
def test_bad_location_is_exit_2(s3, pipectl, args):
    code, out, err = pipectl(*args)

    assert code == 2
    assert "is not a location" in err or "bucket name is missing" in err
    assert len(err.strip().splitlines()) == 1


def test_missing_bucket_is_exit_1_naming_it(s3, pipectl):
    code, out, err = pipectl("upload", "pipeline.yaml", "--to", "processed/")

    assert code == 1
    assert err.strip() == (f"error: bucket '{PROCESSED}' does not exist (run `pipectl deploy`?)")

    code, out, err = pipectl("ls", "s3://no-such-bucket/x/")
    assert code == 1 and "bucket 'no-such-bucket' does not exist" in err


def test_download_prefix(s3, pipectl, pipeline_dir):
    s3.put_object(Bucket=RAW, Key="incoming/a.csv", Body=b"abc")
    s3.put_object(Bucket=RAW, Key="incoming/x/b.csv", Body=b"de")

    code, out, err = pipectl("-o", "json", "download", "raw/incoming/", "out")

    assert code == 0, err
    report = json.loads(out)
    assert (report["operation"], report["ok"], report["bytes"]) == ("download", 2, 5)
    assert (pipeline_dir / "out" / "x" / "b.csv").read_bytes() == b"de"


def test_download_refused_key_is_listed_and_exit_1(s3, pipectl, pipeline_dir):
    s3.put_object(Bucket=RAW, Key="incoming/../../evil.txt", Body=b"evil")
    s3.put_object(Bucket=RAW, Key="incoming/ok.txt", Body=b"ok")

    code, out, err = pipectl("download", "raw/incoming/", "sub/out")

    assert code == 1
    assert (f"error: refused s3://{RAW}/incoming/../../evil.txt: unsafe key: its local path "
            "would be outside sub/out") in err.splitlines()
    assert "1 refused" in err
    assert err.strip().splitlines()[-1] == "error: 1 refused (listed above)"
    assert not (pipeline_dir / "evil.txt").exists()
    assert [p.name for p in (pipeline_dir / "sub" / "out").iterdir()] == ["ok.txt"]


def test_download_not_found_is_exit_1_with_the_uri(s3, pipectl):
    code, out, err = pipectl("download", "raw/incoming/nope.csv", "out")

    assert code == 1
    assert f"s3://{RAW}/incoming/nope.csv: no such key" in err


def test_failed_file_is_exit_1_after_trying_all(s3, pipectl, pipeline_dir, monkeypatch):
    from pipectl.aws import s3 as s3_seam
    from tests.functional.s3_faults import fail_calls

    (pipeline_dir / "d").mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (pipeline_dir / "d" / name).write_text(name)
    real_enter = s3_seam.Transfers.__enter__

    def failing_b(self):  # pipectl's own client refuses b.txt as S3 would (not retried)
        fail_calls(self.client, "PutObject", "b.txt", code="AccessDenied")
        return real_enter(self)

    monkeypatch.setattr(s3_seam.Transfers, "__enter__", failing_b)
    code, out, err = pipectl("upload", "d", "--jobs", "1")

    assert code == 1
    assert set(keys(s3)) == {"incoming/d/a.txt", "incoming/d/c.txt"}
    assert f"error: d/b.txt: access denied to s3://{RAW}/incoming/d/b.txt (uploading)" in err
    assert err.strip().splitlines()[-1] == "error: 1 of 3 files failed to upload"


def test_missing_config_is_exit_2(pipectl, pipeline_dir):
    (pipeline_dir / "pipeline.yaml").unlink()

    code, out, err = pipectl("ls")

    assert code == 2 and "pipeline.yaml: not found" in err


def test_jobs_must_be_positive(s3, pipectl):
    code, out, err = pipectl("upload", "pipeline.yaml", "--jobs", "0")
    assert code == 2 and "--jobs" in err


@pytest.mark.parametrize("command", ["ls", "upload", "download"])
def test_help_renders(pipectl, command):
    code, out, err = pipectl(command, "--help")
    assert code == 0, err
    assert "s3://BUCKET" in out


def test_keys_with_brackets_are_shown_verbatim(s3, pipectl, pipeline_dir):
    s3.put_object(Bucket=RAW, Key="incoming/data[bold].csv", Body=b"1")
    s3.put_object(Bucket=RAW, Key="incoming/x[/y].csv", Body=b"2")

    code, out, err = pipectl("ls", "-r", "raw/incoming/")
    assert code == 0, err
    assert "incoming/data[bold].csv" in out and "incoming/x[/y].csv" in out

    code, out, err = pipectl("download", "raw/incoming/", "out")
    assert code == 0, err
    assert (pipeline_dir / "out" / "x[" / "y].csv").read_bytes() == b"2"
    assert (pipeline_dir / "out" / "data[bold].csv").read_bytes() == b"1"
    assert f"s3://{RAW}/incoming/data[bold].csv -> out/data[bold].csv" in err


def test_prefix_with_brackets_in_the_title(s3, pipectl):
    s3.put_object(Bucket=RAW, Key="in[/x]/a.csv", Body=b"1")

    code, out, err = pipectl("ls", "raw/in[/x]/")

    assert code == 0, err
    assert out.splitlines()[0] == f"s3://{RAW}/in[/x]/"
