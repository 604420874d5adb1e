"""pipectl reconcile under mock_aws: each broken promise found once, whatever the keys."""

from __future__ import annotations

import itertools
from datetime import timedelta

import boto3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipectl.naming import Names
from pipectl.ops.reconcile import reconcile
from tests.helpers import put_result

# Any key S3 accepts (UTF-8, up to 1,024 bytes): unicode, spaces, "+", "%", "#".
NAMES = st.text(st.characters(codec="utf-8", exclude_characters="\x00/"), min_size=1,
                max_size=40)
_counter = itertools.count()


def processed_file(names: Names, name: str) -> str:
    """A file as the processor leaves it: output, original in completed/, PROCESSED row."""
    s3 = boto3.client("s3", region_name="us-east-1")
    key, output = f"incoming/{name}", f"processed/2030/01/01/{name}.jsonl"
    etag = s3.put_object(Bucket=names.bucket("processed"), Key=output, Body=b"{}\n")["ETag"]
    s3.put_object(Bucket=names.bucket("raw"), Key=f"completed/{name}", Body=b"a\n")
    put_result(names, key, key=key, status="PROCESSED", updated_at="2030-01-01T00:00:00+00:00",
               output=f"s3://{names.bucket('processed')}/{output}", output_etag=etag,
               location=f"completed/{name}")
    return output


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(NAMES, min_size=2, max_size=5, unique=True), data=st.data())
def test_every_difference_is_found_once_whatever_the_keys(aws, deployed, files, data):
    # given: files processed as the processor leaves them (each example under a fresh
    # directory), then one output deleted, one replaced, one original without a row and
    # one upload that never got a row
    run = f"run{next(_counter)}/"
    outputs = {name: processed_file(deployed, run + name) for name in files}
    s3 = boto3.client("s3", region_name="us-east-1")
    deleted, replaced = data.draw(st.permutations(files))[:2]
    s3.delete_object(Bucket=deployed.bucket("processed"), Key=outputs[deleted])
    s3.put_object(Bucket=deployed.bucket("processed"), Key=outputs[replaced], Body=b"[]\n")
    stray, unseen = data.draw(NAMES), data.draw(NAMES.filter(lambda n: n not in files))
    s3.put_object(Bucket=deployed.bucket("raw"), Key=f"completed/{run}stray/{stray}", Body=b"a")
    s3.put_object(Bucket=deployed.bucket("raw"), Key=f"incoming/{run}{unseen}", Body=b"a")

    # when
    report = reconcile(aws, deployed, stuck_after=timedelta(0))

    # then: exactly these four, among everything earlier examples left consistent
    mine = sorted((d.problem, d.key) for d in report.differences if run in d.key)
    assert mine == sorted([("output missing", f"incoming/{run}{deleted}"),
                           ("output differs", f"incoming/{run}{replaced}"),
                           ("original without a row", f"completed/{run}stray/{stray}"),
                           ("waiting without a row", f"incoming/{run}{unseen}")])
    assert not report.consistent


def test_rows_without_output_etag_are_checked_against_the_source_version(aws, deployed):
    # given: a row written before rows carried output_etag, whose output names another
    # version of its source
    s3 = boto3.client("s3", region_name="us-east-1")
    output = "processed/2030/01/01/old.jsonl"
    s3.put_object(Bucket=deployed.bucket("processed"), Key=output, Body=b"{}\n",
                  Metadata={"source-etag": "v2"})
    put_result(deployed, "incoming/old.csv", key="incoming/old.csv", status="PROCESSED",
               updated_at="2030-01-01T00:00:00+00:00", etag='"v1"',
               output=f"s3://{deployed.bucket('processed')}/{output}")

    report = reconcile(aws, deployed)

    assert [(d.problem, d.key, d.detail) for d in report.differences] == [
        ("output differs", "incoming/old.csv",
         f"s3://{deployed.bucket('processed')}/{output} was made from version v2, the row "
         "is for v1")]
