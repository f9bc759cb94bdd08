"""Cache invalidation in Redis (ElastiCache on AWS) for the storefront's cache-aside reads.

Keys: ``order:<id>`` and ``product:<sku>`` hold the item as JSON (``storefront.Storefront``
fills them); ``gen:<key>`` is the key's invalidation generation. An invalidation bumps the
generation and deletes the entry in one MULTI/EXEC. A reader that missed remembers the
generation before it reads the table and fills the entry only if the generation is still the
same (a Lua script, atomic in Redis). That closes cache-aside's classic race: a reader that read
the table just before a change and fills just after its invalidation would otherwise put the
old value back, for good.

A Redis outage raises (redis-py ``ConnectionError``/``TimeoutError``): only this target fails,
the router retries the record for it alone (its siblings' completion markers hold), and after
the mapping's retries the batch goes to the on-failure queue for ``streamkit dlq replay``.
Entries also expire (``Storefront(ttl_seconds=...)``), which bounds any staleness left behind.
"""

from __future__ import annotations

from typing import Any

from orderplatform.changes import is_noop, item_id
from streamkit import StreamRecord

__all__ = ["GENERATION_TTL_SECONDS", "CacheInvalidator", "cache_key", "generation_key"]

# A generation outlives any reader's table read by far; it only has to exist while one runs.
GENERATION_TTL_SECONDS = 86400


def cache_key(kind: str, identifier: str) -> str:
    return f"{kind}:{identifier}"


def generation_key(key: str) -> str:
    return f"gen:{key}"


class CacheInvalidator:
    """The cache fan-out target: ``invalidate(record)`` drops the changed item's entry.

    Returns ``"invalidated"``, ``"unchanged"`` (a no-op MODIFY) or ``"not cached"`` (an item
    the storefront never caches). Every real change invalidates, an INSERT too (a key may have
    been removed and written again)."""

    def __init__(self, redis: Any) -> None:
        self.redis = redis

    def __call__(self, record: StreamRecord) -> str:
        if is_noop(record):
            return "unchanged"
        found = item_id(record)
        if found is None:
            return "not cached"
        key = cache_key(*found)
        generation = generation_key(key)
        pipe = self.redis.pipeline(transaction=True)
        pipe.incr(generation)
        pipe.expire(generation, GENERATION_TTL_SECONDS)
        pipe.delete(key)
        pipe.execute()
        return "invalidated"
