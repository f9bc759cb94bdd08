"""Errors raised by the idempotency package. Each one names the key it concerns."""

from __future__ import annotations

from collections.abc import Sequence

from streamkit.exceptions import StreamkitError

__all__ = [
    "IdempotencyAlreadyInProgressError",
    "IdempotencyError",
    "IdempotencyKeyError",
    "IdempotencyPayloadMismatchError",
    "IdempotencyResultNotSerializableError",
    "IdempotencyResultTooLargeError",
    "IdempotencyStoreUnavailableError",
]

# How many keys an error message lists before it says "and N more".
_KEYS_SHOWN = 3


def _describe_keys(keys: Sequence[str]) -> str:
    shown = ", ".join(repr(k) for k in keys[:_KEYS_SHOWN])
    rest = len(keys) - _KEYS_SHOWN
    return f"{shown} and {rest} more" if rest > 0 else shown


class IdempotencyError(StreamkitError):
    """Base class of the idempotency errors."""


class IdempotencyStoreUnavailableError(IdempotencyError):
    """The store could not be read or written, so the record was not run.

    A record whose completion cannot be checked fails instead of running unprotected.
    ``store`` names the store (e.g. ``DynamoDB table 'idempotency'``), ``keys`` the
    idempotency keys involved (namespaced), ``reason`` what went wrong.
    """

    def __init__(self, store: str, keys: Sequence[str], reason: str) -> None:
        self.store = store
        self.keys = tuple(keys)
        self.reason = reason
        noun = "key" if len(self.keys) == 1 else "keys"
        super().__init__(
            f"idempotency store {store} is unavailable for {noun} {_describe_keys(self.keys)}: "
            f"{reason}"
        )


class IdempotencyPayloadMismatchError(IdempotencyError, ValueError):
    """The key was already used for a different payload.

    Two calls (or two stream records) mapped to the same idempotency key but their payloads
    hash differently. That usually means the key function is not specific enough; running the
    second one would silently drop it, and returning the first one's result would be wrong.
    """

    def __init__(self, key: str, stored_hash: str, payload_hash: str) -> None:
        self.key = key
        self.stored_hash = stored_hash
        self.payload_hash = payload_hash
        super().__init__(
            f"idempotency key {key!r} was completed for a different payload "
            f"(stored hash {stored_hash}, this payload {payload_hash}); "
            "make the key function include what distinguishes the payloads"
        )


class IdempotencyAlreadyInProgressError(IdempotencyError):
    """Another caller holds the in-progress lock for this key and it has not expired.

    ``lock_expires_at`` is the epoch time in seconds when the lock may be taken over.
    Retry after that time (Lambda retries the record on its own).
    """

    def __init__(self, key: str, lock_expires_at: float | None) -> None:
        self.key = key
        self.lock_expires_at = lock_expires_at
        until = f" until {lock_expires_at:.3f} (epoch s)" if lock_expires_at is not None else ""
        super().__init__(f"idempotency key {key!r} is in progress elsewhere{until}")


class IdempotencyResultTooLargeError(IdempotencyError, ValueError):
    """The result would make the idempotency item exceed DynamoDB's 400 KB item limit.

    Raised before anything is written; the in-progress lock is released, so the function runs
    again on retry. Return less (e.g. an S3 pointer) or turn result storage off.
    """

    def __init__(self, key: str, item_bytes: int, limit_bytes: int) -> None:
        self.key = key
        self.item_bytes = item_bytes
        self.limit_bytes = limit_bytes
        super().__init__(
            f"result for idempotency key {key!r} needs an item of {item_bytes} bytes, "
            f"over the {limit_bytes}-byte DynamoDB item limit; return something smaller"
        )


class IdempotencyResultNotSerializableError(IdempotencyError, TypeError):
    """The result could not be serialized for storage (the in-progress lock is released)."""

    def __init__(self, key: str, reason: str) -> None:
        self.key = key
        self.reason = reason
        super().__init__(f"result for idempotency key {key!r} cannot be stored: {reason}")


class IdempotencyKeyError(IdempotencyError, ValueError):
    """The key function failed or returned something that is not a non-empty string."""

    def __init__(self, namespace: str, reason: str) -> None:
        self.namespace = namespace
        self.reason = reason
        super().__init__(f"cannot compute the idempotency key in namespace {namespace!r}: {reason}")
