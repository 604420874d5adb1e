"""Version-guarded fixes for moto: two costs that grow with what it holds, two per request, a race.

None of these exists on AWS, but they decide whether the embedded emulator holds a burst:
- DynamoDB TransactWriteItems deep-copies every table the transaction names (once per
  item naming it) to undo a failed transaction, so a transaction costs O(table) and
  the copies stay on the heap until the cyclic collector finds them. Here it saves
  only the items it names, and restores those (and the table's stream) on failure.
- SQS ReceiveMessage recomputes all of the queue's attributes (three O(depth) counts,
  each reading the clock through datetime once or twice per message) for every message
  it returns, to read one number: MessageRetentionPeriod. Here the receive reads that
  number once per call, and the counts and the visible-message list read the clock once
  per pass over the queue instead of once or twice per message.
- SQS changes a queue's message list from several threads, and only a send takes the
  queue's lock: a delete racing a send or another delete loses one of them (a message
  gone, or a deleted one delivered again after its visibility timeout), and two receives
  at once can both take one message. Here a delete and a receive's pass over the queue
  take that lock too. (Not a cost: a race that a burst of 10,000 files showed.)
- The server resolves each request's backend from its host by listing moto's package
  directory (an isdir per entry) and trying every backend's URL pattern: about a seventh
  of its CPU in a burst. The answer depends on the host alone, so it is kept per host.
- DynamoDB parses an update expression twice per request and validates it with ten
  passes over its tree, three of which look at every clause under every node (quadratic
  in its length): half of moto's DynamoDB time in a burst, for the few expressions the
  processor sends with every file. Here the tree is kept per text (and the validator's
  working copy of it made from a pickle rather than by deepcopy), the three checks that
  read only the text, its names and the table's key attributes run once per combination,
  and each pass builds its list of node types once instead of at every node.

Each replacement is moto's own code with only that change, so it can go upstream as
is. It applies only to the moto release it was written for and only while moto's code
is the code it was written against (a digest of each replaced function's source);
otherwise plain moto runs and the caller gets one warning line. PIPECTL_MOTO_PATCHES=0
runs plain moto on purpose (the benchmarks' baseline).
"""

from __future__ import annotations

import copy
import functools
import hashlib
import inspect
import os
import pickle
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

WRITTEN_FOR = "5.2.1"
SWITCH = "PIPECTL_MOTO_PATCHES"


@dataclass(frozen=True)
class Patch:
    """One attribute of a moto class replaced; `digest` is of the source it replaces."""
    owner: type
    name: str
    digest: str
    replacement: Any


def patch_moto(patch: Callable[[object, str, object], None] = setattr,
               notice: Callable[[str], None] | None = None) -> bool:
    """Apply every patch, or none (idempotent). True when moto runs patched. `patch`
    lets a test undo it (pytest's monkeypatch.setattr)."""
    if os.environ.get(SWITCH, "1").strip().lower() in ("0", "off", "false", "no"):
        return False
    import moto

    patches = _patches()
    stale = [p for p in patches if _source_digest(_original(p)) != p.digest
             and not getattr(_current(p), "moto_patch", False)]
    if moto.__version__ != WRITTEN_FOR or stale:
        if notice is not None:
            why = (f"moto {moto.__version__} is not the release pipectl's emulator patches "
                   f"were written for ({WRITTEN_FOR})" if moto.__version__ != WRITTEN_FOR
                   else f"moto's {', '.join(p.name for p in stale)} is not the code "
                   "pipectl's emulator patches were written against")
            notice(f"{why}: running plain moto, which slows down as queues and tables fill")
        return False
    for p in patches:
        if not getattr(_current(p), "moto_patch", False):
            patch(p.owner, p.name, _install(p))
    return True


def _patches() -> list[Patch]:
    # moto's expression parser is untyped (its own modules import it with type: ignore)
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.parsing.ast_nodes import DepthFirstTraverser  # type: ignore[attr-defined]
    from moto.dynamodb.parsing.expressions import (  # type: ignore[attr-defined]
        UpdateExpressionParser,
    )
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator, Validator
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication
    from moto.sqs.models import Queue, SQSBackend

    return [
        Patch(DomainDispatcherApplication, "get_backend_for_host",
              "1f41972c1e4e660fbf4e4ddfeeed2fdff56dc105a8f8e1bf015640f710ef511a",
              get_backend_for_host),
        Patch(DynamoDBBackend, "transact_write_items",
              "81db2cb7d94e39c90b3a2077e1f4bb41a449c558ef9b1b1e2910fdaa39978ad4",
              transact_write_items),
        Patch(UpdateExpressionParser, "make",
              "2c00ed96d6e191f243b449166e75bfb38f307b2e19405bc0981847061e0dbee3",
              classmethod(update_expression_make)),
        Patch(UpdateExpressionValidator, "get_ast_processors",
              "918400bbecd67e8321619b3141e6a276e91a5112c8e8b602fbbc748d83329af6",
              update_expression_processors),
        Patch(Validator, "__init__",
              "9489b532dd0fb359e273711c1a67971f1b73af47ddbaa91868e9cc42a26ddbb3",
              validator_init),
        Patch(DepthFirstTraverser, "nodes_to_be_processed",
              "1c2c84c8097e35172d289d2cc30029d2d1c518f7680232a3f3c9f09e56a5e9b0",
              nodes_to_be_processed),
        Patch(SQSBackend, "receive_message",
              "065f3e5e7d2144089ce3b5d16d9306243ccd2f3ee11b44beb851292fadb7652f",
              receive_message),
        Patch(Queue, "delete_message",
              "fa6fd5b9bd2cafb4aaacd79da7fc656e513e1513197c2939ff002f9ebfd4be46",
              queue_delete_message),
        Patch(Queue, "messages",
              "03a531dbcbcf9aee2e61c7254c08946a499f5c57f2447a8f2e534aa85b067dea",
              property(queue_messages)),
        Patch(Queue, "approximate_number_of_messages_delayed",
              "c3c1dadb0c42ed5f8f5e1fddc8384de67db2df9a4055504f10903bd0b55e8d2f",
              property(approximate_number_of_messages_delayed)),
        Patch(Queue, "approximate_number_of_messages_not_visible",
              "5dbecc4dda174358d2aefa96e4b769def47fd6bb2c315241c451e8518c3fabab",
              property(approximate_number_of_messages_not_visible)),
    ]


def _current(p: Patch) -> Any:
    return _function(p.owner.__dict__[p.name])


def _function(value: Any) -> Any:
    """The function a property or classmethod holds, or the function itself."""
    if isinstance(value, property):
        return value.fget
    return value.__func__ if isinstance(value, classmethod) else value


def _original(p: Patch) -> Any:
    """moto's function, under the DynamoDB lock emulator.atomic_dynamodb may have added."""
    function = _current(p)
    return getattr(function, "__wrapped__", function)


def _install(p: Patch) -> Any:
    """The replacement, keeping the DynamoDB lock around it if one was already there;
    `replaces` keeps what it replaced (tests compare the two)."""
    current = _current(p)
    replaces = p.owner.__dict__[p.name]
    function = _function(p.replacement)
    if getattr(current, "atomic", False):
        from pipectl.local.emulator import locked

        function = locked(function)
    function = _marked(function, replaces)
    kind = type(p.replacement)
    return kind(function) if kind in (property, classmethod) else function


def _marked(function: Callable, replaces: Any) -> Callable:
    """A fresh wrapper per install, so each remembers what it replaced."""

    @functools.wraps(function)
    def patched(*args, **kwargs):
        return function(*args, **kwargs)

    patched.moto_patch = True  # type: ignore[attr-defined]
    patched.replaces = replaces  # type: ignore[attr-defined]
    return patched


def _source_digest(function: Any) -> str:
    try:
        source = inspect.getsource(function)
    except (OSError, TypeError):
        return ""
    return hashlib.sha256(source.encode()).hexdigest()


# --- DynamoDB: a transaction saves only the items it names --------------------------------

class _ItemSnapshot:
    """The items a transaction touches as they were before it, and each table's stream
    length, so a cancelled transaction puts back exactly those and nothing else."""

    def __init__(self) -> None:
        self._items: dict[tuple[int, Any, Any], tuple[Any, Any, Any, Any]] = {}
        self._streams: dict[int, tuple[Any, list, int]] = {}

    def save(self, table: Any, hash_value: Any, range_value: Any, item: Any) -> None:
        slot = (id(table), hash_value, range_value)
        if slot not in self._items:
            self._items[slot] = (table, hash_value, range_value, copy.deepcopy(item))
        shard = table.stream_shard
        if shard is not None and id(table) not in self._streams:
            self._streams[id(table)] = (shard, shard.items, len(shard.items))

    def restore(self) -> None:
        for table, hash_value, range_value, item in self._items.values():
            if range_value:  # as Table.put_item tells range tables apart
                if item is None:
                    table.items[hash_value].pop(range_value, None)
                else:
                    table.items[hash_value][range_value] = item
            elif item is None:
                table.items.pop(hash_value, None)
            else:
                table.items[hash_value] = item
        for shard, records, length in self._streams.values():
            # StreamShard.add may have handed its records to a Lambda mapping and started
            # a new list; the saved list still holds the ones from before.
            shard.items = records[:length]


def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.1's DynamoDBBackend.transact_write_items, saving the items it names
    instead of deep-copying every table it names (marked: "pipectl:")."""
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )
    from moto.dynamodb.models import get_filter_expression

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    # pipectl: the items this transaction touches, saved as each is first named.
    saved = _ItemSnapshot()

    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        # Check transact writes are not performing multiple operations on the same item
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException

        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")

            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            expression_attribute_names = op.get("ExpressionAttributeNames")
            expression_attribute_values = op.get("ExpressionAttributeValues")
            return_values_on_condition_check_failure = op.get(
                "ReturnValuesOnConditionCheckFailure")

            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]

            check_unicity(table_name, key)

            # pipectl: self.get_item(table_name, key), spelled out to save the item.
            table = self.get_table(table_name)
            hash_value, range_value = self.get_keys_value(table, key)
            current = table.get_item(hash_value, range_value)
            if op_type != "ConditionCheck":
                saved.save(table, hash_value, range_value, current)
            if condition_expression is not None:
                condition_op = get_filter_expression(
                    condition_expression,
                    expression_attribute_names,
                    expression_attribute_values,
                )
                if not condition_op.expr(current):
                    if return_values_on_condition_check_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)

            if op_type == "Put":
                attrs = op["Item"]
                self.put_item(
                    table_name,
                    attrs,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            elif op_type == "Update":
                update_expression = op["UpdateExpression"]
                self.update_item(
                    table_name,
                    key,
                    update_expression=update_expression,
                    condition_expression=condition_expression,
                    expression_attribute_names=expression_attribute_names,
                    expression_attribute_values=expression_attribute_values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            # Rollback to the original state, and reraise the error
            saved.restore()  # pipectl
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))  # type: ignore
        except Exception as e:  # noqa: E722 Do not use bare except
            # For other exceptions, capture their details
            errors.append((type(e).__name__, str(e), original_item))  # type: ignore

    if any(code is not None for code, _, _ in errors):
        # Rollback to the original state, and reraise the errors
        saved.restore()  # pipectl
        raise TransactionCanceledException(errors)


# --- SQS: one attribute read per receive, one clock read per pass -------------------------

def receive_message(self: Any, queue_name: str, count: int, wait_seconds_timeout: int,
                    visibility_timeout: int,
                    message_attribute_names: list[str] | None = None) -> list[Any]:
    """moto 5.2.1's SQSBackend.receive_message, reading MessageRetentionPeriod once per
    call instead of computing all the queue's attributes once per message (marked:
    "pipectl:")."""
    from moto.core.utils import unix_time
    from moto.sqs.models import _filter_message_attributes

    if message_attribute_names is None:
        message_attribute_names = []
    queue = self.get_queue(queue_name)
    result: list[Any] = []
    previous_result_count = len(result)

    polling_end = unix_time() + wait_seconds_timeout
    with queue._messages_lock:  # pipectl: another receive may change pending_messages
        currently_pending_groups = copy.deepcopy(queue.pending_message_groups)
    # pipectl: is_message_valid_based_on_retention_period read this through
    # get_queue_attributes (all attributes, three O(depth) counts) once per message.
    retention_period = queue.message_retention_period

    # queue.messages only contains visible messages
    while True:
        if result or (wait_seconds_timeout and unix_time() > polling_end):
            break

        messages_to_dlq: list[Any] = []

        # pipectl: the pass over the queue takes the queue's lock (add_message's), so two
        # receives at once cannot both take one message, nor a delete undo what it did.
        with queue._messages_lock:
            for message in queue.messages:
                if not message.visible:
                    continue

                if message in queue.pending_messages:
                    # The message is pending but is visible again, so the
                    # consumer must have timed out.
                    queue.pending_messages.remove(message)
                    currently_pending_groups = copy.deepcopy(queue.pending_message_groups)

                if message.group_id and queue.fifo_queue:
                    if message.group_id in currently_pending_groups:
                        # A previous call is still processing messages in this group, so we
                        # cannot deliver this one.
                        continue

                if (
                    queue.dead_letter_queue is not None
                    and queue.redrive_policy
                    and message.approximate_receive_count
                    >= queue.redrive_policy["maxReceiveCount"]
                ):
                    messages_to_dlq.append(message)
                    continue

                queue.pending_messages.add(message)
                message.mark_received(visibility_timeout=visibility_timeout)
                # Create deepcopy to not mutate the message state when filtering for attributes
                message_copy = copy.deepcopy(message)
                _filter_message_attributes(message_copy, message_attribute_names)
                # pipectl: is_message_valid_based_on_retention_period, inlined.
                if retention_period + message.sent_timestamp / 1000 <= unix_time():
                    break
                result.append(message_copy)
                if len(result) >= count:
                    break

            for message in messages_to_dlq:
                queue._messages.remove(message)
        # pipectl: added to the dead-letter queue (under its own lock) after this queue's
        # lock is released, so queues that redrive to each other cannot deadlock.
        for message in messages_to_dlq:
            queue.dead_letter_queue.add_message(message)

        if previous_result_count == len(result):
            if wait_seconds_timeout == 0:
                # There is no timeout and no additional results,
                # so break to avoid an infinite loop.
                break

            queue.wait_for_messages(1)
            continue

        previous_result_count = len(result)

    return result


def queue_delete_message(self: Any, receipt_handle: str) -> None:
    """moto 5.2.1's Queue.delete_message, under the queue's lock (marked: "pipectl:").

    pipectl: moto builds the list without the message and then puts it in place, while
    add_message appends under the queue's lock and receive_message moves messages to the
    dead-letter queue: a delete racing a send lost the message sent, and one racing another
    delete brought that one's message back after its visibility timeout (38 files
    processed twice, 6 minutes late, in a burst of 10,000)."""
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    with self._messages_lock:
        if receipt_handle in self.deleted_messages:
            # Already deleted - gracefully handle deleting it again
            return

        if not any(
            message.had_receipt_handle(receipt_handle) for message in self._messages
        ):
            raise ReceiptHandleIsInvalid()

        # Delete message from queue regardless of pending state
        new_messages = []
        for message in self._messages:
            if message.had_receipt_handle(receipt_handle):
                self.pending_messages.discard(message)
                self.deleted_messages.update(message.all_receipt_handles)
                continue
            new_messages.append(message)
        self._messages = new_messages


# Message.visible and Message.delayed read the clock through datetime on every call; these
# counts make that one read per pass (same comparisons: visible when now > visible_at,
# delayed while now < delayed_until).

def queue_messages(self: Any) -> list[Any]:
    """Queue.messages: the visible, undelayed messages."""
    from moto.core.utils import unix_time_millis

    now = unix_time_millis()
    return [m for m in self._messages if now > m.visible_at and not now < m.delayed_until]


def approximate_number_of_messages_delayed(self: Any) -> int:
    from moto.core.utils import unix_time_millis

    now = unix_time_millis()
    return sum(1 for m in self._messages if now < m.delayed_until)


def approximate_number_of_messages_not_visible(self: Any) -> int:
    from moto.core.utils import unix_time_millis

    now = unix_time_millis()
    return sum(1 for m in self._messages if not now > m.visible_at)


# --- DynamoDB: an update expression parsed and checked once --------------------------------
# In a burst, half of moto's DynamoDB time went to update expressions: each is parsed twice
# per request (the response layer reads its placeholders, the backend parses it again to
# validate it), and three of the ten checks that validate it look, at every node of the
# tree, at every clause under that node (quadratic in the expression's length). The
# processor sends the same few expressions with every file.

PARSED_EXPRESSIONS = 512    # distinct update expressions kept parsed
SOURCE = "pipectl_source"   # the root's attribute naming the text it was parsed from
PICKLED = "pipectl_pickled"  # the kept tree's attribute holding it pickled, for copies


def update_expression_make(cls: Any, expression_str: str) -> Any:
    """moto 5.2.1's UpdateExpressionParser.make, kept per expression text.

    pipectl: the tree is the same for the same text, and nothing changes it: the response
    layer only reads its placeholders, and UpdateExpressionValidator deep-copies it before
    resolving anything. Its root carries its text (the deep copy keeps it), which is how
    the checks below know which expression they see. A text that does not parse raises
    each time, as before.
    """
    return _parsed(cls, expression_str)


@functools.lru_cache(maxsize=PARSED_EXPRESSIONS)
def _parsed(cls: Any, expression_str: str) -> Any:
    from moto.dynamodb.parsing.tokens import ExpressionTokenizer

    token_list = ExpressionTokenizer.make_list(expression_str)
    tree = cls(token_list).parse()
    setattr(tree, SOURCE, expression_str)
    try:
        setattr(tree, PICKLED, pickle.dumps(tree, pickle.HIGHEST_PROTOCOL))
    except (pickle.PicklingError, TypeError, AttributeError):
        pass  # validator_init deep-copies it, as moto does
    return tree


def validator_init(self: Any, expression: Any, expression_attribute_names: dict[str, str],
                   expression_attribute_values: dict[str, dict[str, Any]], item: Any,
                   table: Any) -> None:
    """moto 5.2.1's Validator.__init__ (marked: "pipectl:").

    Besides validation the Validator should also replace referenced parts of an item which
    is cheapest upon validation.
    """
    self.expression_attribute_names = expression_attribute_names
    self.expression_attribute_values = expression_attribute_values
    self.item = item
    self.table = table
    self.processors = self.get_ast_processors()
    # pipectl: a kept tree is copied from its pickle (the same classes and values as a deep
    # copy, in a sixth of the time); any other tree is deep-copied, as before.
    pickled = getattr(expression, PICKLED, None)
    self.node_to_validate = (pickle.loads(pickled) if pickled is not None
                             else copy.deepcopy(expression))


def update_expression_processors(self: Any) -> list[Any]:
    """moto 5.2.1's UpdateExpressionValidator.get_ast_processors, its first three checks
    run once per expression (marked: "pipectl:")."""
    from moto.dynamodb.parsing.validators import (
        ActionCountValidator,
        EmptyStringKeyValueValidator,
        ExecuteOperations,
        ExpressionAttributeResolvingProcessor,
        ExpressionAttributeValueProcessor,
        NoneExistingPathChecker,
        OverlappingPathsValidator,
        TypeMismatchValidator,
        UpdateExpressionFunctionEvaluator,
        UpdateHashRangeKeyValidator,
    )

    processors = [
        # pipectl: these three read only the tree, the attribute names and the table's key
        # attributes, and change nothing; what passed them once passes again.
        _CheckedOnce([
            ActionCountValidator(),
            OverlappingPathsValidator(self.expression_attribute_names),
            UpdateHashRangeKeyValidator(
                self.table.table_key_attrs, self.expression_attribute_names or {}
            ),
        ], self.expression_attribute_names, self.table.table_key_attrs),
        ExpressionAttributeValueProcessor(self.expression_attribute_values),
        ExpressionAttributeResolvingProcessor(
            self.expression_attribute_names, self.item
        ),
        UpdateExpressionFunctionEvaluator(),
        NoneExistingPathChecker(),
        ExecuteOperations(),
        TypeMismatchValidator(self.table.attr),
        EmptyStringKeyValueValidator(self.table.attribute_keys),
    ]
    return processors


def nodes_to_be_processed(self: Any) -> tuple[type, ...]:
    """moto 5.2.1's DepthFirstTraverser.nodes_to_be_processed, cached as its docstring says.

    pipectl: moto builds the tuple at every node of every traversal (ten per validation);
    each traverser's _processing_map returns the same keys every time, so it is built once
    per traverser."""
    types = self.__dict__.get("pipectl_node_types")
    if types is None:
        types = self.__dict__["pipectl_node_types"] = tuple(self._processing_map().keys())
    return types


class _CheckedOnce:
    """Checks that depend on the expression, its attribute names and the table's key
    attributes alone, run the first time that combination is validated; one that raises
    is not remembered, so it raises again."""

    passed: set[tuple] = set()
    LIMIT = 4096

    def __init__(self, checks: list[Any], names: dict[str, str] | None, key_attrs: list[str]):
        self.checks = checks
        self.context = (tuple(sorted((names or {}).items())), tuple(key_attrs))

    def traverse(self, node: Any) -> Any:
        source = getattr(node, SOURCE, None)
        seen = (source, *self.context)
        if source is not None and seen in self.passed:
            return node
        for check in self.checks:
            node = check.traverse(node)
        if source is not None:
            if len(self.passed) >= self.LIMIT:
                self.passed.clear()
            self.passed.add(seen)
        return node


# --- the server: a request's backend, found once per host ---------------------------------

def get_backend_for_host(self: Any, host: str | None) -> Any:
    """moto 5.2.1's DomainDispatcherApplication.get_backend_for_host, kept per host.

    pipectl: the answer depends only on the host (moto's module list and the backends'
    URL patterns do not change while it runs), so it is computed once per host. The one
    visible difference: the "Unable to find appropriate backend" line is printed once per
    unknown host, not once per request. get_application calls it under self.lock.
    """
    known = self.__dict__.setdefault("pipectl_backend_for_host", {})
    if host not in known:
        known[host] = _backend_for_host(self, host)
    return known[host]


def _backend_for_host(self: Any, host: str | None) -> Any:
    from moto import backends

    if host is None:
        return None

    if host == "moto_api":
        return host

    if host in backends.list_of_moto_modules():
        return host

    for backend, pattern in self.backend_url_patterns:
        if pattern.match(f"http://{host}"):
            return backend

    if "amazonaws.com" in host:
        print(  # noqa
            f"Unable to find appropriate backend for {host}."
            "Remember to add the URL to urls.py, and run scripts/update_backend_index.py "
            "to index it."
        )
    return None
