"""The inside of a local Lambda execution environment, as Lambda's Python runtime bootstrap.

Run by pipectl.local.worker as `python bootstrap.py HANDLER RESPONSE_FD` with cwd and
LAMBDA_TASK_ROOT set to the handlers directory. Standard library only, and it never
imports pipectl: the handler sees the interpreter the way Lambda's runtime leaves it.

Protocol, one JSON object per line:
  stdin (requests)     {"id": request_id, "event": ..., "deadline_ms": epoch milliseconds}
  RESPONSE_FD (replies) first {"ready": true} or {"init_error": {...}}, then per request
                       {"id": ..., "result": ...} or {"id": ..., "error": {...}}
stdout and stderr carry nothing but the function's log, as in CloudWatch Logs.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import time
import traceback

_request_id = ""


class LambdaContext:
    """The attributes and method of the context object Lambda's Python runtime passes."""

    function_version = "$LATEST"
    identity = None
    client_context = None

    def __init__(self, request_id: str, deadline_ms: int):
        name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
        self.function_name = name
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]
        self.aws_request_id = request_id
        self.invoked_function_arn = f"arn:aws:lambda:{region}:000000000000:function:{name}"
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(exc: BaseException, error_type: str | None = None, message: str | None = None) -> dict:
    return {"errorType": error_type or type(exc).__name__,
            "errorMessage": " ".join((str(exc) if message is None else message).split()),
            "stackTrace": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))}


def _log_error(error: dict) -> None:
    # Lambda writes an unhandled error to the function's log as well as returning it.
    error_line = f"[ERROR] {error['errorType']}: {error['errorMessage']}"
    sys.stderr.write(f"{error_line}\n{error['stackTrace']}")
    sys.stderr.flush()


def _log_line(text: str) -> None:
    """Runtime lines (START/END/REPORT) go to fd 1 whatever the handler did to sys.stdout."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os.write(1, (text + "\n").encode())


def _install_log_handler() -> None:
    # Lambda's runtime preinstalls this root handler, so `logging.getLogger().info(...)` in a
    # handler prints with the request id once the handler sets the level (the root stays WARNING).
    class _RequestId(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.aws_request_id = _request_id
            return True

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S"))
    handler.formatter.converter = time.gmtime  # type: ignore[union-attr]  # set just above
    handler.addFilter(_RequestId())
    logging.getLogger().addHandler(handler)


def _load(spec: str):
    """Import the handler once, as Lambda's init phase does."""
    module_name, _, function_name = spec.replace("/", ".").rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as exc:
        raise _Failure(exc, "Runtime.UserCodeSyntaxError", None) from exc
    except ImportError as exc:
        raise _Failure(exc, "Runtime.ImportModuleError",
                         f"Unable to import module '{module_name}': {exc}") from exc
    except BaseException as exc:  # noqa: B036 - sys.exit() at import is an init error too
        raise _Failure(exc, None, None) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        missing = AttributeError(function_name)
        raise _Failure(missing, "Runtime.HandlerNotFound",
                         f"Handler '{function_name}' missing on module '{module_name}'")
    return function


class _Failure(Exception):
    """An error the runtime reports in Lambda's shape (init errors, unmarshallable results)."""

    def __init__(self, exc: BaseException, error_type: str | None, message: str | None):
        self.error = _error(exc, error_type, message)


def main() -> None:
    global _request_id
    spec, response_fd = sys.argv[1], int(sys.argv[2])
    # Lambda puts the task root first on sys.path; running this file put its own directory there.
    sys.path[0] = os.environ["LAMBDA_TASK_ROOT"]
    # Keep the protocol away from the handler: requests move to a private fd and fd 0 reads
    # /dev/null; the reply fd is not inherited by anything the handler spawns.
    requests = os.fdopen(os.dup(0), "rb")
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.set_inheritable(response_fd, False)
    replies = os.fdopen(response_fd, "w", encoding="utf-8")

    def reply(message: dict) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    _install_log_handler()
    try:
        function = _load(spec)
    except _Failure as failure:
        _log_error(failure.error)
        reply({"init_error": failure.error})
        return
    reply({"ready": True})

    for line in requests:
        request = json.loads(line)
        _request_id = request["id"]
        context = LambdaContext(_request_id, request["deadline_ms"])
        started = time.monotonic()
        _log_line(f"START RequestId: {_request_id} Version: $LATEST")
        try:
            result = function(request["event"], context)
            try:
                message = json.dumps({"id": _request_id, "result": result})
            except (TypeError, ValueError) as exc:
                raise _Failure(exc, "Runtime.MarshalError",
                                 f"Unable to marshal response: {exc}") from exc
        except _Failure as failure:
            _log_error(failure.error)
            message = json.dumps({"id": _request_id, "error": failure.error})
        except Exception as exc:  # the environment survives a handler exception, as on Lambda
            error = _error(exc)
            _log_error(error)
            message = json.dumps({"id": _request_id, "error": error})
        duration = (time.monotonic() - started) * 1000
        _log_line(f"END RequestId: {_request_id}")
        _log_line(f"REPORT RequestId: {_request_id}\tDuration: {duration:.2f} ms\t"
                  f"Memory Size: {context.memory_limit_in_mb} MB")
        replies.write(message + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
