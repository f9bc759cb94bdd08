"""An in-memory store for tests and local runs. Same semantics as the DynamoDB store,
including the item size limit, so what passes here does not fail on DynamoDB for size."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Unpack

from streamkit.idempotency.exceptions import IdempotencyResultTooLargeError
from streamkit.idempotency.items import MAX_ITEM_BYTES, IdempotencyItem, item_size_bytes
from streamkit.idempotency.store import IdempotencyStore, StoreOptions

__all__ = ["MemoryIdempotencyStore"]


class MemoryIdempotencyStore(IdempotencyStore):
    """Keeps items in a dict (thread-safe). ``items`` exposes them for assertions.

    ``requests`` counts the operations as the DynamoDB store would issue them (one per 100
    reads, one per 25 writes, one per conditional put / put / delete), to reason about cost
    in unit tests.
    """

    def __init__(self, **options: Unpack[StoreOptions]) -> None:
        super().__init__(**options)
        self.items: dict[str, IdempotencyItem] = {}
        self.requests = 0
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return "in-memory store"

    def __repr__(self) -> str:
        return f"MemoryIdempotencyStore(items={len(self.items)})"

    def get_many(self, ids: Sequence[str]) -> dict[str, IdempotencyItem]:
        with self._lock:
            self.requests += -(-len(ids) // 100)
            return {i: self.items[i] for i in ids if i in self.items}

    def put_many(self, items: Sequence[IdempotencyItem]) -> None:
        for item in items:
            _check_size(item)
        with self._lock:
            self.requests += -(-len(items) // 25)
            for item in items:
                self.items[item.id] = item

    def try_lock(self, item: IdempotencyItem, now: float) -> IdempotencyItem | None:
        _check_size(item)
        with self._lock:
            self.requests += 1
            existing = self.items.get(item.id)
            # The same condition the DynamoDB store sends: absent, expired, or an expired lock.
            if existing is None or existing.is_expired(now) or not _holds(existing, now):
                self.items[item.id] = item
                return None
            return existing

    def put(self, item: IdempotencyItem) -> None:
        _check_size(item)
        with self._lock:
            self.requests += 1
            self.items[item.id] = item

    def release(self, lock: IdempotencyItem) -> None:
        with self._lock:
            self.requests += 1
            stored = self.items.get(lock.id)
            if (
                stored is not None
                and stored.status == "INPROGRESS"
                and stored.in_progress_expiration == lock.in_progress_expiration
            ):
                del self.items[lock.id]


def _holds(existing: IdempotencyItem, now: float) -> bool:
    """Whether an unexpired item blocks a new lock: completed items and live locks do."""
    return existing.status == "COMPLETED" or existing.is_locked(now)


def _check_size(item: IdempotencyItem) -> None:
    size = item_size_bytes(item)
    if size > MAX_ITEM_BYTES:
        raise IdempotencyResultTooLargeError(item.id, size, MAX_ITEM_BYTES)
