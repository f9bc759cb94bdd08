"""The workflow's writes: fenced transitions, the consistent precheck, and outside writes.

Every write names the attributes through placeholders (``status`` is a DynamoDB reserved word)
and treats ConditionalCheckFailed as an answer ("the item is not where you think"), never as
an error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from streamkit._aws import is_conditional_check_failed
from streamkit.codec import serialize

__all__ = ["StateTable"]


class StateTable:
    """State, version and error attributes of one workflow's items."""

    def __init__(
        self,
        state_attribute: str,
        version_attribute: str,
        error_attribute: str,
        client: Callable[[], Any],
    ) -> None:
        self.state_attribute = state_attribute
        self.version_attribute = version_attribute
        self.error_attribute = error_attribute
        self._client = client

    def is_current(self, table: str, keys: dict[str, Any], state: str, version: int | None) -> bool:
        """Whether the item is still at ``state`` and ``version`` (a consistent read)."""
        response = self._client().get_item(
            TableName=table,
            Key=keys,
            ConsistentRead=True,
            ProjectionExpression="#s, #v",
            ExpressionAttributeNames={"#s": self.state_attribute, "#v": self.version_attribute},
        )
        item = response.get("Item")
        if not item or item.get(self.state_attribute) != {"S": state}:
            return False
        stored = item.get(self.version_attribute)
        if version is None:
            return stored is None
        return stored is not None and "N" in stored and Decimal(stored["N"]) == version

    def transition(
        self,
        table: str,
        keys: dict[str, Any],
        state: str,
        version: int | None,
        next_state: str,
        attributes: Mapping[str, Any],
        *,
        clear_error: bool,
    ) -> bool:
        """The fenced transition; False when the fence held (stale or duplicate delivery).
        ``attributes`` are already DynamoDB attribute values."""
        names = {"#s": self.state_attribute, "#v": self.version_attribute}
        values: dict[str, Any] = {
            ":state": {"S": state},
            ":next": {"S": next_state},
            ":nv": {"N": str((version or 0) + 1)},
        }
        if version is None:
            condition = "#s = :state AND attribute_not_exists(#v)"
        else:
            condition = "#s = :state AND #v = :v"
            values[":v"] = {"N": str(version)}
        sets = ["#s = :next", "#v = :nv"]
        for index, (attribute, value) in enumerate(attributes.items()):
            names[f"#a{index}"] = attribute
            values[f":a{index}"] = value
            sets.append(f"#a{index} = :a{index}")
        expression = "SET " + ", ".join(sets)
        if clear_error:
            names["#e"] = self.error_attribute
            expression += " REMOVE #e"
        return self._conditional(
            "update_item",
            TableName=table,
            Key=keys,
            UpdateExpression=expression,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def create(self, table: str, item: Mapping[str, Any], state: str) -> bool:
        """Put ``item`` (plain values) in ``state`` at version 1 unless it is in a workflow."""
        values = {**item, self.state_attribute: state, self.version_attribute: 1}
        return self._conditional(
            "put_item",
            TableName=table,
            Item=serialize(values),
            ConditionExpression="attribute_not_exists(#s)",
            ExpressionAttributeNames={"#s": self.state_attribute},
        )

    def move(
        self, table: str, keys: Mapping[str, Any], state: str, from_states: Sequence[str]
    ) -> bool:
        """Move the item to ``state`` from any of ``from_states``, bumping its version."""
        placeholders = [f":f{i}" for i in range(len(from_states))]
        values: dict[str, Any] = {
            p: {"S": s} for p, s in zip(placeholders, from_states, strict=True)
        }
        values.update({":to": {"S": state}, ":zero": {"N": "0"}, ":one": {"N": "1"}})
        return self._conditional(
            "update_item",
            TableName=table,
            Key=serialize(keys),
            UpdateExpression="SET #s = :to, #v = if_not_exists(#v, :zero) + :one",
            ConditionExpression=f"#s IN ({', '.join(placeholders)})",
            ExpressionAttributeNames={"#s": self.state_attribute, "#v": self.version_attribute},
            ExpressionAttributeValues=values,
        )

    def _conditional(self, operation: str, **request: Any) -> bool:
        try:
            getattr(self._client(), operation)(**request)
        except Exception as exc:
            if is_conditional_check_failed(exc):
                return False
            raise
        return True
