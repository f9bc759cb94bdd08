"""Batched stream mode: one read per 100 records, one write per 25 completions.

Why no lock: within one shard lane Lambda never processes the same stream record twice at
the same time; a redelivery only starts after the invocation that failed has ended
(https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html). So the in-progress record
Powertools writes per record (a conditional put, then an update: 2 requests per record)
protects against a race that cannot happen here. What remains is "was this record already
completed?", which one ``BatchGetItem`` answers for 100 records, and "remember that it is
completed", which one ``BatchWriteItem`` does for 25. A clean 100-record batch: 1 + 4 requests.

Guarantee, precisely:

* A record whose completion marker was written is never run again while the marker lives
  (``expires_after``, 48 h by default, longer than the stream keeps records).
* Markers are written when ``flush`` runs: ``process_batch`` calls it as soon as a failure
  stops the batch and before it returns. A crash, timeout or store outage after a handler's
  side effect and before the flush means no marker: the record runs again on redelivery.
  That window is at-least-once, never at-most-once: a record never counts as done unless
  its marker was written (or it was skipped because its marker existed).
* If the store cannot be read, the affected records fail (and are retried by Lambda); they
  never run unprotected.
* If markers cannot be written (``flush`` raises, or ``record_success`` does, e.g. a stored
  result over 400 KB), ``process_batch`` logs it and still returns its response: the side
  effects happened, and reporting the records would certainly run them again. Only a later
  redelivery of those records (a timeout, or records after a failure in ``per_key`` mode)
  runs them again: at-least-once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from streamkit.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyKeyError,
    IdempotencyPayloadMismatchError,
    IdempotencyResultNotSerializableError,
    IdempotencyResultTooLargeError,
)
from streamkit.idempotency.items import (
    COMPLETED,
    MAX_ITEM_BYTES,
    IdempotencyItem,
    item_size_bytes,
    make_id,
)
from streamkit.idempotency.keys import hash_payload

if TYPE_CHECKING:
    from streamkit.idempotency.store import IdempotencyStore

__all__ = ["StreamSession"]


@dataclass(slots=True)
class _Identity:
    """A record's namespaced id and payload hash, or why they could not be computed."""

    item_id: str | None
    payload_hash: str | None
    error: Exception | None = None


class StreamSession:
    """One batch's view of the store: ``streamkit.batch.IdempotencySession``."""

    def __init__(self, store: IdempotencyStore, namespace: str) -> None:
        self.store = store
        self.namespace = namespace
        # Records are looked up by object identity: process_batch hands back the records it
        # passed to open_batch. _records keeps them alive so identities are not reused.
        self._identities: dict[int, _Identity] = {}
        self._records: list[Any] = []
        # id -> the item that makes it completed (read at open, or completed in this batch).
        self._completed: dict[str, IdempotencyItem] = {}
        # id -> unexpired INPROGRESS lock held by a per-record caller sharing this namespace.
        self._locked: dict[str, IdempotencyItem] = {}
        # Completion markers not yet written, in completion order.
        self._pending: dict[str, IdempotencyItem] = {}

    @classmethod
    def open(
        cls,
        store: IdempotencyStore,
        records: Sequence[Any],
        *,
        namespace: str,
        context: Any | None = None,
    ) -> StreamSession:
        """Compute every record's key and read the completed ones (cache first, then store).

        ``context`` (the Lambda context) is accepted for the provider protocol; the stream
        mode holds no lock, so it needs no deadline."""
        session = cls(store, namespace)
        for record in records:
            session._identity(record)
        session._load()
        return session

    # --- IdempotencySession -------------------------------------------------------------

    def is_completed(self, record: Any) -> bool:
        """True when the record was completed before (skip it). Raises when it cannot tell:
        the key function failed, the key was completed for another payload, or another
        caller holds its lock; the record then fails instead of running."""
        identity = self._identity(record)
        if identity.error is not None:
            raise identity.error
        assert identity.item_id is not None
        done = self._completed.get(identity.item_id)
        if done is not None:
            self._check_payload(identity, done)
            return True
        lock = self._locked.get(identity.item_id)
        if lock is not None and lock.is_locked(self.store.clock()):
            raise IdempotencyAlreadyInProgressError(
                identity.item_id,
                None if lock.in_progress_expiration is None else lock.in_progress_expiration / 1000,
            )
        return False

    def record_success(self, record: Any, result: Any) -> None:
        """Buffer the record's completion marker; ``flush`` writes it."""
        identity = self._identity(record)
        if identity.error is not None:
            raise identity.error
        assert identity.item_id is not None
        item = IdempotencyItem(
            id=identity.item_id,
            status=COMPLETED,
            expiration=self.store.expiration_from(self.store.clock()),
            payload_hash=identity.payload_hash,
            result=self._serialize(identity.item_id, result) if self.store.store_results else None,
        )
        size = item_size_bytes(item)
        if size > MAX_ITEM_BYTES:
            raise IdempotencyResultTooLargeError(item.id, size, MAX_ITEM_BYTES)
        # A later record of this batch with the same key is a duplicate of this one.
        self._completed[item.id] = item
        self._locked.pop(item.id, None)
        self._pending[item.id] = item

    def flush(self) -> None:
        """Write the buffered markers (25 per request). Raises if the store refuses them; the
        markers stay buffered, so a later flush tries again."""
        if not self._pending:
            return
        items = list(self._pending.values())
        self.store.put_many(items)
        self._pending.clear()
        if self.store.cache is not None:
            for item in items:
                self.store.cache.put(item)

    # --- internals ----------------------------------------------------------------------

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    def _identity(self, record: Any) -> _Identity:
        identity = self._identities.get(id(record))
        if identity is None:
            identity = self._compute_identity(record)
            self._identities[id(record)] = identity
            self._records.append(record)
        return identity

    def _compute_identity(self, record: Any) -> _Identity:
        try:
            key = self.store.key(record)
        except Exception as exc:
            error = IdempotencyKeyError(self.namespace, f"key function raised {exc!r}")
            error.__cause__ = exc
            return _Identity(None, None, error)
        if not isinstance(key, str) or not key:
            reason = f"key function returned {key!r}, expected a non-empty str"
            return _Identity(None, None, IdempotencyKeyError(self.namespace, reason))
        payload_hash: str | None = None
        if self.store.payload is not None:
            try:
                payload_hash = hash_payload(self.store.payload(record))
            except Exception as exc:
                error = IdempotencyKeyError(self.namespace, f"cannot hash the payload: {exc!r}")
                error.__cause__ = exc
                return _Identity(None, None, error)
        return _Identity(make_id(self.namespace, key), payload_hash)

    def _load(self) -> None:
        now = self.store.clock()
        wanted: dict[str, None] = {}  # ordered set: keys shared by several records count once
        for identity in self._identities.values():
            item_id = identity.item_id
            if item_id is None or item_id in self._completed:
                continue
            cached = self.store.cache.get(item_id, now) if self.store.cache else None
            if cached is not None:
                self._completed[item_id] = cached
            else:
                wanted[item_id] = None
        if not wanted:
            return
        for item_id, item in self.store.get_many(list(wanted)).items():
            if item.is_completed(now):
                self._completed[item_id] = item
                if self.store.cache is not None:
                    self.store.cache.put(item)
            elif item.is_locked(now):
                self._locked[item_id] = item

    def _check_payload(self, identity: _Identity, done: IdempotencyItem) -> None:
        if (
            identity.payload_hash is not None
            and done.payload_hash is not None
            and identity.payload_hash != done.payload_hash
        ):
            assert identity.item_id is not None
            raise IdempotencyPayloadMismatchError(
                identity.item_id, done.payload_hash, identity.payload_hash
            )

    def _serialize(self, item_id: str, result: Any) -> str:
        try:
            return self.store.serializer.dumps(result)
        except (TypeError, ValueError, OverflowError) as exc:
            raise IdempotencyResultNotSerializableError(item_id, str(exc)) from exc
