"""Live counters and state of one mapping, shared by its threads (and kept across restarts).

The runner prints :meth:`MappingStats.status_line` and serves :meth:`MappingStats.snapshot`.
"""

from __future__ import annotations

import enum
import logging
import threading
from typing import Any

__all__ = ["COUNTERS", "Counter", "MappingState", "MappingStats"]

LOG = logging.getLogger(__name__)


class Counter(enum.StrEnum):
    """A mapping's counters (see :class:`MappingStats`)."""

    POLLED = "polled"
    FILTERED = "filtered"
    INVOKED = "invoked"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SENT_TO_DESTINATION = "sent_to_destination"
    DISCARDED = "discarded"
    THROTTLED = "throttled"
    TRIMMED_GAPS = "trimmed_gaps"
    WINDOWS_CLOSED = "windows_closed"
    RETRIES = "retries"
    BISECTS = "bisects"
    RECORD_AGE_EXPIRED = "record_age_expired"


COUNTERS = tuple(Counter)


class MappingState(enum.StrEnum):
    """Where a mapping is (``streamkit run`` prints it; the values are its words)."""

    STARTING = "starting"
    POLLING = "polling"
    ERROR = "error"
    INVALID = "invalid"
    DISABLED = "disabled"
    STOPPED = "stopped"
    DELETED = "deleted"


class MappingStats:
    """Live counters of one mapping, shared by its threads (and kept across restarts).

    ``polled``, ``filtered``, ``succeeded``, ``sent_to_destination`` and ``discarded``
    (exhausted without a destination) count records; ``invoked`` and ``failed`` count invokes
    (a tumbling window's final invoke included). ``throttled`` counts throttled Streams calls,
    ``trimmed_gaps`` the times records were trimmed before they could be read (reading resumed
    at TRIM_HORIZON), ``windows_closed`` successful final invokes of tumbling windows.
    ``retries`` counts re-invokes of a failed batch (against MaximumRetryAttempts), ``bisects``
    the times a failed batch was split (BisectBatchOnFunctionError, which costs no retry), and
    ``record_age_expired`` the records given up on because they were older than
    MaximumRecordAgeInSeconds (also in ``sent_to_destination`` or ``discarded``).
    ``shards_running`` is how many shard workers run now. ``iterator_age_ms`` is the age of the
    newest record of the last invoke when it was made (Lambda's IteratorAge). ``state`` is one
    of starting, polling, error, invalid, disabled, stopped, deleted.
    """

    def __init__(self, uuid: str, function_arn: str = "", event_source_arn: str = "") -> None:
        self.uuid = uuid
        self.function_arn = function_arn
        self.event_source_arn = event_source_arn
        self._lock = threading.Lock()
        self._counts: dict[str, int] = dict.fromkeys(Counter, 0)
        self.iterator_age_ms: float | None = None
        self.last_error: str | None = None
        self.state = MappingState.STARTING
        self.shards_running = 0

    def count(self, name: Counter, n: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def note_error(self, message: str | None) -> None:
        if message is not None:
            self.last_error = message

    def note_iterator_age(self, age_ms: float) -> None:
        self.iterator_age_ms = age_ms

    def shard_started(self) -> None:
        with self._lock:
            self.shards_running += 1

    def shard_ended(self) -> None:
        with self._lock:
            self.shards_running -= 1

    def set_state(self, state: MappingState, error: str | None = None) -> None:
        with self._lock:
            changed = state != self.state or (error is not None and error != self.last_error)
            self.state = state
            if error is not None:
                self.last_error = error
        if changed:
            log = LOG.error if state in (MappingState.ERROR, MappingState.INVALID) else LOG.info
            log("mapping %s: %s%s", self.uuid, state, f" -- {error}" if error else "")

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "uuid": self.uuid,
                "function_arn": self.function_arn,
                "event_source_arn": self.event_source_arn,
                "state": self.state,
                **self._counts,
                "shards_running": self.shards_running,
                "iterator_age_ms": self.iterator_age_ms,
                "last_error": self.last_error,
            }

    def status_line(self) -> str:
        s = self.snapshot()
        age = "-" if s["iterator_age_ms"] is None else f"{s['iterator_age_ms']:.0f}ms"
        function = s["function_arn"].rsplit(":", 1)[-1]
        table = s["event_source_arn"].split("/")[1] if "/" in s["event_source_arn"] else "?"
        line = (
            f"mapping {self.uuid[:8]} {table} -> {function}: {s['state']} polled={s['polled']} "
            f"filtered={s['filtered']} invoked={s['invoked']} succeeded={s['succeeded']} "
            f"failed={s['failed']} to_destination={s['sent_to_destination']} "
            f"discarded={s['discarded']} iterator_age={age}"
        )
        for extra in (
            Counter.RETRIES,
            Counter.BISECTS,
            Counter.RECORD_AGE_EXPIRED,
            Counter.THROTTLED,
            Counter.TRIMMED_GAPS,
            Counter.WINDOWS_CLOSED,
        ):
            if s[extra]:
                line += f" {extra}={s[extra]}"
        if s["last_error"]:
            line += f" last_error={s['last_error']!r}"
        return line
