"""pipectl reprocess and results' version filters through pipectl.cli.app.run: usage
errors before any AWS call, and the command's JSON against a mock_aws deployment."""

from __future__ import annotations

import pytest
from moto import mock_aws

USAGE = [
    (("reprocess",), "say what to reprocess: --filter, --status, --since/--until, "
                     "--not-current, --older-than-version or --stranded"),
    (("reprocess", "--status", "ARCHIVED"), "--status: ARCHIVED rows are not reprocessed"),
    (("reprocess", "--status", "DONE"), "--status: 'DONE' is not one of"),
    (("reprocess", "--not-current", "--older-than-version", "abc"),
     "--not-current and --older-than-version exclude each other"),
    (("reprocess", "--stranded", "--rate", "0"), "--rate: must be more than 0"),
    (("reprocess", "--stranded", "--since", "yesterday"), "--since: 'yesterday' is neither"),
    (("reprocess", "--stranded", "--engine", "s3-batch", "--rate", "5"),
     "--rate paces the queue engine"),
    (("--endpoint-url", "http://127.0.0.1:4567", "reprocess", "--stranded", "--engine",
      "s3-batch"), "--engine s3-batch is for AWS: S3 Batch Operations is not emulated"),
    (("results", "--processor-version", "a", "--not-processor-version", "b"),
     "--processor-version and --not-processor-version exclude each other"),
]


@pytest.mark.parametrize(("args", "message"), USAGE)
def test_a_bad_selection_is_one_line_and_exit_2(aws_pipeline, pipectl, args, message):
    with mock_aws():
        code, out, err = pipectl(*args)
    assert code == 2 and out == ""
    assert err.startswith(f"error: {message}") and err.count("\n") == 1, err


def test_before_deploy_the_missing_processor_is_named(aws_pipeline, pipectl):
    with mock_aws():
        code, _, err = pipectl("reprocess", "--stranded", "--yes")
    assert code == 1
    assert err == "error: function 'demo-dev-processor' is not deployed (run `pipectl deploy`)\n"
