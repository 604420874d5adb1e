"""upload, download and ls as `aws s3 cp` and rsync users expect, through cli.app.run."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest

from tests.cli.conftest import RAW


def keys(client, bucket=RAW) -> dict[str, int]:
    return {o["Key"]: o["Size"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", [])}


def tree(pipeline_dir, name="data"):
    root = pipeline_dir / name
    (root / "sub").mkdir(parents=True)
    (root / "a.csv").write_text("a,b\n1,2\n")
    (root / "sub" / "b.json").write_text('{"k": 1}')
    return root


# ---------------------------------------------------------------- upload: names and prefixes

def test_upload_dir_keeps_its_name_and_dir_slash_uploads_its_contents(s3, pipectl, pipeline_dir):
    tree(pipeline_dir)

    assert pipectl("upload", "data", "--to", "raw/named/")[0] == 0
    assert pipectl("upload", "data/", "--to", "raw/contents/")[0] == 0

    assert set(keys(s3)) == {"named/data/a.csv", "named/data/sub/b.json",
                             "contents/a.csv", "contents/sub/b.json"}


def test_upload_dot_uploads_the_current_directory_contents(s3, pipectl, pipeline_dir):
    tree(pipeline_dir)

    code, out, err = pipectl("upload", "data/sub/.", "--to", "raw/dot/")

    assert code == 0, err
    assert set(keys(s3)) == {"dot/b.json"}


@pytest.mark.parametrize("args, message", [
    (("a.csv", "b.csv"), "error: 2 files need a prefix ending in /: --to s3://{raw}/in/x/"),
    (("data",), "error: 2 files need a prefix ending in /: --to s3://{raw}/in/x/"),
    (("one",), "error: a directory needs a prefix ending in /: --to s3://{raw}/in/x/"),
])
def test_several_files_to_a_key_are_refused(s3, pipectl, pipeline_dir, args, message):
    (pipeline_dir / "a.csv").write_text("1")
    (pipeline_dir / "b.csv").write_text("2")
    (pipeline_dir / "one").mkdir()
    (pipeline_dir / "one" / "c.csv").write_text("3")
    tree(pipeline_dir)

    code, out, err = pipectl("upload", *args, "--to", "raw/in/x")

    assert code == 2
    assert err.strip() == message.format(raw=RAW)
    assert keys(s3) == {}


def test_one_file_to_a_key_is_that_key(s3, pipectl, pipeline_dir):
    (pipeline_dir / "a.csv").write_text("1")

    assert pipectl("upload", "a.csv", "--to", "raw/in/renamed.csv")[0] == 0

    assert keys(s3) == {"in/renamed.csv": 1}


# ---------------------------------------------------------------- upload: skip, dry run, quiet

def test_unchanged_files_are_skipped_and_changed_ones_sent(s3, pipectl, pipeline_dir):
    root = tree(pipeline_dir)
    assert pipectl("upload", "data")[0] == 0
    (root / "a.csv").write_text("a,b\n9,9\n")  # same size, other bytes

    code, out, err = pipectl("-o", "json", "upload", "data")

    assert code == 0, err
    report = json.loads(out)
    by_key = {f["uri"].rsplit("/incoming/", 1)[1]: f for f in report["files"]}
    assert (by_key["data/a.csv"]["status"], by_key["data/sub/b.json"]["status"]) == (
        "ok", "skipped")
    assert by_key["data/sub/b.json"]["reason"] == "unchanged"
    assert (report["ok"], report["skipped"]) == (1, 1)
    assert "skipped data/sub/b.json: unchanged" in err
    assert s3.get_object(Bucket=RAW, Key="incoming/data/a.csv")["Body"].read() == b"a,b\n9,9\n"


def test_an_object_without_a_checksum_is_replaced(s3, pipectl, pipeline_dir):
    (pipeline_dir / "a.csv").write_text("1,2\n")
    s3.put_object(Bucket=RAW, Key="incoming/a.csv", Body=b"1,2\n")  # same bytes, no SHA-256

    code, out, err = pipectl("-o", "json", "upload", "a.csv")

    assert code == 0, err
    assert json.loads(out)["ok"] == 1
    head = s3.head_object(Bucket=RAW, Key="incoming/a.csv", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"1,2\n").digest()).decode()


def test_dry_run_lists_and_sends_nothing(s3, pipectl, pipeline_dir):
    root = tree(pipeline_dir)
    assert pipectl("upload", str(root / "sub" / "b.json"), "--to", "raw/incoming/data/sub/")[0] == 0

    code, out, err = pipectl("upload", "data", "--dry-run")

    assert code == 0, err
    assert f"would upload data/a.csv -> s3://{RAW}/incoming/data/a.csv (8 B)" in err
    assert "skipped data/sub/b.json: unchanged" in err
    assert f"would upload 1 file (8 B) to s3://{RAW}/incoming/; 1 skipped" in err
    assert set(keys(s3)) == {"incoming/data/sub/b.json"}

    code, out, err = pipectl("-o", "json", "upload", "data", "--dry-run")
    report = json.loads(out)
    assert (report["dry_run"], report["planned"], report["skipped"], report["ok"]) == (
        True, 1, 1, 0)


def test_quiet_upload_and_download_print_only_problems(s3, pipectl, pipeline_dir):
    tree(pipeline_dir)

    code, out, err = pipectl("upload", "data", "--quiet")
    assert (code, out, err) == (0, "", "")

    code, out, err = pipectl("download", "raw/incoming/", "out", "-q")
    assert (code, out, err) == (0, "", "")
    assert (pipeline_dir / "out" / "data" / "sub" / "b.json").read_text() == '{"k": 1}'

    (pipeline_dir / "out" / "data" / "a.csv").write_text("mine")
    code, out, err = pipectl("download", "raw/incoming/", "out", "-q")
    assert code == 1
    assert err.splitlines()[0].startswith("error: refused s3://")


# ---------------------------------------------------------------- upload: suffix rules

def test_upload_warns_about_files_no_rule_will_process(s3, pipectl, pipeline_dir):
    for name in ("UPPER.CSV", "x.bin", "fine.csv"):
        (pipeline_dir / name).write_text("a\n1\n")

    code, out, err = pipectl("-o", "json", "upload", "UPPER.CSV", "x.bin", "fine.csv")

    assert code == 0, err
    assert ("warning: UPPER.CSV: no processor.suffixes rule matches (S3 filters are "
            "case-sensitive); it will not be processed") in err.splitlines()
    assert ("warning: x.bin: no processor.suffixes rule matches; it will not be processed"
            in err.splitlines())
    assert "fine.csv" not in "".join(line for line in err.splitlines() if "warning" in line)
    assert len(json.loads(out)["warnings"]) == 2
    assert set(keys(s3)) == {"incoming/UPPER.CSV", "incoming/x.bin", "incoming/fine.csv"}


def test_no_suffix_warning_outside_incoming(s3, pipectl, pipeline_dir):
    (pipeline_dir / "x.bin").write_text("1")

    code, out, err = pipectl("upload", "x.bin", "--to", "raw/elsewhere/")

    assert code == 0, err
    assert "warning" not in err


# ---------------------------------------------------------------- download: where it writes

def test_download_key_to_dir_slash_creates_dir(s3, pipectl, pipeline_dir):
    s3.put_object(Bucket=RAW, Key="incoming/a.csv", Body=b"abc")

    code, out, err = pipectl("download", "raw/incoming/a.csv", "new/dir/")

    assert code == 0, err
    assert (pipeline_dir / "new" / "dir" / "a.csv").read_bytes() == b"abc"


def test_download_key_to_dash_streams_to_stdout(s3, capsysbinary, pipeline_dir, monkeypatch):
    from pipectl.cli.app import run

    body = bytes(range(256)) * 40
    s3.put_object(Bucket=RAW, Key="incoming/bin.dat", Body=body)
    monkeypatch.chdir(pipeline_dir)
    capsysbinary.readouterr()
    code = run(["--config", str(pipeline_dir / "pipeline.yaml"), "download",
                "raw/incoming/bin.dat", "-"])
    out, err = capsysbinary.readouterr()

    assert code == 0, err
    assert out == body
    assert b"downloaded 1 file" in err
    assert not (pipeline_dir / "-").exists()


def test_download_prefix_to_dash_is_a_usage_error(s3, pipectl):
    s3.put_object(Bucket=RAW, Key="incoming/a.csv", Body=b"abc")

    code, out, err = pipectl("download", "raw/incoming/", "-")

    assert code == 2
    assert "'-' streams one object; a prefix downloads into a directory" in err


# ---------------------------------------------------------------- download: existing files

@pytest.fixture
def local_copy(s3, pipectl, pipeline_dir):
    s3.put_object(Bucket=RAW, Key="incoming/a.csv", Body=b"from s3\n")
    s3.put_object(Bucket=RAW, Key="incoming/b.csv", Body=b"same\n")
    out = pipeline_dir / "out"
    out.mkdir()
    (out / "a.csv").write_text("mine\n")
    (out / "b.csv").write_text("same\n")
    return out


def test_download_never_replaces_a_differing_file_by_default(local_copy, pipectl):
    code, out, err = pipectl("download", "raw/incoming/", "out")

    assert code == 1
    assert (f"error: refused s3://{RAW}/incoming/a.csv: out/a.csv exists and differs: "
            "--force replaces it, --no-clobber keeps it") in err.splitlines()
    assert "skipped s3://" in err and "b.csv: unchanged" in err
    assert (local_copy / "a.csv").read_text() == "mine\n"


def test_download_force_replaces_and_no_clobber_keeps(local_copy, pipectl):
    code, out, err = pipectl("download", "raw/incoming/", "out", "--no-clobber")
    assert code == 0, err
    assert (local_copy / "a.csv").read_text() == "mine\n"
    assert "a.csv: exists (--no-clobber)" in err

    code, out, err = pipectl("-o", "json", "download", "raw/incoming/", "out", "--force")
    assert code == 0, err
    assert (local_copy / "a.csv").read_text() == "from s3\n"
    report = json.loads(out)
    assert (report["ok"], report["skipped"]) == (1, 1)  # b.csv was already the same


def test_force_and_no_clobber_together_is_exit_2(local_copy, pipectl):
    code, out, err = pipectl("download", "raw/incoming/", "out", "--force", "--no-clobber")

    assert code == 2
    assert err.strip() == ("error: --force and --no-clobber contradict each other: "
                           "choose one")


# ---------------------------------------------------------------- ls

def test_ls_of_nothing_is_exit_1(s3, pipectl):
    s3.put_object(Bucket=RAW, Key="incoming/a.csv", Body=b"1")

    code, out, err = pipectl("ls", "raw/nothing-here/")
    assert code == 1
    assert err.strip() == f"error: nothing under s3://{RAW}/nothing-here/"

    code, out, err = pipectl("-o", "json", "ls", "raw/nothing-here/")
    assert code == 1
    assert json.loads(out) == {"bucket": RAW, "prefix": "nothing-here/", "prefixes": [],
                               "objects": []}

    assert pipectl("ls", "raw/incoming/a")[0] == 0  # a key prefix matches, as aws s3 ls
