"""The runtime's one retry vocabulary: exponential, capped, jittered, and stopped by ``stop``."""

from __future__ import annotations

import threading

import pytest

from streamkit.streams.backoff import Backoff, Stopped


def test_delays_double_up_to_the_cap() -> None:
    backoff = Backoff(initial=0.1, maximum=0.5)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.5, 0.5]


def test_jitter_scales_each_delay_within_its_range() -> None:
    backoff = Backoff(initial=1.0, maximum=8.0, jitter=0.5)
    delays = [backoff.delay(3) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in delays)
    assert len(set(delays)) > 1


def test_call_retries_until_the_operation_succeeds() -> None:
    attempts: list[int] = []
    errors: list[tuple[str, float]] = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise ConnectionError("down")
        return "sent"

    result = Backoff(initial=0.0, maximum=0.0).call(
        flaky, threading.Event(), on_error=lambda exc, pause: errors.append((str(exc), pause))
    )
    assert result == "sent"
    assert len(attempts) == 3
    assert errors == [("down", 0.0), ("down", 0.0)]


def test_a_stop_during_the_wait_ends_the_retries_without_another_attempt() -> None:
    stop = threading.Event()
    attempts: list[int] = []

    def failing() -> None:
        attempts.append(1)
        stop.set()  # the worker stops while this attempt fails
        raise ConnectionError("down")

    with pytest.raises(Stopped):
        Backoff(initial=5.0, maximum=5.0).call(failing, stop)
    assert attempts == [1]


def test_nothing_is_attempted_once_stopped() -> None:
    stop = threading.Event()
    stop.set()
    attempts: list[int] = []
    with pytest.raises(Stopped):
        Backoff(initial=0.0, maximum=0.0).call(lambda: attempts.append(1), stop)
    assert attempts == []
    assert Backoff(initial=5.0, maximum=5.0).pause(1, stop) is False
