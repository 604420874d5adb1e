"""`pipectl reconcile` against a moto server: rows checked against the objects they name."""

from __future__ import annotations

import pytest

from tests.server.conftest import deploy_and_process

pytestmark = pytest.mark.server

UPLOADS = {f"incoming/r{i}.csv": f"Id,Name\n{i},x\n".encode() for i in range(4)}
UPLOADS["incoming/odd + name (1).json"] = b'{"A": 1}'


@pytest.fixture
def processed(pipectl, client, names):
    return deploy_and_process(pipectl, client, names, UPLOADS)


def test_a_consistent_pipeline_reconciles_with_exit_0(pipectl, processed):
    checked = pipectl("-o", "json", "reconcile")

    assert checked.code == 0, checked.err
    data = checked.json()
    assert data["consistent"] is True and data["differences"] == []
    assert (data["rows"], data["outputs"], data["completed"]) == (5, 5, 5)
    assert "5 rows (5 outputs), 5 originals in completed/" in checked.err


def test_every_broken_promise_is_one_difference_and_exit_1(pipectl, processed, names):
    # given: one output deleted, one replaced, an original in completed/ no row moved
    # there, and a file waiting in incoming/ that no notification announced
    s3 = processed
    rows = {r["key"]: r for r in pipectl("-o", "json", "results").json()["results"]}
    gone = rows["incoming/r0.csv"]["output"].split("/", 3)[3]
    changed = rows["incoming/odd + name (1).json"]["output"].split("/", 3)[3]
    s3.delete_object(Bucket=names["processed"], Key=gone)
    s3.put_object(Bucket=names["processed"], Key=changed, Body=b'{"a":2}\n')
    s3.put_object(Bucket=names["raw"], Key="completed/stray.csv", Body=b"a\n")
    s3.put_bucket_notification_configuration(Bucket=names["raw"],
                                             NotificationConfiguration={})
    s3.put_object(Bucket=names["raw"], Key="incoming/unseen.csv", Body=b"a\n")

    # when
    checked = pipectl("-o", "json", "reconcile", "--stuck-after", "0s")
    table = pipectl("reconcile", "--stuck-after", "0s")

    # then
    assert checked.code == 1, checked.err
    found = sorted((d["problem"], d["key"]) for d in checked.json()["differences"])
    assert found == [("original without a row", "completed/stray.csv"),
                     ("output differs", "incoming/odd + name (1).json"),
                     ("output missing", "incoming/r0.csv"),
                     ("waiting without a row", "incoming/unseen.csv")]
    assert checked.json()["consistent"] is False
    assert table.code == 1
    assert "output missing" in table.out and "4 difference(s)" in table.err


def test_before_deploy_reconcile_names_the_missing_table(pipectl):
    checked = pipectl("reconcile")
    assert checked.code == 1
    assert checked.err.strip() == ("error: results table 'pipectl-demo-dev-results' does not "
                                   "exist (run `pipectl deploy`)")
