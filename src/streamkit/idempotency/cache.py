"""A bounded LRU of completed idempotency items, kept per Lambda execution environment.

Create the store (and its cache) at module level: Lambda reuses the execution environment
between invocations, so keys completed by one invocation are known to the next without a
read. A cache only ever holds ``COMPLETED`` items, which never go back to "not done" before
they expire, so a hit is always safe to trust until ``expiration``. Items completed by *other*
execution environments are not in it; the store is still asked for those.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from streamkit.idempotency.items import IdempotencyItem

__all__ = ["LocalCache"]


class LocalCache:
    """LRU of at most ``max_items`` completed items. Thread-safe.

    ``hits`` and ``misses`` count lookups, for tests and metrics.
    """

    def __init__(self, max_items: int = 1024) -> None:
        if max_items < 1:
            raise ValueError(f"max_items must be at least 1, got {max_items}")
        self.max_items = max_items
        self.hits = 0
        self.misses = 0
        self._items: OrderedDict[str, IdempotencyItem] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, item_id: str, now: float) -> IdempotencyItem | None:
        """The completed item for ``item_id`` if cached and not expired."""
        with self._lock:
            item = self._items.get(item_id)
            if item is None or not item.is_completed(now):
                if item is not None:
                    del self._items[item_id]
                self.misses += 1
                return None
            self._items.move_to_end(item_id)
            self.hits += 1
            return item

    def put(self, item: IdempotencyItem) -> None:
        """Remember a completed item; anything else is ignored."""
        if item.status != "COMPLETED":
            return
        with self._lock:
            self._items[item.id] = item
            self._items.move_to_end(item.id)
            while len(self._items) > self.max_items:
                self._items.popitem(last=False)

    def discard(self, item_id: str) -> None:
        with self._lock:
            self._items.pop(item_id, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, item_id: object) -> bool:
        return item_id in self._items
