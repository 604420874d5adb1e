"""A warm local Lambda execution environment: one child process (see bootstrap.py) that
imports the handler once and serves invocations until it crashes, times out or is stopped."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from pipectl.errors import PipectlError

BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
INIT_TIMEOUT = 10.0  # Lambda's limit on an on-demand function's init phase
GRACE = 2.0  # how long a stopping environment may take to exit before it is killed
REPORT_WAIT = 30.0  # how long invoke() waits for on_log to reach the invocation's REPORT line
# The only AWS_* variables inherited from pipectl's own environment. Profiles, keys and
# endpoints reach the function through `env`, as a Lambda function sees only its own
# configuration and its execution role; never the operator's credentials.
_INHERITED_AWS = {"AWS_REGION", "AWS_DEFAULT_REGION"}


class WorkerError(PipectlError):
    """An invocation of a local function failed."""


class WorkerInitError(WorkerError):
    """The handler could not be loaded (Runtime.ImportModuleError and friends); retried."""


class HandlerError(WorkerError):
    """The handler raised; the environment stays warm, as on Lambda."""

    def __init__(self, error_type: str, message: str, traceback_text: str):
        self.error_type, self.message, self.traceback = error_type, message, traceback_text
        super().__init__(f"{error_type}: {message}")


class InvocationTimeout(WorkerError):
    """The handler ran past the function's timeout; the environment was thrown away."""


class WorkerCrashed(WorkerError):
    """The runtime process died mid-invocation; exit_code is negative for a signal."""

    def __init__(self, exit_code: int | None):
        self.exit_code = exit_code
        signals = {-s.value: s.name for s in signal.Signals}
        reason = f"signal: {signals[exit_code]}" if exit_code in signals else None
        super().__init__(f"Runtime exited with error: {reason or f'exit status {exit_code}'}")


class Worker:
    """One execution environment of one function. Invocations run one at a time.

    on_log receives every line the function writes to stdout or stderr (plus Lambda's
    START/END/REPORT and timeout lines), from a daemon thread. All lines of an invocation
    have been passed to on_log by the time invoke() returns or raises.
    """

    def __init__(self, handlers_dir: Path, handler: str, env: dict[str, str],
                 function_name: str, timeout: float, memory_mb: int,
                 on_log: Callable[[str], None]):
        self.handlers_dir, self.handler, self.env = Path(handlers_dir), handler, dict(env)
        self.function_name, self.timeout, self.memory_mb = function_name, timeout, memory_mb
        self.on_log = on_log
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()
        self._report_prefix = ""
        self.log_stream = ""
        self._reported = threading.Event()

    @property
    def pid(self) -> int | None:
        """The runtime process's pid; None while no environment is running."""
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        """Start a fresh environment (a cold start) unless one is running."""
        if self._proc:
            return
        read_fd, write_fd = os.pipe()
        code = f"import runpy; runpy.run_path({str(BOOTSTRAP)!r}, run_name='__main__')"
        try:
            # Its own session: Ctrl-C in the terminal reaches pipectl, which stops workers itself.
            self._proc = subprocess.Popen(
                [sys.executable, "-c", code, self.handler, str(write_fd)],
                cwd=self.handlers_dir, env=self._environment(), pass_fds=(write_fd,),
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                start_new_session=True)
        except BaseException:
            os.close(read_fd)
            raise
        finally:
            os.close(write_fd)  # the child's copy alone keeps it open: EOF means it exited
        self._replies, self._buffer, self._ready = read_fd, b"", False
        self._selector = selectors.DefaultSelector()
        self._selector.register(read_fd, selectors.EVENT_READ)
        self._log_thread = threading.Thread(target=self._pump_log, args=(self._proc.stdout,),
                                            name=f"log-{self.function_name}", daemon=True)
        self._log_thread.start()

    def invoke(self, event: dict, request_id: str | None = None) -> dict | list | None:
        """Run the handler on event and return its result, starting an environment if needed."""
        request_id = request_id or str(uuid.uuid4())
        body = json.dumps(event)  # an event that is not JSON fails here, the worker untouched
        with self._lock:
            self.start()
            try:
                if not self._ready:
                    self._await_init()
                self._report_prefix = f"REPORT RequestId: {request_id}\t"
                self._reported.clear()
                deadline = time.monotonic() + self.timeout
                # The deadline the context counts down to, as Lambda-Runtime-Deadline-Ms.
                deadline_ms = int((time.time() + self.timeout) * 1000)
                request = f'{{"id": {json.dumps(request_id)}, "deadline_ms": {deadline_ms}, ' \
                          f'"event": {body}}}\n'
                try:
                    stdin = self._proc.stdin if self._proc else None
                    assert stdin is not None, "invoke() runs in a started worker"
                    stdin.write(request.encode())
                    stdin.flush()
                    reply = self._read_reply(deadline)
                except BrokenPipeError:
                    reply = None
            except TimeoutError:
                self._discard(grace=0)
                message = f"Task timed out after {self.timeout:.2f} seconds"
                with contextlib.suppress(Exception):
                    self.on_log(f"{request_id} {message}")
                raise InvocationTimeout(message) from None
            except BaseException:
                # Ctrl-C or a bug mid-protocol: a reply may still be in flight, so this
                # environment cannot be trusted with the next request.
                self._discard(grace=0)
                raise
            if reply is None:
                raise WorkerCrashed(self._discard(grace=GRACE))
            # The REPORT line is in the pipe before the reply: wait until on_log has seen
            # every line (a slow sink, such as the log shipper on a loaded machine, can take
            # seconds), bounded in case a sink hangs.
            self._reported.wait(REPORT_WAIT)
        if "error" in reply:
            error = reply["error"]
            raise HandlerError(error["errorType"], error["errorMessage"], error["stackTrace"])
        return reply["result"]

    def stop(self) -> None:
        """Shut the environment down: no more requests, GRACE seconds to exit, then SIGKILL."""
        with self._lock:
            self._discard(grace=GRACE)

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("AWS_") or k in _INHERITED_AWS}
        # No shared config or credentials files and no instance metadata: on Lambda the
        # credentials come from the execution role, here only from `env`.
        env.update(AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
                   AWS_EC2_METADATA_DISABLED="true")
        env.update(self.env)
        # Lambda's reserved variables; a function's configuration cannot override them.
        stream = f"{time.strftime('%Y/%m/%d', time.gmtime())}/[$LATEST]{uuid.uuid4().hex}"
        self.log_stream = stream  # each environment (cold start) writes to a stream of its own
        env.update({
            "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(self.timeout)),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": stream,
            "AWS_EXECUTION_ENV": "AWS_Lambda_pipectl_local",
            "LAMBDA_TASK_ROOT": str(self.handlers_dir.resolve()),
            "_HANDLER": self.handler,
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
        })
        return env

    def _await_init(self) -> None:
        try:
            reply = self._read_reply(time.monotonic() + INIT_TIMEOUT)
        except TimeoutError:
            self._discard(grace=0)
            raise WorkerInitError(f"Init timed out after {INIT_TIMEOUT:.2f} seconds") from None
        if reply is None:
            raise WorkerInitError(str(WorkerCrashed(self._discard(grace=GRACE))))
        if "init_error" in reply:
            error = reply["init_error"]
            self._discard(grace=GRACE)  # Lambda retries the init on the next invocation
            raise WorkerInitError(f"{error['errorType']}: {error['errorMessage']}")
        self._ready = True

    def _read_reply(self, deadline: float) -> dict | None:
        """The next reply line; None when the runtime has exited; TimeoutError at deadline."""
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if self._selector.select(remaining):
                chunk = os.read(self._replies, 1 << 16)
                if not chunk:
                    return None
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def _discard(self, grace: float) -> int | None:
        """Throw the environment away; return the runtime's exit code."""
        proc, self._proc = self._proc, None
        if proc is None:
            return None
        with contextlib.suppress(OSError):
            proc.stdin.close()  # type: ignore[union-attr]  # the runtime exits when no more requests can come
        deadline = time.monotonic() + grace
        with contextlib.suppress(TimeoutError):
            while grace and self._read_reply(deadline) is not None:
                pass
        # Kill the whole group (whatever the handler spawned too) before reaping the leader,
        # so the group id cannot have been reused by then.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait()
        self._selector.close()
        os.close(self._replies)
        self._log_thread.join(GRACE)
        self._ready = False
        return code

    def _pump_log(self, stream) -> None:
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            with contextlib.suppress(Exception):  # a failing sink must not block the prints
                self.on_log(line)
            if self._report_prefix and line.startswith(self._report_prefix):
                self._reported.set()
        stream.close()
