"""One retry vocabulary for the runtime: a small stop-aware backoff policy built on tenacity.

Every wait between attempts in the runner -- a failed batch's retries, delivery to an
on-failure destination, a shard worker resuming after an error, a mapping re-checking code
that could not be loaded or a stream that is gone -- is a :class:`Backoff`: exponential
(``initial * 2**(n-1)`` before retry ``n``, capped at ``maximum``), optionally jittered (a random factor in ``[1 - jitter, 1]``, so workers that
failed together do not retry in lockstep), and interrupted by the worker's ``stop`` event.

:meth:`Backoff.call` runs an operation until it succeeds or ``stop`` is set (tenacity's
``Retrying``); :meth:`Backoff.pause` is the wait alone, for loops whose "retry" is a state
machine of its own (the batch processor's bisect and partial responses).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import tenacity

__all__ = ["Backoff", "Stopped"]

T = TypeVar("T")


class Stopped(Exception):
    """``stop`` was set before the operation succeeded."""


class _StopNow(Exception):
    """Raised instead of another attempt once ``stop`` is set (tenacity does not retry it)."""


@dataclass(frozen=True)
class Backoff:
    """The wait before retry ``n`` (1-based): ``min(maximum, initial * 2**(n-1))``, times a
    random factor in ``[1 - jitter, 1]`` (``jitter`` 0: exact; 1: AWS's "full jitter")."""

    initial: float
    maximum: float
    jitter: float = 0.0

    def delay(self, retry_number: int) -> float:
        base = float(min(self.maximum, self.initial * 2 ** max(0, retry_number - 1)))
        if self.jitter <= 0:
            return base
        return base * random.uniform(1.0 - self.jitter, 1.0)

    def pause(self, retry_number: int, stop: threading.Event) -> bool:
        """Wait before retry ``retry_number``; False if ``stop`` was set (now or meanwhile)."""
        return not stop.wait(self.delay(retry_number))

    def call(
        self,
        operation: Callable[[], T],
        stop: threading.Event,
        *,
        on_error: Callable[[BaseException, float], None] | None = None,
    ) -> T:
        """``operation()``, retried after any exception until it succeeds; ``on_error(exc,
        pause)`` before each wait. Raises :class:`Stopped` if ``stop`` is set first."""

        def attempt() -> T:
            if stop.is_set():
                raise _StopNow
            return operation()

        def report(state: tenacity.RetryCallState) -> None:
            if on_error is None or state.outcome is None or state.next_action is None:
                return
            exc = state.outcome.exception()
            if exc is not None:
                on_error(exc, state.next_action.sleep)

        def sleep(seconds: float) -> None:
            stop.wait(seconds)

        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_not_exception_type(_StopNow),
            wait=lambda state: self.delay(state.attempt_number),
            stop=lambda _state: stop.is_set(),
            sleep=sleep,
            before_sleep=report,
        )
        try:
            return retrying(attempt)
        except (_StopNow, tenacity.RetryError):
            raise Stopped from None
