"""The storefront's read path: cache-aside reads of an order and a product.

``Storefront.get_order(id)`` / ``get_product(sku)``: Redis first; on a miss, a consistent read
of the table, then a fill that only lands if no invalidation ran since the read started (see
``cache``). So once the platform's cache target has invalidated a change, no reader gets the
value from before it, from the cache or the table. Values are plain JSON: integral numbers as
ints, other numbers as their exact decimal text (the same from both paths).

The load test and the e2e suite use it; so could an API function (add it to the platform the
same way as the consumers, in the VPC that reaches ElastiCache).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from orderplatform.cache import cache_key, generation_key
from orderplatform.changes import ORDER_PREFIX, PRODUCT_PREFIX
from streamkit import deserialize

__all__ = ["FILL_SCRIPT", "Storefront", "plain"]

# KEYS[1] entry, KEYS[2] its generation; ARGV[1] generation seen before the table read ("" for
# none), ARGV[2] value, ARGV[3] TTL seconds. Fills only if the generation has not moved.
FILL_SCRIPT = """
local current = redis.call('GET', KEYS[2])
if (current == false and ARGV[1] == '') or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
  return 1
end
return 0
"""


def plain(value: Any) -> Any:
    """An item's values as JSON-ready plain values (exact numbers)."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return sorted(plain(v) for v in value)
    if isinstance(value, bytes | bytearray):
        return value.hex()
    return value


class Storefront:
    """Cache-aside reads. ``stats`` counts ``hits``, ``misses`` and ``fills_skipped`` (a fill
    refused because an invalidation ran meanwhile). ``between_read_and_fill`` is a hook called
    after the table read, before the fill: tests use it to open the race window."""

    def __init__(
        self,
        redis: Any,
        dynamodb: Any,
        *,
        orders_table: str,
        products_table: str,
        ttl_seconds: int = 300,
    ) -> None:
        self.redis = redis
        self.dynamodb = dynamodb
        self.tables = {
            "order": (orders_table, ORDER_PREFIX),
            "product": (products_table, PRODUCT_PREFIX),
        }
        self.ttl_seconds = ttl_seconds
        self.stats = {"hits": 0, "misses": 0, "fills_skipped": 0}
        self.between_read_and_fill: Callable[[str], None] | None = None
        self._fill = redis.register_script(FILL_SCRIPT)

    def get_order(self, order_id: str) -> dict[str, Any] | None:
        return self._get("order", order_id)

    def get_product(self, sku: str) -> dict[str, Any] | None:
        return self._get("product", sku)

    def _get(self, kind: str, identifier: str) -> dict[str, Any] | None:
        key = cache_key(kind, identifier)
        cached = self.redis.get(key)
        if cached is not None:
            self.stats["hits"] += 1
            value: dict[str, Any] = json.loads(cached)
            return value
        self.stats["misses"] += 1
        seen = self.redis.get(generation_key(key))
        table, prefix = self.tables[kind]
        item = self.dynamodb.get_item(
            TableName=table, Key={"pk": {"S": prefix + identifier}}, ConsistentRead=True
        ).get("Item")
        if item is None:
            return None  # misses are not cached: the INSERT would have nothing to invalidate
        fresh: dict[str, Any] = plain(deserialize(item))
        if self.between_read_and_fill is not None:
            self.between_read_and_fill(key)
        seen_text = (
            "" if seen is None else (seen.decode() if isinstance(seen, bytes) else str(seen))
        )
        filled = self._fill(
            keys=[key, generation_key(key)],
            args=[seen_text, json.dumps(fresh, separators=(",", ":")), self.ttl_seconds],
        )
        if not filled:
            self.stats["fills_skipped"] += 1
        return fresh
