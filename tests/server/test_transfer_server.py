"""upload and download as a user runs them: the real `pipectl` against a moto server."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest

pytestmark = pytest.mark.server

BUCKET = "transfer-bench"
FILES = 300
INTERRUPTED = re.compile(r"^error: interrupted: (\d+) of 300 files uploaded; run the same "
                         r"command again to send the rest$")


@pytest.fixture
def bucket(client):
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    return s3


def sizes(s3, prefix: str) -> dict[str, int]:
    return {o["Key"]: o["Size"] for page in s3.get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=prefix) for o in page.get("Contents", [])}


def test_ctrl_c_says_how_far_it_got_and_a_rerun_sends_the_rest(bucket, pipeline_dir,
                                                               moto_server, subprocess_env,
                                                               pipectl):
    # given: 300 files, and an upload interrupted once 20 of them are confirmed
    data = pipeline_dir / "data"
    data.mkdir()
    for i in range(FILES):
        (data / f"f{i:03d}.csv").write_text(f"id,n\n{i},{i * i}\n")
    command = [sys.executable, "-m", "pipectl", "--endpoint-url", moto_server, "upload",
               "data/", "--to", f"s3://{BUCKET}/in/"]
    proc = subprocess.Popen(command, cwd=pipeline_dir, env=subprocess_env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    lines = []
    assert proc.stderr is not None
    for line in proc.stderr:  # off a terminal: one plain line per file uploaded
        lines.append(line.rstrip("\n"))
        if sum(1 for seen in lines if seen.startswith("uploaded data/")) == 20:
            proc.send_signal(signal.SIGINT)
            break
    rest = proc.communicate(timeout=60)[1]
    lines += rest.splitlines()

    # then: exit 130, and the count it gives is what S3 holds, verified
    assert proc.returncode == 130, "\n".join(lines)
    assert "Traceback" not in rest
    match = INTERRUPTED.match(lines[-1])
    assert match, lines[-1]
    uploaded = int(match.group(1))
    assert 20 <= uploaded < FILES
    there = sizes(bucket, "in/")
    # A PUT in flight at Ctrl-C may land after it was counted as not done: never the reverse.
    assert len(there) >= uploaded

    # when: the same command again
    again = pipectl("-o", "json", "upload", "data/", "--to", f"s3://{BUCKET}/in/")

    # then: what is there with the same checksum is skipped, the rest is sent
    assert again.code == 0, again.err
    report = again.json()
    assert report["skipped"] >= uploaded
    assert report["ok"] + report["skipped"] == FILES and report["failed"] == 0
    assert all(f["reason"] == "unchanged" for f in report["files"] if f["status"] == "skipped")
    assert sizes(bucket, "in/") == {f"in/f{i:03d}.csv": len(f"id,n\n{i},{i * i}\n")
                                    for i in range(FILES)}


def test_download_to_stdout_and_into_a_new_directory(bucket, pipectl, pipeline_dir,
                                                    moto_server, subprocess_env):
    body = bytes(range(256)) * 1000
    bucket.put_object(Bucket=BUCKET, Key="dir/blob.bin", Body=body)

    streamed = subprocess.run([sys.executable, "-m", "pipectl", "--endpoint-url", moto_server,
                               "download", f"s3://{BUCKET}/dir/blob.bin", "-"],
                              cwd=pipeline_dir, env=subprocess_env, capture_output=True,
                              stdin=subprocess.DEVNULL, timeout=120)
    assert streamed.returncode == 0, streamed.stderr
    assert streamed.stdout == body  # the bytes alone: the summary went to stderr
    assert b"downloaded 1 file (250.0 KiB)" in streamed.stderr

    into = pipectl("download", f"s3://{BUCKET}/dir/blob.bin", "fresh/dir/")
    assert into.code == 0, into.err
    assert (pipeline_dir / "fresh" / "dir" / "blob.bin").read_bytes() == body


def test_off_a_terminal_a_long_upload_prints_a_line_every_tenth(bucket, pipectl, pipeline_dir):
    # over HTTP, as a user's upload goes: s3transfer reports as the body is sent, in chunks
    # (mock_aws in-process reads a body whole, so this belongs to the server tier)
    (pipeline_dir / "big.bin").write_bytes(os.urandom(3 * 1024 * 1024))
    done = pipectl("upload", "big.bin", "--to", f"s3://{BUCKET}/big/")
    assert done.code == 0, done.err
    percents = [int(line.split()[1].rstrip("%")) for line in done.err.splitlines()
                if line.startswith("upload: ")]
    assert len(percents) >= 2 and all(10 <= p < 100 for p in percents)
    assert len({p // 10 for p in percents}) == len(percents) and percents == sorted(percents)
    assert "(3.0 MiB)" in done.err.splitlines()[-1]                 # then the summary line
