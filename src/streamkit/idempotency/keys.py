"""Idempotency keys and payload hashes for stream records and plain values.

Why the default key is the stream record's ``eventID``: Lambda redelivers the *same* stream
record (same eventID, same SequenceNumber, same images) after a failure, a timeout or a
partial batch response, and eventIDs are unique per stream record. So the eventID dedupes
exactly the redeliveries and nothing else: two separate writes of identical data are two
records and both run.

Use a business key (``key=lambda r: r.new_image["order_id"]`` etc.) when *different* stream
records mean the same side effect, e.g. a table written twice by an at-least-once producer, or
a replay of the same change through a second table. Then the payload hash tells a genuine
duplicate (same payload, skipped) from a key collision (different payload, an error).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

__all__ = [
    "KeyFunction",
    "PayloadFunction",
    "RecordLike",
    "default_stream_key",
    "default_stream_payload",
    "hash_payload",
]


class RecordLike(Protocol):
    """What the stream mode reads from a record (``streamkit.StreamRecord`` has it all)."""

    @property
    def event_id(self) -> str: ...

    @property
    def raw(self) -> Mapping[str, Any]: ...


KeyFunction = Callable[[Any], str]
"""Maps a stream record to its idempotency key (without namespace)."""

PayloadFunction = Callable[[Any], Any]
"""Maps a stream record to the JSON-like value whose hash is stored with the key."""


def default_stream_key(record: RecordLike) -> str:
    return record.event_id


def default_stream_payload(record: RecordLike) -> Any:
    """The record's ``Keys`` and ``NewImage`` as delivered (DynamoDB JSON).

    Sequence number, creation time and size are left out on purpose: they differ between two
    records carrying the same change, which a business key wants to treat as duplicates.
    """
    change = record.raw.get("dynamodb") or {}
    return {"Keys": change.get("Keys"), "NewImage": change.get("NewImage")}


def _json_default(value: Any) -> Any:
    # Canonical forms for the non-JSON values a payload may contain.
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    raise TypeError(f"cannot hash a payload value of type {type(value).__name__}")


def hash_payload(payload: Any) -> str:
    """A stable 128-bit hash of a JSON-like value: key order does not matter."""
    text = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
