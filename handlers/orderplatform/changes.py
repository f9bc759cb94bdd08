"""What every sink asks of a stream record: is it a change at all, and which item is it."""

from __future__ import annotations

from streamkit import StreamRecord

__all__ = ["ORDER_PREFIX", "PRODUCT_PREFIX", "is_noop", "item_id", "order_id"]

ORDER_PREFIX = "ORDER#"
PRODUCT_PREFIX = "PRODUCT#"


def is_noop(record: StreamRecord) -> bool:
    """A MODIFY whose old and new images are equal: a producer re-put the same item. DynamoDB
    itself writes no stream record for it; moto does. Either way it changes nothing, so no sink
    reacts to it (business-key idempotency: a duplicate write is not a second change)."""
    return record.event_name == "MODIFY" and record.old_image == record.new_image


def item_id(record: StreamRecord) -> tuple[str, str] | None:
    """``("order", id)`` or ``("product", sku)`` from the ``pk`` key; ``None`` for other items."""
    pk = record.keys.get("pk")
    if not isinstance(pk, str):
        return None
    if pk.startswith(ORDER_PREFIX):
        return "order", pk.removeprefix(ORDER_PREFIX)
    if pk.startswith(PRODUCT_PREFIX):
        return "product", pk.removeprefix(PRODUCT_PREFIX)
    return None


def order_id(record: StreamRecord) -> str:
    found = item_id(record)
    if found is None or found[0] != "order":
        raise ValueError(f"record {record.item_identifier} is not an order change")
    return found[1]
