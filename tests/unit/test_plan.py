"""The planner is pure: desired vs observed -> create / update / noop, naming changed fields."""

from pipectl.deploy.models import Bucket, Queue, Table
from pipectl.deploy.plan import plan, step


def test_missing_resource_is_created():
    desired = Queue(role="dlq", name="q-dlq", attributes={"MessageRetentionPeriod": "1209600"})
    s = step(desired, None)
    assert (s.action, s.reason) == ("create", "does not exist")


def test_identical_resource_is_noop():
    desired = Bucket(role="raw", name="b", lifecycle_rules={"r": {"ID": "r", "Days": 1}})
    assert step(desired, Bucket(role="raw", name="b",
                                lifecycle_rules={"r": {"ID": "r", "Days": 1}})).action == "noop"


def test_update_names_each_changed_field_with_before_and_after():
    desired = Queue(role="processing", name="q",
                    attributes={"VisibilityTimeout": "360", "MessageRetentionPeriod": "345600"})
    observed = Queue(role="processing", name="q",
                     attributes={"VisibilityTimeout": "30", "MessageRetentionPeriod": "345600"})
    s = step(desired, observed)
    assert s.action == "update"
    assert [(c.field, c.before, c.after) for c in s.changes] == [
        ("attributes.VisibilityTimeout", "30", "360")]


def test_lists_in_documents_compare_as_sets_but_key_schemas_keep_their_order():
    statement = {"Sid": "s", "Resource": ["arn:b", "arn:b/*"]}
    desired = Bucket(role="raw", name="b", policy_statements={"s": statement})
    reordered = Bucket(role="raw", name="b", policy_statements={
        "s": {"Sid": "s", "Resource": ["arn:b/*", "arn:b"]}})
    assert step(desired, reordered).action == "noop"

    table = Table(name="t", partition_key="object_key", indexes={"i": ("status", "updated_at")})
    swapped = Table(name="t", partition_key="object_key", indexes={"i": ("updated_at", "status")})
    assert step(table, swapped).action == "update"


def test_plan_counts_and_has_changes():
    q = Queue(role="dlq", name="q")
    p = plan("local", [(q, q), (Queue(role="processing", name="p"), None)])
    assert p.has_changes
    assert (p.count("create"), p.count("update"), p.count("noop")) == (1, 0, 1)
    assert not plan("local", [(q, q)]).has_changes
