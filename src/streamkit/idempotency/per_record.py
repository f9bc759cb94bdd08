"""Per-record mode: a conditional in-progress lock around each call.

For callers that may run the same key concurrently: API handlers, queues, or stream lanes
with ParallelizationFactor > 1 whose keys are shared by design. It costs 2 requests per call
(conditional put of the lock, put of the completed item), like Powertools, and returns the
stored result on a repeat.

The lock's lifetime (``in_progress_expiration``) follows the Lambda invocation: it lasts at
least until the invocation would time out (``context.get_remaining_time_in_millis()``) plus
a second of grace, because Lambda may stop a function slightly after its deadline
(Powertools #4759). A crashed or timed-out holder's lock can then be taken over by a retry.
``lock_window`` makes the lock last longer than that (Powertools #8049: with a side effect
that must not repeat even after a timeout, hold the key for an hour and let retries within
that hour fail with ``IdempotencyAlreadyInProgressError``). Without a Lambda context the lock
lasts ``lock_window``, 15 minutes (Lambda's maximum timeout) by default.

Outcomes of a call:

* first call: lock, run, store the result (JSON; ``None`` and falsy results included), return;
* repeat after completion: the stored result, without running (``IdempotencyPayloadMismatchError``
  if the payload hash differs);
* repeat while another call holds a live lock: ``IdempotencyAlreadyInProgressError``;
* the function raises: the lock is released and the error propagates, so a retry can run;
* the result is too large for one item or not serializable: the lock is released and
  ``IdempotencyResultTooLargeError`` / ``IdempotencyResultNotSerializableError`` is raised;
* the store is unreachable: ``IdempotencyStoreUnavailableError``, and the function does not run.
  If it becomes unreachable after the function ran, the completion is not recorded and the
  call runs again once the lock expires: at-least-once.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final, Generic, ParamSpec, TypeVar

from streamkit.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyError,
    IdempotencyKeyError,
    IdempotencyPayloadMismatchError,
    IdempotencyResultNotSerializableError,
    IdempotencyResultTooLargeError,
)
from streamkit.idempotency.items import (
    COMPLETED,
    INPROGRESS,
    MAX_ITEM_BYTES,
    IdempotencyItem,
    item_size_bytes,
    make_id,
)
from streamkit.idempotency.keys import default_stream_payload, hash_payload
from streamkit.idempotency.store import IdempotencyStore

__all__ = ["DEFAULT_LOCK_WINDOW", "IdempotentFunction", "idempotent"]

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_LOCK_WINDOW: Final = timedelta(minutes=15)
# Lambda may stop a function slightly after its deadline; the lock outlives that.
LOCK_GRACE: Final = timedelta(seconds=1)

_log = logging.getLogger(__name__)

# `payload=` default: hash the same argument the default key uses.
_FIRST_ARGUMENT: Final[Any] = object()


def _first_argument(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if args:
        return args[0]
    if kwargs:
        return next(iter(kwargs.values()))
    raise ValueError("the function was called without arguments; pass key=")


def _default_key(*args: Any, **kwargs: Any) -> str:
    """A stream record's eventID, else the hash of the first argument (e.g. the event)."""
    subject = _first_argument(args, kwargs)
    event_id = getattr(subject, "event_id", None)
    if isinstance(event_id, str) and event_id:
        return event_id
    return hash_payload(subject)


def _default_payload(*args: Any, **kwargs: Any) -> Any:
    subject = _first_argument(args, kwargs)
    if isinstance(getattr(subject, "event_id", None), str) and hasattr(subject, "raw"):
        return default_stream_payload(subject)
    return subject


def _find_lambda_context(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any | None:
    for value in (*args, *kwargs.values()):
        if callable(getattr(value, "get_remaining_time_in_millis", None)):
            return value
    return None


class IdempotentFunction(Generic[P, R]):
    """``fn`` made idempotent with ``store``; call it like ``fn``.

    ``key(*args, **kwargs) -> str`` and ``payload(*args, **kwargs) -> JSON-like`` receive the
    call's arguments. Default key: the first argument's eventID (a stream record) or else its
    hash. Default payload: none with the default key (the key already identifies the payload),
    the first argument with a custom key; ``payload=None`` turns validation off.
    ``namespace`` defaults to ``module.qualname``. The Lambda context is found among the
    arguments, or given with ``register_context`` (once per invocation).
    """

    def __init__(
        self,
        fn: Callable[P, R],
        store: IdempotencyStore,
        *,
        key: Callable[..., str] | None = None,
        payload: Callable[..., Any] | None = _FIRST_ARGUMENT,
        namespace: str | None = None,
        lock_window: timedelta | float | None = None,
    ) -> None:
        self.fn = fn
        self.store = store
        self.key = key or _default_key
        # The default key already is the identity of the payload (an eventID, or the hash of
        # the first argument): validating it again would only cost time. A custom key may map
        # different payloads to one key, so then the first argument is hashed and compared.
        if payload is _FIRST_ARGUMENT:
            payload = None if key is None else _default_payload
        self.payload: Callable[..., Any] | None = payload
        self.namespace = namespace or f"{fn.__module__}.{fn.__qualname__}"
        if lock_window is not None and not isinstance(lock_window, timedelta):
            lock_window = timedelta(seconds=lock_window)
        if lock_window is not None and lock_window <= timedelta(0):
            raise ValueError(f"lock_window must be positive, got {lock_window}")
        self.lock_window: timedelta | None = lock_window
        self.lambda_context: Any | None = None
        functools.update_wrapper(self, fn)

    def register_context(self, context: Any) -> None:
        """Use this Lambda context for lock expiry when the function does not receive it.
        Call it in every invocation: a context left from an earlier one has a stale deadline."""
        self.lambda_context = context

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        item_id = self._item_id(args, kwargs)
        payload_hash = self._payload_hash(args, kwargs)
        now = self.store.clock()

        cached = self.store.cache.get(item_id, now) if self.store.cache is not None else None
        if cached is not None and cached.result is not None:
            return self._replay(cached, payload_hash, now)

        lock = IdempotencyItem(
            id=item_id,
            status=INPROGRESS,
            expiration=self.store.expiration_from(now),
            in_progress_expiration=self._lock_deadline_ms(now, args, kwargs),
            payload_hash=payload_hash,
        )
        existing = self.store.try_lock(lock, now)
        if existing is not None:
            return self._replay(existing, payload_hash, now)

        try:
            result = self.fn(*args, **kwargs)
        except BaseException as exc:
            self._release(lock, exc)
            raise
        completed = self._completed_item(lock, result)
        self.store.put(completed)
        if self.store.cache is not None:
            self.store.cache.put(completed)
        return result

    # --- internals ----------------------------------------------------------------------

    def _item_id(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
        try:
            key = self.key(*args, **kwargs)
        except Exception as exc:
            raise IdempotencyKeyError(self.namespace, f"key function raised {exc!r}") from exc
        if not isinstance(key, str) or not key:
            reason = f"key function returned {key!r}, expected a non-empty str"
            raise IdempotencyKeyError(self.namespace, reason)
        return make_id(self.namespace, key)

    def _payload_hash(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        if self.payload is None:
            return None
        try:
            return hash_payload(self.payload(*args, **kwargs))
        except Exception as exc:
            raise IdempotencyKeyError(self.namespace, f"cannot hash the payload: {exc!r}") from exc

    def _lock_deadline_ms(self, now: float, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
        context = self.lambda_context or _find_lambda_context(args, kwargs)
        window = self.lock_window
        if context is not None:
            # Never shorter than the invocation itself: a lock expiring under a running call
            # would let a second one start.
            remaining = timedelta(milliseconds=max(0, context.get_remaining_time_in_millis()))
            window = max(window or timedelta(0), remaining) + LOCK_GRACE
        elif window is None:
            window = DEFAULT_LOCK_WINDOW
        return int((now + window.total_seconds()) * 1000)

    def _replay(self, existing: IdempotencyItem, payload_hash: str | None, now: float) -> R:
        if (
            payload_hash is not None
            and existing.payload_hash is not None
            and existing.payload_hash != payload_hash
        ):
            raise IdempotencyPayloadMismatchError(existing.id, existing.payload_hash, payload_hash)
        if existing.is_completed(now):
            if existing.result is None:
                # Completed by the stream mode without storing results: nothing to return.
                return None  # type: ignore[return-value]
            result: R = self.store.serializer.loads(existing.result)
            return result
        expires = existing.in_progress_expiration
        raise IdempotencyAlreadyInProgressError(
            existing.id, expires / 1000 if expires is not None else None
        )

    def _completed_item(self, lock: IdempotencyItem, result: Any) -> IdempotencyItem:
        try:
            text = self.store.serializer.dumps(result)
        except (TypeError, ValueError, OverflowError) as exc:
            error: IdempotencyError = IdempotencyResultNotSerializableError(lock.id, str(exc))
            self._release(lock, error)
            raise error from exc
        completed = IdempotencyItem(
            id=lock.id,
            status=COMPLETED,
            expiration=self.store.expiration_from(self.store.clock()),
            payload_hash=lock.payload_hash,
            result=text,
        )
        size = item_size_bytes(completed)
        if size > MAX_ITEM_BYTES:
            error = IdempotencyResultTooLargeError(lock.id, size, MAX_ITEM_BYTES)
            self._release(lock, error)
            raise error
        return completed

    def _release(self, lock: IdempotencyItem, cause: BaseException) -> None:
        """Release the lock so a retry can run; if that fails too, the lock expires on its
        own at ``in_progress_expiration`` and the original error is what the caller sees."""
        try:
            self.store.release(lock)
        except IdempotencyError as release_error:
            _log.warning("could not release idempotency lock %r: %s", lock.id, release_error)
            cause.add_note(f"the idempotency lock {lock.id!r} stays until it expires")


def idempotent(
    store: IdempotencyStore,
    *,
    key: Callable[..., str] | None = None,
    payload: Callable[..., Any] | None = _FIRST_ARGUMENT,
    namespace: str | None = None,
    lock_window: timedelta | float | None = None,
) -> Callable[[Callable[P, R]], IdempotentFunction[P, R]]:
    """Decorator: ``@idempotent(store)`` makes a function idempotent in per-record mode.

    See ``IdempotentFunction`` for the parameters and the module docstring for the outcomes.
    """

    def decorate(fn: Callable[P, R]) -> IdempotentFunction[P, R]:
        return IdempotentFunction(
            fn, store, key=key, payload=payload, namespace=namespace, lock_window=lock_window
        )

    return decorate
