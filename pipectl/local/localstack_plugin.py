"""A LocalStack Lambda runtime executor that stores functions and runs nothing.

Loaded by LocalStack, never by pipectl (it imports LocalStack, which pipectl does not
depend on): pipectl/local/localstack.py puts this file on the LocalStack process's path
with an entry point in LocalStack's plugin namespace, and selects it with
LAMBDA_RUNTIME_EXECUTOR. LocalStack's own executor prepares every new function in Docker
(the runtime-init binary, the runtime image), so without Docker each CreateFunction ends
State=Failed. This one prepares nothing, so functions reach State=Active as they do on
AWS, and pipectl's local runtime runs them from the deployed configuration, as on moto.

Loading it also mends one LocalStack behaviour that differs from AWS and that pipectl's
emulator deployments meet every time: see _finish_idle_deletes.
"""

from __future__ import annotations

from localstack.services.lambda_.invocation.plugins import RuntimeExecutorPlugin
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

NAME = "pipectl-store-only"
_NO_RUN = ("this LocalStack stores functions without running them (no Docker): "
           "`pipectl run` serves them from the deployed configuration")


class StoreOnlyExecutor(RuntimeExecutor):
    @classmethod
    def prepare_version(cls, function_version) -> None:
        pass  # nothing to pull or unpack: the code stays stored for GetFunction

    @classmethod
    def cleanup_version(cls, function_version) -> None:
        pass

    def start(self, env_vars: dict[str, str]) -> None:
        raise LambdaRuntimeException(_NO_RUN)

    def stop(self) -> None:
        pass

    def get_address(self) -> str:
        return ""

    def get_endpoint_from_executor(self) -> str:
        return ""

    def get_runtime_endpoint(self) -> str:
        return ""

    def invoke(self, payload):
        raise LambdaRuntimeException(_NO_RUN)

    def get_logs(self) -> str:
        return ""


class StoreOnlyExecutorPlugin(RuntimeExecutorPlugin):
    name = NAME

    def load(self, *args, **kwargs):
        _finish_idle_deletes()
        return StoreOnlyExecutor


def _finish_idle_deletes() -> None:
    """Let a deleted mapping that has no poller running actually go away.

    LocalStack removes a deleted event source mapping from its store at the end of the
    mapping's poller thread; a disabled mapping (the only kind pipectl deploys to an
    emulator) has no such thread, so it stays State=Deleting for ever, and a new mapping
    for the same function and queue is refused (ResourceConflictException). On AWS a
    deleted mapping "might not be completely deleted for several seconds", then is gone.
    """
    from localstack.services.lambda_.event_source_mapping.esm_worker import EsmWorker

    original = EsmWorker.delete
    if getattr(original, "pipectl", False):
        return

    def delete(self) -> None:
        original(self)
        poller = self._poller_thread
        if poller is None or not poller.is_alive():
            self.delete_esm_in_store()

    delete.pipectl = True  # type: ignore[attr-defined]
    EsmWorker.delete = delete
