"""Test hook: fault injection, for tests/server/test_faults.py only.

PIPECTL_FAULT="STEP:KEY[,...]" makes the process SIGKILL itself at STEP (after_download,
after_output, before_results, after_copy, before_delete, after_move) while handling KEY;
"hang@STEP:KEY" sleeps instead, until the runtime's timeout kills it. With
PIPECTL_FAULT_MARKER=<directory> each fault fires once (a marker file records that it
did); without it, every time.

The entry module builds the hook once, at a cold start, and hands it to the attempt
(common/attempt.py): the environment of a Lambda execution environment is fixed for its
life, so reading it once is the same as reading it at every step, and the code that
does the work never looks at test settings. Unset, the hook is attempt.no_fault.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from collections.abc import Mapping

from common import contract
from common.attempt import Fault, no_fault


def from_environment(environ: Mapping[str, str]) -> Fault:
    spec = environ.get(contract.PIPECTL_FAULT)
    if not spec:
        return no_fault
    faults = []
    for entry in spec.split(","):
        where, _, key = entry.strip().partition(":")
        action, _, step = where.rpartition("@")
        faults.append((action, step, key))
    markers = environ.get(contract.PIPECTL_FAULT_MARKER)

    def fault(step: str, key: str) -> None:
        for action, fault_step, fault_key in faults:
            if fault_step == step and fault_key == key:
                _fire(action, step, key, markers)
                return

    return fault


def _fire(action: str, step: str, key: str, markers: str | None) -> None:
    if markers:
        name = f"{step}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"
        try:
            os.close(os.open(os.path.join(markers, name), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return
    print(json.dumps({"level": "WARNING", "message": f"test fault: {action or 'kill'} "
                      f"at {step}", "key": key}), flush=True)
    if action == "hang":
        while True:
            time.sleep(60)
    os.kill(os.getpid(), signal.SIGKILL)
