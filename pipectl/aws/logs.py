"""CloudWatch Logs: the log groups the local runtime writes to, as Lambda would."""

from __future__ import annotations

from botocore.exceptions import ClientError

from pipectl.aws.session import error_code


def ensure_stream(logs, group: str, stream: str) -> None:
    for call, kwargs in ((logs.create_log_group, {"logGroupName": group}),
                         (logs.create_log_stream, {"logGroupName": group,
                                                   "logStreamName": stream})):
        try:
            call(**kwargs)
        except ClientError as exc:
            if error_code(exc) != "ResourceAlreadyExistsException":
                raise


def put_events(logs, group: str, stream: str, events: list[tuple[int, str]]) -> None:
    """events: (timestamp ms, message), in order. PutLogEvents takes up to 10,000 per call."""
    for start in range(0, len(events), 10_000):
        chunk = events[start:start + 10_000]
        logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=[
            {"timestamp": ts, "message": message} for ts, message in chunk])
