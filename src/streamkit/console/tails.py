"""Live tails of tables' streams for the Stream page: ``streamkit tail``'s parts, kept in memory.

A :class:`TailSession` follows one stream from LATEST with the same follower
(:class:`~streamkit.ops.follow.StreamFollower`), the same Lambda-shaped records
(:class:`~streamkit.streams.envelope.LambdaRecordConverter`) and the same fields
(:func:`~streamkit.ops.tail_format.record_fields`: keys and changed attribute names, images
only when asked) as ``streamkit tail --json``. It keeps the last ``keep`` records; a browser
polls for those after a cursor. A session nobody polled for ``idle_s`` seconds stops.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from streamkit.ops.follow import StreamFollower
from streamkit.ops.tail import resolve_stream
from streamkit.ops.tail_format import record_fields
from streamkit.records import StreamRecord
from streamkit.streams.envelope import LambdaRecordConverter
from streamkit.streams.throttling import IdleBackoff

__all__ = ["TailHub", "TailSession"]

LOG = logging.getLogger(__name__)


class _ReadyBackoff(IdleBackoff):
    """The follower's polling backoff, which also says when every shard has been read once:
    from then on (the LATEST iterators exist), any new write is caught."""

    def __init__(self, ready: threading.Event) -> None:
        super().__init__(min_delay=0.01, max_delay=0.2)
        self._ready = ready

    def next_delay(self) -> float:
        self._ready.set()
        return super().next_delay()

    def reset(self) -> None:
        self._ready.set()
        super().reset()


class TailSession:
    """Follows one stream on its own thread; see the module docstring."""

    def __init__(
        self, streams_client: Any, stream_arn: str, *, images: bool, keep: int = 500
    ) -> None:
        self.stream_arn = stream_arn
        self.images = images
        self.ready = threading.Event()
        self.error: str | None = None
        self.last_poll = time.monotonic()
        self._records: deque[tuple[int, dict[str, Any]]] = deque(maxlen=keep)
        self._next = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._follower = StreamFollower(
            streams_client, stream_arn, start="latest", stop=self._stop,
            backoff=_ReadyBackoff(self.ready),
        )  # fmt: skip
        self._thread = threading.Thread(target=self._run, name="console-tail", daemon=True)

    def start(self) -> TailSession:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set() or not self._thread.is_alive()

    def _run(self) -> None:
        convert = LambdaRecordConverter(self.stream_arn)
        try:
            for followed in self._follower:
                record = StreamRecord(convert(followed.raw))
                try:
                    fields = record_fields(record, shard_id=followed.shard_id, images=self.images)
                except Exception as exc:  # as `streamkit tail`: say so, keep going
                    fields = {"sequence_number": record.item_identifier, "error": str(exc)}
                with self._lock:
                    self._records.append((self._next, fields))
                    self._next += 1
        except Exception as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            LOG.warning("tail of %s stopped: %s", self.stream_arn, self.error)
        finally:
            self.ready.set()
            self._stop.set()

    def read(self, after: int) -> dict[str, Any]:
        """Records with a cursor >= ``after``; ``next`` is the cursor to ask with next time."""
        self.last_poll = time.monotonic()
        with self._lock:
            records = [dict(fields, cursor=n) for n, fields in self._records if n >= after]
            upto = self._next
        return {
            "stream_arn": self.stream_arn,
            "ready": self.ready.is_set(),
            "ended": self._follower.ended,
            "error": self.error,
            "images": self.images,
            "records": records,
            "next": upto,
        }


class TailHub:
    """One session per (table, images), started on first request, stopped when idle."""

    def __init__(
        self,
        client: Callable[[str], Any],
        *,
        endpoint: str,
        idle_s: float = 60.0,
    ) -> None:
        self._client = client
        self._endpoint = endpoint
        self._idle_s = idle_s
        self._sessions: dict[tuple[str, bool], TailSession] = {}
        self._lock = threading.Lock()

    def session(self, table: str, *, images: bool) -> TailSession:
        """Raises TableNotFoundError / StreamNotEnabledError like ``streamkit tail``."""
        self._reap()
        with self._lock:
            current = self._sessions.get((table, images))
            if current is not None and not current.stopped:
                return current
        target = resolve_stream(self._client("dynamodb"), table, endpoint=self._endpoint)
        with self._lock:
            current = self._sessions.get((table, images))
            if current is None or current.stopped:
                current = TailSession(
                    self._client("dynamodbstreams"), target.stream_arn, images=images
                ).start()
                self._sessions[(table, images)] = current
            return current

    def _reap(self) -> None:
        now = time.monotonic()
        with self._lock:
            for key, session in list(self._sessions.items()):
                if session.stopped or now - session.last_poll > self._idle_s:
                    session.stop()
                    del self._sessions[key]

    def close(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.stop()
            self._sessions.clear()
