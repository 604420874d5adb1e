"""The local Lambda execution environment: warm reuse, isolation, and what Lambda does on
handler errors, timeouts and crashes. Each test writes a throwaway handler into tmp_path."""

from __future__ import annotations

import os
import select
import textwrap
import time

import pytest

from pipectl.local.worker import (
    HandlerError,
    InvocationTimeout,
    Worker,
    WorkerCrashed,
    WorkerInitError,
)

COUNTER = """
import os
calls = 0

def lambda_handler(event, context):
    global calls
    calls += 1
    return {"calls": calls, "pid": os.getpid()}
"""


@pytest.fixture
def make_worker(tmp_path):
    """make_worker(source, **overrides) -> (worker, logs); every worker is stopped afterwards."""
    workers = []

    def make(source: str, module: str = "fn", **overrides):
        (tmp_path / f"{module}.py").write_text(textwrap.dedent(source))
        logs: list[str] = []
        options = dict(handlers_dir=tmp_path, handler=f"{module}.lambda_handler", env={},
                       function_name="pipectl-test-fn", timeout=10, memory_mb=256,
                       on_log=logs.append)
        options.update(overrides)
        worker = Worker(**options)
        workers.append(worker)
        return worker, logs

    yield make
    for worker in workers:
        worker.stop()


def assert_gone(pid: int) -> None:
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_handler_module_is_imported_once_and_stays_warm(make_worker):
    worker, _ = make_worker(COUNTER)

    first = worker.invoke({})
    second = worker.invoke({})

    assert (first["calls"], second["calls"]) == (1, 2)
    assert first["pid"] == second["pid"] == worker.pid


def test_handler_sees_its_configuration_and_lambda_variables_but_not_operator_credentials(
        make_worker, monkeypatch):
    monkeypatch.setenv("AWS_PROFILE", "operator")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "operator-key")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://operator:1")
    worker, _ = make_worker("""
        import os, sys
        def lambda_handler(event, context):
            return {k: os.environ.get(k) for k in event["keys"]} | {"path0": sys.path[0]}
    """, env={"TABLE": "results", "AWS_ACCESS_KEY_ID": "function-key"})

    seen = worker.invoke({"keys": ["TABLE", "AWS_LAMBDA_FUNCTION_NAME", "AWS_ACCESS_KEY_ID",
                                   "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_REGION",
                                   "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "LAMBDA_TASK_ROOT"]})

    assert seen["TABLE"] == "results"
    assert seen["AWS_LAMBDA_FUNCTION_NAME"] == "pipectl-test-fn"
    assert seen["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert seen["AWS_ACCESS_KEY_ID"] == "function-key"
    assert seen["AWS_PROFILE"] is None and seen["AWS_ENDPOINT_URL"] is None
    assert seen["AWS_REGION"] == "us-east-1"
    assert seen["path0"] == seen["LAMBDA_TASK_ROOT"] == str(worker.handlers_dir.resolve())


def test_context_is_lambda_like(make_worker):
    worker, _ = make_worker("""
        def lambda_handler(event, context):
            return {k: getattr(context, k) for k in (
                "function_name", "function_version", "memory_limit_in_mb", "aws_request_id",
                "invoked_function_arn", "log_group_name", "log_stream_name",
            )} | {"remaining": context.get_remaining_time_in_millis()}
    """, timeout=5)

    context = worker.invoke({}, request_id="req-1")

    assert context["function_name"] == "pipectl-test-fn"
    assert context["function_version"] == "$LATEST"
    assert int(context["memory_limit_in_mb"]) == 256
    assert context["aws_request_id"] == "req-1"
    assert context["invoked_function_arn"] == (
        "arn:aws:lambda:us-east-1:000000000000:function:pipectl-test-fn")
    assert context["log_group_name"] == "/aws/lambda/pipectl-test-fn"
    assert "[$LATEST]" in context["log_stream_name"]
    assert 3000 < context["remaining"] <= 5000


def test_prints_and_logging_reach_on_log_without_breaking_the_protocol(make_worker):
    worker, logs = make_worker("""
        import logging, sys
        logging.getLogger().setLevel(logging.INFO)
        def lambda_handler(event, context):
            print('{"id": "not-a-reply", "result": "forged"}')
            print("to stderr", file=sys.stderr)
            logging.info("structured")
            return {"stdin": sys.stdin.read(), "ok": True}
    """)

    result = worker.invoke({}, request_id="req-7")

    assert result == {"stdin": "", "ok": True}
    assert '{"id": "not-a-reply", "result": "forged"}' in logs
    assert "to stderr" in logs
    assert any(line.startswith("[INFO]\t") and line.endswith("\treq-7\tstructured")
               for line in logs)
    assert logs[0] == "START RequestId: req-7 Version: $LATEST"
    assert logs[-1].startswith("REPORT RequestId: req-7\tDuration: ")


def test_every_line_of_an_invocation_is_logged_before_invoke_returns(make_worker):
    logs: list[str] = []

    def slow_sink(line: str) -> None:  # a terminal or CloudWatch sink lags behind the function
        time.sleep(0.05)
        logs.append(line)

    worker, _ = make_worker("""
        def lambda_handler(event, context):
            for n in range(5):
                print(f"line {n}")
    """, on_log=slow_sink)

    worker.invoke({}, request_id="req-9")

    assert [line for line in logs if line.startswith("line ")] == [f"line {n}" for n in range(5)]
    assert logs[-1].startswith("REPORT RequestId: req-9\t")


def test_handler_exception_is_reported_and_the_environment_stays_warm(make_worker):
    worker, logs = make_worker("""
        calls = 0
        def lambda_handler(event, context):
            global calls
            calls += 1
            if event.get("fail"):
                raise ValueError("bad record 7")
            return calls
    """)

    with pytest.raises(HandlerError) as caught:
        worker.invoke({"fail": True})
    pid = worker.pid

    assert (caught.value.error_type, caught.value.message) == ("ValueError", "bad record 7")
    assert 'raise ValueError("bad record 7")' in caught.value.traceback
    assert "[ERROR] ValueError: bad record 7" in logs
    assert "Traceback (most recent call last):" in logs
    assert worker.invoke({}) == 2
    assert worker.pid == pid


def test_result_that_is_not_json_is_a_handler_error(make_worker):
    worker, _ = make_worker("def lambda_handler(event, context):\n    return {1, 2}\n")

    with pytest.raises(HandlerError) as caught:
        worker.invoke({})

    assert caught.value.error_type == "Runtime.MarshalError"
    assert "not JSON serializable" in caught.value.message


def test_event_that_is_not_json_is_refused_and_the_environment_stays_warm(make_worker):
    worker, _ = make_worker(COUNTER)
    pid = worker.invoke({})["pid"]

    with pytest.raises(TypeError):
        worker.invoke({"when": object()})

    assert worker.invoke({}) == {"calls": 2, "pid": pid}


def test_timeout_kills_the_environment_and_the_next_invoke_starts_a_new_one(make_worker):
    worker, logs = make_worker("""
        import os, time
        def lambda_handler(event, context):
            time.sleep(event["sleep"])
            return os.getpid()
    """, timeout=1)
    worker.start()
    pid = worker.pid

    started = time.monotonic()
    with pytest.raises(InvocationTimeout, match=r"^Task timed out after 1\.00 seconds$"):
        worker.invoke({"sleep": 5}, request_id="slow")
    elapsed = time.monotonic() - started

    assert 1 <= elapsed < 3
    assert worker.pid is None
    assert_gone(pid)
    assert logs[-1] == "slow Task timed out after 1.00 seconds"
    new_pid = worker.invoke({"sleep": 0})
    assert new_pid != pid and new_pid == worker.pid


def test_crash_mid_invocation_raises_and_the_next_invoke_starts_a_new_one(make_worker):
    worker, _ = make_worker("""
        import os
        def lambda_handler(event, context):
            if event.get("crash"):
                os._exit(3)
            return os.getpid()
    """)
    first = worker.invoke({})

    with pytest.raises(WorkerCrashed, match="exit status 3") as caught:
        worker.invoke({"crash": True})

    assert caught.value.exit_code == 3
    assert_gone(first)
    second = worker.invoke({})
    assert second != first


def test_killed_from_outside_is_a_crash(make_worker):
    worker, _ = make_worker("""
        import os, signal
        def lambda_handler(event, context):
            os.kill(os.getpid(), signal.SIGKILL)
    """)

    with pytest.raises(WorkerCrashed, match="signal: SIGKILL") as caught:
        worker.invoke({})

    assert caught.value.exit_code == -9


@pytest.mark.parametrize(("source", "handler", "expected"), [
    ("import no_such_module_xyz\n", "fn.lambda_handler",
     "Runtime.ImportModuleError: Unable to import module 'fn': "
     "No module named 'no_such_module_xyz'"),
    ("raise RuntimeError('config\\nmissing')\n", "fn.lambda_handler",
     "RuntimeError: config missing"),
    ("def other(event, context):\n    pass\n", "fn.lambda_handler",
     "Runtime.HandlerNotFound: Handler 'lambda_handler' missing on module 'fn'"),
    ("def lambda_handler(event, context)\n", "fn.lambda_handler",
     "Runtime.UserCodeSyntaxError: "),
])
def test_init_errors_are_one_line_and_retried_on_the_next_invoke(make_worker, source, handler,
                                                                  expected):
    worker, logs = make_worker(source, handler=handler)

    for _ in range(2):  # Lambda retries the init phase on the next invocation
        with pytest.raises(WorkerInitError) as caught:
            worker.invoke({})
        assert str(caught.value).startswith(expected)
        assert "\n" not in str(caught.value)
        assert worker.pid is None
    assert any(line.startswith("[ERROR] " + expected) for line in logs)


def test_stop_leaves_no_process_behind_even_what_the_handler_spawned(make_worker):
    worker, _ = make_worker("""
        import subprocess
        def lambda_handler(event, context):
            return subprocess.Popen(["sleep", "60"]).pid
    """)
    grandchild = worker.invoke({})
    pid = worker.pid

    worker.stop()
    worker.stop()  # idempotent

    assert worker.pid is None
    assert_gone(pid)
    assert exited(grandchild)


def test_environments_leak_no_file_descriptors(make_worker):
    fds = set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
    if fds is None:
        pytest.skip("needs /proc")
    worker, _ = make_worker("""
        import time
        def lambda_handler(event, context):
            time.sleep(event["sleep"])
    """, timeout=1)

    worker.invoke({"sleep": 0})
    with pytest.raises(InvocationTimeout):
        worker.invoke({"sleep": 5})
    worker.invoke({"sleep": 0})
    worker.stop()

    assert set(os.listdir("/proc/self/fd")) == fds


def test_context_manager_stops(make_worker):
    worker, _ = make_worker(COUNTER)

    with worker:
        pid = worker.pid
        assert worker.invoke({})["pid"] == pid

    assert_gone(pid)


def exited(pid: int) -> bool:
    """Whether a process that is not our child has exited (it may wait for init to reap it)."""
    if not hasattr(os, "pidfd_open"):
        pytest.skip("needs pidfd_open (Linux)")
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], 2)[0])  # readable once it has exited
    finally:
        os.close(fd)
