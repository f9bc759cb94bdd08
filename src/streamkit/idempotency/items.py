"""The stored idempotency item, independent of where it is kept.

Every store keeps the same item (the DynamoDB store maps it 1:1 to these attributes):

============================  ====  =====================================================
attribute                     type  meaning
============================  ====  =====================================================
``id``                        S     partition key: ``<namespace>#<key>``
``status``                    S     ``COMPLETED`` or ``INPROGRESS``
``expiration``                N     epoch seconds; after it the item counts as absent.
                                    Enable DynamoDB TTL on it so the table cleans itself.
``in_progress_expiration``    N     epoch milliseconds; only on ``INPROGRESS`` items: when
                                    the lock may be taken over
``payload_hash``              S     hash of the payload, to detect a key reused for a
                                    different payload (absent when validation is off)
``result``                    S     the JSON-serialized result; absent means "no result
                                    stored", the JSON text ``null`` means ``None``
============================  ====  =====================================================
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "COMPLETED",
    "INPROGRESS",
    "MAX_ID_BYTES",
    "MAX_ITEM_BYTES",
    "IdempotencyItem",
    "Status",
    "item_size_bytes",
    "make_id",
]

Status = Literal["COMPLETED", "INPROGRESS"]
COMPLETED: Final = "COMPLETED"
INPROGRESS: Final = "INPROGRESS"

# DynamoDB's item size limit, names and values included:
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html#limits-items
MAX_ITEM_BYTES: Final = 400 * 1024
# A partition key value may be at most 2048 bytes:
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html#limits-partition-sort-keys
MAX_ID_BYTES: Final = 2048
# DynamoDB sizes a number at up to 21 bytes; count every number at the maximum.
_NUMBER_BYTES: Final = 21


@dataclass(frozen=True, slots=True)
class IdempotencyItem:
    """One idempotency item. Times: ``expiration`` in epoch s, ``in_progress_expiration`` in ms."""

    id: str
    status: Status
    expiration: int
    in_progress_expiration: int | None = None
    payload_hash: str | None = None
    result: str | None = None

    def is_expired(self, now: float) -> bool:
        """True once ``expiration`` has passed: DynamoDB TTL deletes lazily (within days),
        so an expired item may still be read and must be treated as absent."""
        return self.expiration <= now

    def is_locked(self, now: float) -> bool:
        """True for an ``INPROGRESS`` item whose lock has not expired yet."""
        if self.status != INPROGRESS or self.is_expired(now):
            return False
        return self.in_progress_expiration is None or self.in_progress_expiration > now * 1000

    def is_completed(self, now: float) -> bool:
        return self.status == COMPLETED and not self.is_expired(now)


def item_size_bytes(item: IdempotencyItem) -> int:
    """An upper bound of the item's DynamoDB size (attribute names + values, UTF-8)."""
    size = len("id") + len(item.id.encode()) + len("status") + len(item.status)
    size += len("expiration") + _NUMBER_BYTES
    if item.in_progress_expiration is not None:
        size += len("in_progress_expiration") + _NUMBER_BYTES
    if item.payload_hash is not None:
        size += len("payload_hash") + len(item.payload_hash.encode())
    if item.result is not None:
        size += len("result") + len(item.result.encode())
    return size


def make_id(namespace: str, key: str) -> str:
    """``<namespace>#<key>``; keys too long for a partition key are replaced by their hash.

    The hash keeps such keys working instead of failing the record forever; the namespace stays
    readable so the items can still be found per handler.
    """
    item_id = f"{namespace}#{key}"
    if len(item_id.encode()) <= MAX_ID_BYTES:
        return item_id
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{namespace}#sha256:{digest}"
