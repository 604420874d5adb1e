"""The processor's test fault hook (handlers/common/faults.py), built from an environment.

The kill and the hang themselves are proven through the real runtime in
tests/server/test_faults.py; here, which steps fire and that a marker fires a fault once.
"""

from __future__ import annotations

import hashlib

from common import faults
from common.attempt import no_fault


def test_no_spec_is_no_hook():
    assert faults.from_environment({}) is no_fault
    assert faults.from_environment({"PIPECTL_FAULT": ""}) is no_fault


def test_only_the_named_step_and_key_fire(monkeypatch):
    # given a hook armed for two (step, key) pairs, whose firing is recorded
    fired = []
    monkeypatch.setattr(faults, "_fire", lambda action, step, key, markers:
                        fired.append((action, step, key, markers)))
    hook = faults.from_environment({"PIPECTL_FAULT": "after_output:incoming/a b.csv, "
                                                     "hang@after_copy:incoming/c.csv"})

    # when every step runs for three keys
    for key in ("incoming/a b.csv", "incoming/c.csv", "incoming/other.csv"):
        for step in ("after_download", "after_output", "after_copy", "after_move"):
            hook(step, key)

    # then only the two named ones fired, each with its action
    assert fired == [("", "after_output", "incoming/a b.csv", None),
                     ("hang", "after_copy", "incoming/c.csv", None)]


def test_a_fault_whose_marker_exists_does_not_fire_again(tmp_path, capsys):
    # given the marker the first firing left (a kill would end this test's process)
    key = "incoming/once.csv"
    (tmp_path / f"after_move-{hashlib.sha256(key.encode()).hexdigest()[:16]}").touch()
    hook = faults.from_environment({"PIPECTL_FAULT": f"after_move:{key}",
                                    "PIPECTL_FAULT_MARKER": str(tmp_path)})

    # when the step comes again, then the process lives on and says nothing
    hook("after_move", key)
    assert capsys.readouterr().out == ""
