"""DynamoDB: a transaction saves only the items it names; an update expression is parsed
and checked once per text (see the package's docstring)."""

from __future__ import annotations

import copy
import functools
import pickle
from typing import Any

# --- a transaction saves only the items it names ------------------------------------------

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


# --- an update expression parsed and checked once ------------------------------------------
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
