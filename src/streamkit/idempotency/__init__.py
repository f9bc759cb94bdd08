"""Effectively-once side effects for at-least-once stream delivery.

Two modes over one store protocol:

* batched stream mode, ``process_batch(event, handler, idempotency=store)``: one
  ``BatchGetItem`` per 100 records before the batch, one ``BatchWriteItem`` per 25 completed
  records after it; no per-record lock, because Lambda never runs the same stream record
  twice at once within a shard lane (``stream.py``);
* per-record mode, ``@idempotent(store)``: a conditional in-progress lock per call, for
  callers that may run concurrently (``per_record.py``).

Stores: ``DynamoDBIdempotencyStore`` (table key ``id``, TTL ``expiration``) and
``MemoryIdempotencyStore``; an optional ``LocalCache`` remembers completed keys per execution
environment.
"""

from __future__ import annotations

from streamkit.idempotency.cache import LocalCache
from streamkit.idempotency.dynamodb import DynamoDBIdempotencyStore
from streamkit.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyError,
    IdempotencyKeyError,
    IdempotencyPayloadMismatchError,
    IdempotencyResultNotSerializableError,
    IdempotencyResultTooLargeError,
    IdempotencyStoreUnavailableError,
)
from streamkit.idempotency.items import COMPLETED, INPROGRESS, IdempotencyItem
from streamkit.idempotency.keys import default_stream_key, default_stream_payload, hash_payload
from streamkit.idempotency.memory import MemoryIdempotencyStore
from streamkit.idempotency.per_record import IdempotentFunction, idempotent
from streamkit.idempotency.results import JsonResultSerializer, ResultSerializer
from streamkit.idempotency.store import DEFAULT_EXPIRES_AFTER, IdempotencyStore, StoreOptions
from streamkit.idempotency.stream import StreamSession

__all__ = [
    "COMPLETED",
    "DEFAULT_EXPIRES_AFTER",
    "INPROGRESS",
    "DynamoDBIdempotencyStore",
    "IdempotencyAlreadyInProgressError",
    "IdempotencyError",
    "IdempotencyItem",
    "IdempotencyKeyError",
    "IdempotencyPayloadMismatchError",
    "IdempotencyResultNotSerializableError",
    "IdempotencyResultTooLargeError",
    "IdempotencyStore",
    "IdempotencyStoreUnavailableError",
    "IdempotentFunction",
    "JsonResultSerializer",
    "LocalCache",
    "MemoryIdempotencyStore",
    "ResultSerializer",
    "StoreOptions",
    "StreamSession",
    "default_stream_key",
    "default_stream_payload",
    "hash_payload",
    "idempotent",
]
