"""The moto patches' guard (pipectl/local/moto_patches/__init__.py): only the moto release
and code they were written for, on purpose off, idempotent; and the server's backend per
host (moto_patches/server.py) is the one moto finds."""

from __future__ import annotations

import moto
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipectl.local import moto_patches
from pipectl.local.moto_patches import patch_moto
from tests.functional.moto_patches.variants import plain, use

# --- the version guard -------------------------------------------------------------------

def test_another_moto_release_runs_plain_with_one_warning(monkeypatch):
    plain(monkeypatch)
    monkeypatch.setattr(moto, "__version__", "5.3.0")
    lines: list[str] = []

    assert patch_moto(monkeypatch.setattr, lines.append) is False
    assert lines == ["moto 5.3.0 is not the release pipectl's emulator patches were "
                     "written for (5.2.1): running plain moto, which slows down as queues "
                     "and tables fill"]
    assert not any(getattr(moto_patches._current(p), "moto_patch", False)
                   for p in moto_patches._patches())


def test_changed_moto_code_under_the_same_version_runs_plain(monkeypatch):
    from moto.sqs.models import SQSBackend

    plain(monkeypatch)
    original = SQSBackend.receive_message
    monkeypatch.setattr(SQSBackend, "receive_message",
                        lambda self, *a, **k: original(self, *a, **k))
    lines: list[str] = []

    assert patch_moto(monkeypatch.setattr, lines.append) is False
    assert lines == ["moto's receive_message is not the code pipectl's emulator patches were "
                     "written against: running plain moto, which slows down as queues and "
                     "tables fill"]
    assert not any(getattr(moto_patches._current(p), "moto_patch", False)
                   for p in moto_patches._patches())


def test_the_switch_turns_the_patches_off(monkeypatch):
    plain(monkeypatch)
    monkeypatch.setenv(moto_patches.SWITCH, "0")
    lines: list[str] = []

    assert patch_moto(monkeypatch.setattr, lines.append) is False
    assert lines == []
    assert not any(getattr(moto_patches._current(p), "moto_patch", False)
                   for p in moto_patches._patches())


def test_patching_is_idempotent_and_keeps_the_dynamodb_lock(monkeypatch):
    from moto.dynamodb.models import DynamoDBBackend

    from pipectl.local.emulator import atomic_dynamodb

    plain(monkeypatch)
    atomic_dynamodb(monkeypatch.setattr)  # the lock first, as a test fixture may add it
    assert patch_moto(monkeypatch.setattr) and patch_moto(monkeypatch.setattr)

    installed = DynamoDBBackend.__dict__["transact_write_items"]
    assert installed.moto_patch and installed.atomic
    assert not getattr(installed.replaces, "moto_patch", False)


# --- the server's backend per host --------------------------------------------------------

SERVICES = ["s3", "dynamodb", "sqs", "lambda", "logs", "iam", "sts", "events", "monitoring",
            "s3-control", "unknown-service"]
hosts = st.one_of(
    st.builds(lambda service, region: f"{service}.{region}.amazonaws.com",
              st.sampled_from(SERVICES), st.sampled_from(["us-east-1", "eu-west-1"])),
    st.builds(lambda bucket: f"{bucket}.s3.amazonaws.com",
              st.from_regex(r"[a-z0-9][a-z0-9-]{2,20}", fullmatch=True)),
    st.sampled_from([None, "moto_api", "s3", "dynamodb", "instance_metadata", "localhost",
                     "127.0.0.1:4566"]),
    st.text(st.characters(codec="ascii", exclude_categories=("Cc",)), max_size=30))


def dispatcher(variant: str, monkeypatch):
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    use(variant, monkeypatch)
    return DomainDispatcherApplication(create_backend_app)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(asked=st.lists(hosts, min_size=1, max_size=8))
def test_a_backend_found_per_host_is_the_one_moto_finds(monkeypatch, capsys, asked):
    found = {}
    for variant in ("plain", "patched"):
        app = dispatcher(variant, monkeypatch)
        found[variant] = [app.get_backend_for_host(host) for host in asked + asked]
        capsys.readouterr()      # moto prints a line for an unknown amazonaws.com host

    assert found["patched"] == found["plain"]


def test_the_module_list_is_read_once_per_host(monkeypatch):
    from moto import backends

    app = dispatcher("patched", monkeypatch)
    listed = []
    original = backends.list_of_moto_modules
    monkeypatch.setattr(backends, "list_of_moto_modules",
                        lambda: listed.append(1) or original())

    for _ in range(3):
        assert app.get_backend_for_host("s3.us-east-1.amazonaws.com") == "s3"
        assert app.get_backend_for_host("sqs.us-east-1.amazonaws.com") == "sqs"

    assert len(listed) == 2
