"""moto's DynamoDB write path without its quadratic item-size check (speed only).

moto builds an item attribute by attribute into a ``LimitedSizeDict`` whose ``__setitem__``
re-sizes *every* attribute already set before it accepts the next one, to enforce DynamoDB's
400 KB item limit: O(attributes²) size walks per write, each walk recursing through nested maps
and lists. For a realistic 28-attribute order that is ~75% of the server's time per PutItem.

:func:`apply_write_speed_patches` builds the item in one pass instead: every value converted,
the total size computed once, and the same ``ItemSizeTooLarge`` raised when it is over moto's
limit. Sizes are never negative, so "the total is over the limit" is exactly when moto's
attribute-by-attribute check would have failed; the answers do not change.
"""

from __future__ import annotations

from typing import Any

__all__ = ["apply_write_speed_patches"]

# moto's own limit (dynamo_type.LimitedSizeDict): between AWS's measured 409 and 410 KB.
_MOTO_ITEM_LIMIT = 405000


def apply_write_speed_patches() -> None:
    """Replace moto's Item constructor with the one-pass one (idempotent)."""
    from moto.dynamodb.exceptions import ItemSizeTooLarge
    from moto.dynamodb.models import dynamo_type
    from moto.dynamodb.models.utilities import bytesize

    item_cls = dynamo_type.Item
    if getattr(item_cls.__init__, "_streamkit_one_pass", False):
        return
    dynamo = dynamo_type.DynamoType
    limited = dynamo_type.LimitedSizeDict

    def __init__(self: Any, hash_key: Any, range_key: Any, attrs: dict[str, Any]) -> None:
        self.hash_key = hash_key
        self.range_key = range_key
        converted = {key: dynamo(value) for key, value in attrs.items()}
        # moto's LimitedSizeDict counts each key's bytes and each value's size.
        total = sum(bytesize(key) + value.size() for key, value in converted.items())
        if total > _MOTO_ITEM_LIMIT:
            raise ItemSizeTooLarge
        self.attrs = limited()
        dict.update(self.attrs, converted)  # later single-attribute updates still check

    __init__._streamkit_one_pass = True  # type: ignore[attr-defined]
    item_cls.__init__ = __init__  # type: ignore[method-assign]


# --- TransactWriteItems without copying whole tables -------------------------------------------
#
# moto's DynamoDBBackend.transact_write_items backs up every table a transaction names with
# ``copy.deepcopy(table)`` before it starts: every item and every stream record of that table,
# on every transaction, to be able to roll back. Its cost grows with the table, not the
# transaction. Measured on the order platform (py-spy, GIL samples of the emulator): at 20
# orders/s, 400 orders in, TransactWriteItems was the emulator's largest cost, two thirds of it
# in that deepcopy (the analytics fences and aggregates, and the products table with its stream,
# are named by a transaction for every order change). The rollback only needs what the
# transaction can change: the items it names and the streams of their tables. So the version
# below remembers, before each action writes, a copy of that one item (or that it was absent)
# and each table's stream length, and on cancellation puts exactly those back, in place: the
# same table and shard objects stay live (what moto_patches.py, 7, fixed for readers holding
# the shard), and no record of the cancelled transaction survives. The actions themselves run
# exactly as in moto 5.2.6 (same checks, same order, same errors), so the answers are unchanged.


class _Undo:
    """What one transaction changed, to put back if it is cancelled."""

    def __init__(self) -> None:
        self.items: list[tuple[Any, Any, Any, Any]] = []  # (table, hash, range, prior copy)
        self.shards: dict[int, tuple[Any, int]] = {}  # id(shard) -> (shard, length before)

    def remember(self, backend: Any, table_name: str, key: dict[str, Any]) -> None:
        import copy

        table = backend.get_table(table_name)
        shard = getattr(table, "stream_shard", None)
        if shard is not None and id(shard) not in self.shards:
            self.shards[id(shard)] = (shard, len(shard.items))
        hash_key, range_key = backend.get_keys_value(table, key)
        prior = table.get_item(hash_key, range_key)
        self.items.append((table, hash_key, range_key, copy.deepcopy(prior)))

    def roll_back(self) -> None:
        # Newest first: an item named twice is refused before it is written twice, but the
        # order keeps the rule obvious.
        for table, hash_key, range_key, prior in reversed(self.items):
            if range_key is not None:
                bucket = table.items[hash_key]
                if prior is None:
                    bucket.pop(range_key, None)
                else:
                    bucket[range_key] = prior
            elif prior is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = prior
        for shard, length in self.shards.values():
            del shard.items[length:]


def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
    """moto 5.2.6's DynamoDBBackend.transact_write_items with per-item rollback (above)."""
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.exceptions import (
        ConditionalCheckFailed,
        MockValidationException,
        MultipleTransactionsException,
        TooManyTransactionsException,
        TransactionCanceledException,
        TransactWriteSingleOpException,
    )

    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    undo = _Undo()
    target_items: set[tuple[str, str]] = set()

    def check_unicity(table_name: str, key: dict[str, Any]) -> None:
        item = (str(table_name), str(dict(sorted(key.items()))))
        if item in target_items:
            raise MultipleTransactionsException()
        target_items.add(item)

    errors: list[tuple[str, str, dict[str, Any]] | tuple[None, None, None]] = []
    for item in transact_items:
        original_item: dict[str, Any] | None = None
        if len(list(item.keys())) > 1:
            raise TransactWriteSingleOpException
        try:
            op_type, op = next(iter(item.items()))
            if op_type not in {"ConditionCheck", "Put", "Delete", "Update"}:
                raise ValueError("Unsupported transaction operation")
            table_name = op["TableName"]
            condition_expression = op.get("ConditionExpression")
            names = op.get("ExpressionAttributeNames")
            values = op.get("ExpressionAttributeValues")
            on_failure = op.get("ReturnValuesOnConditionCheckFailure")
            if op_type == "Put":
                attrs = op["Item"]
                table = self.get_table(table_name)
                key = {table.hash_key_attr: attrs[table.hash_key_attr]}
                if table.range_key_attr is not None:
                    key[table.range_key_attr] = attrs[table.range_key_attr]
            else:
                key = op["Key"]
            check_unicity(table_name, key)
            current = self.get_item(table_name, key)
            if condition_expression is not None:
                condition_op = get_filter_expression(condition_expression, names, values)
                if not condition_op.expr(current):
                    if on_failure == "ALL_OLD" and current:
                        original_item = current.to_json()["Attributes"]
                    raise ConditionalCheckFailed(item=original_item)
            if op_type != "ConditionCheck":
                undo.remember(self, table_name, key)
            if op_type == "Put":
                self.put_item(
                    table_name,
                    op["Item"],
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Delete":
                self.delete_item(
                    table_name,
                    key,
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            elif op_type == "Update":
                self.update_item(
                    table_name,
                    key,
                    update_expression=op["UpdateExpression"],
                    condition_expression=condition_expression,
                    expression_attribute_names=names,
                    expression_attribute_values=values,
                )
            errors.append((None, None, None))
        except (MultipleTransactionsException, MockValidationException):
            undo.roll_back()
            raise
        except ConditionalCheckFailed as e:
            errors.append(("ConditionalCheckFailed", str(e.message), original_item))  # type: ignore[arg-type]
        except Exception as e:  # as moto: any other error cancels with its type name
            errors.append((type(e).__name__, str(e), original_item))  # type: ignore[arg-type]
    if any(code is not None for code, _, _ in errors):
        undo.roll_back()
        raise TransactionCanceledException(errors)


transact_write_items._streamkit_item_rollback = True  # type: ignore[attr-defined]
