"""The store protocol: persistence of idempotency items, and the options both modes share.

Persistence (this module and its subclasses in ``dynamodb.py`` and ``memory.py``) only reads
and writes items. The decisions, what is a duplicate, when a lock may be taken over, live in
the two state machines: ``stream.py`` (batched stream mode) and ``per_record.py``.

A store is also what ``process_batch(..., idempotency=store)`` takes: ``open_batch`` starts a
batched stream session.
"""

from __future__ import annotations

import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final, TypedDict, Unpack

from streamkit.idempotency.cache import LocalCache
from streamkit.idempotency.items import IdempotencyItem
from streamkit.idempotency.keys import (
    KeyFunction,
    PayloadFunction,
    default_stream_key,
    default_stream_payload,
)
from streamkit.idempotency.results import JsonResultSerializer, ResultSerializer

if TYPE_CHECKING:
    from streamkit.idempotency.stream import StreamSession

__all__ = ["DEFAULT_EXPIRES_AFTER", "IdempotencyStore", "StoreOptions"]

# Completion markers must outlive every redelivery of their record. A stream keeps records for
# 24 hours (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html), and
# Lambda redelivers a record until it leaves the stream (MaximumRetryAttempts=-1,
# MaximumRecordAgeInSeconds=-1), and a mapping recreated at TRIM_HORIZON re-reads all 24 hours.
# 48 hours leaves a day of margin for clock skew and for "24 hours" being approximate.
DEFAULT_EXPIRES_AFTER: Final = timedelta(hours=48)
_STREAM_RETENTION: Final = timedelta(hours=24)


class StoreOptions(TypedDict, total=False):
    """Options every store takes.

    - ``key``: stream record -> idempotency key (default: the record's ``eventID``).
    - ``payload``: stream record -> the value whose hash is stored and compared; ``None`` turns
      payload validation off. Default: with a custom ``key``, the record's ``Keys`` and
      ``NewImage``; with the default eventID key, off, because an eventID names one immutable
      stream record, so its payload cannot differ (and hashing a realistic image costs about
      0.2 ms per record, as much as decoding it).
    - ``expires_after``: how long items are kept (``timedelta`` or seconds; default 48 h).
    - ``cache``: a ``LocalCache`` of completed keys, kept per execution environment.
    - ``store_results``: stream mode also stores each handler's result (default False, so
      markers stay tiny; the per-record mode always stores results).
    - ``serializer``: how results become text (default JSON).
    - ``clock``: epoch seconds now (tests move time with it).
    """

    key: KeyFunction
    payload: PayloadFunction | None
    expires_after: timedelta | float
    cache: LocalCache | None
    store_results: bool
    serializer: ResultSerializer
    clock: Callable[[], float]


class IdempotencyStore(ABC):
    """Base of the stores: the persistence operations plus the shared options.

    Every operation raises ``IdempotencyStoreUnavailableError`` (naming the store and the keys)
    when the store cannot answer; it never returns a guess.
    """

    def __init__(self, **options: Unpack[StoreOptions]) -> None:
        self.key: KeyFunction = options.get("key", default_stream_key)
        default_payload = None if self.key is default_stream_key else default_stream_payload
        self.payload: PayloadFunction | None = options.get("payload", default_payload)
        expires_after = options.get("expires_after", DEFAULT_EXPIRES_AFTER)
        if not isinstance(expires_after, timedelta):
            expires_after = timedelta(seconds=expires_after)
        if expires_after <= timedelta(0):
            raise ValueError(f"expires_after must be positive, got {expires_after}")
        if expires_after < _STREAM_RETENTION:
            warnings.warn(
                f"expires_after={expires_after} is shorter than the 24-hour stream retention: "
                "a record redelivered after its marker expired runs again",
                stacklevel=3,
            )
        self.expires_after: timedelta = expires_after
        self.cache: LocalCache | None = options.get("cache")
        self.store_results: bool = options.get("store_results", False)
        self.serializer: ResultSerializer = options.get("serializer", JsonResultSerializer())
        self.clock: Callable[[], float] = options.get("clock", time.time)

    # --- persistence --------------------------------------------------------------------

    @property
    @abstractmethod
    def name(self) -> str:
        """Names the store in errors, e.g. ``DynamoDB table 'idempotency'``."""

    @abstractmethod
    def get_many(self, ids: Sequence[str]) -> dict[str, IdempotencyItem]:
        """The stored items among ``ids`` (strongly consistent). Absent ids are left out."""

    @abstractmethod
    def put_many(self, items: Sequence[IdempotencyItem]) -> None:
        """Write the items unconditionally (ids are distinct)."""

    @abstractmethod
    def try_lock(self, item: IdempotencyItem, now: float) -> IdempotencyItem | None:
        """Put ``item`` if its id is absent, expired, or an expired lock.

        Returns ``None`` when the item was written, or else the item that prevented it.
        """

    @abstractmethod
    def put(self, item: IdempotencyItem) -> None:
        """Write one item unconditionally."""

    @abstractmethod
    def release(self, lock: IdempotencyItem) -> None:
        """Delete ``lock`` if the stored item is still that lock (same status and lock
        expiry); a lock already taken over by another caller is left alone."""

    # --- helpers for the state machines --------------------------------------------------

    def expiration_from(self, now: float) -> int:
        return int(now + self.expires_after.total_seconds())

    # --- batched stream mode: streamkit.batch.IdempotencyProvider --------------------------

    def open_batch(
        self, records: Sequence[Any], *, namespace: str, context: Any | None = None
    ) -> StreamSession:
        """Look up which records are already completed: one read per 100 records."""
        # Imported here because stream.py builds on this module.
        from streamkit.idempotency.stream import StreamSession

        return StreamSession.open(self, records, namespace=namespace, context=context)
