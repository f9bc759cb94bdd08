"""Staying within DynamoDB Streams' read limits: backoff on throttling, two readers per shard.

- :class:`ThrottleBackoff` retries a Streams API call that was throttled
  (LimitExceededException, ProvisionedThroughputExceededException, ThrottlingException) with
  jittered exponential backoff -- tenacity's ``wait_random_exponential``, "full jitter" -- until
  it succeeds or the worker stops. Jitter keeps many shard workers that were throttled together
  from retrying in lockstep. Each throttle is reported (a metric and a log line); nothing is
  re-read, because the call is simply made again with the same iterator.
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Programming.Errors.html#Programming.Errors.RetryAndBackoff
- :class:`ShardReadGate` lets at most two GetRecords calls run against one shard at a time,
  across every mapping of the runner: "No more than two processes at most should be reading
  from the same streams shard at the same time. Exceeding this limit can result in request
  throttling." A third mapping on the same stream waits for a turn instead of being throttled.
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html#Streams.Processing
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

__all__ = [
    "MAX_READERS_PER_SHARD",
    "THROTTLING_ERROR_CODES",
    "ShardReadGate",
    "ThrottleBackoff",
    "error_code",
    "is_throttling",
]

LOG = logging.getLogger(__name__)

T = TypeVar("T")

THROTTLING_ERROR_CODES = frozenset(
    {
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)
MAX_READERS_PER_SHARD = 2


def error_code(exc: BaseException) -> str | None:
    """The AWS error code of a botocore ``ClientError`` (or a double's look-alike)."""
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        code = (response.get("Error") or {}).get("Code")
        return str(code) if code else None
    return None


def is_throttling(exc: BaseException) -> bool:
    return error_code(exc) in THROTTLING_ERROR_CODES


@dataclass(frozen=True)
class ThrottleBackoff:
    """Full-jitter exponential backoff for throttled Streams calls: the n-th wait is uniform
    in [0, min(maximum, multiplier * 2**n)] seconds."""

    multiplier: float = 0.1
    maximum: float = 10.0

    def call(
        self,
        operation: Callable[[], T],
        *,
        stop: threading.Event | None = None,
        on_throttle: Callable[[str], None] | None = None,
        what: str = "",
    ) -> T:
        """``operation()``, retried while it is throttled. Raises the throttling error if
        ``stop`` is set while waiting, and any other error at once."""

        def report(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            code = error_code(exc) if exc is not None else None
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            LOG.warning("%s throttled (%s); retrying in %.2fs", what or "call", code, wait)
            if on_throttle is not None:
                on_throttle(str(code))

        def stopped(_state: tenacity.RetryCallState) -> bool:
            return stop is not None and stop.is_set()

        def sleep(seconds: float) -> None:
            if stop is None:
                time.sleep(seconds)
            else:
                stop.wait(seconds)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception(is_throttling),
            wait=tenacity.wait_random_exponential(multiplier=self.multiplier, max=self.maximum),
            stop=stopped,
            sleep=sleep,
            before_sleep=report,
            reraise=True,
        )
        return retrying(operation)


class ShardReadGate:
    """Admits at most ``limit`` concurrent reads per (stream, shard). Thread-safe; one per
    runner, shared by all its mappings."""

    def __init__(self, limit: int = MAX_READERS_PER_SHARD) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._slots: dict[tuple[str, str], threading.BoundedSemaphore] = {}
        self._readers: dict[tuple[str, str], set[Any]] = {}

    @contextmanager
    def reading(self, stream_arn: str, shard_id: str) -> Iterator[None]:
        """Hold one of the shard's read slots for the duration of a GetRecords call."""
        with self._lock:
            slots = self._slots.setdefault(
                (stream_arn, shard_id), threading.BoundedSemaphore(self.limit)
            )
        with slots:
            yield

    def register(self, stream_arn: str, shard_id: str, reader: Any) -> int:
        """Note a reader of the shard (a mapping's shard worker); returns how many there are.
        Beyond ``limit``, AWS would throttle: say so once per extra reader."""
        with self._lock:
            readers = self._readers.setdefault((stream_arn, shard_id), set())
            readers.add(reader)
            count = len(readers)
        if count > self.limit:
            LOG.warning(
                "%d mappings read %s %s; DynamoDB Streams allows %d readers per shard (AWS "
                "throttles beyond that), so they take turns. Fan out inside one function "
                "instead (one mapping, Router.fan_out with a target per concern), as the "
                "reference platform does (docs/reference-app.md)",
                count, stream_arn, shard_id, self.limit,
            )  # fmt: skip
        return count

    def unregister(self, stream_arn: str, shard_id: str, reader: Any) -> None:
        with self._lock:
            readers = self._readers.get((stream_arn, shard_id))
            if readers is not None:
                readers.discard(reader)
