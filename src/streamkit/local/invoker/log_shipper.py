"""Function output to CloudWatch Logs, as Lambda ships it.

Lambda sends every line a function writes (stdout and stderr), plus its own ``START``, ``END``
and ``REPORT`` lines, to the log group ``/aws/lambda/<function name>``, one log stream per
execution environment named ``YYYY/MM/DD/[<version>]<id>``; it creates the group when it is
missing. The local runtime does the same through the endpoint's CloudWatch Logs API, so
whatever reads logs on AWS (EMF metric documents, Logs Insights-style scans, ``aws logs tail``)
reads them locally too.

Shipping is off the hot path: a line only goes into a bounded queue. One background thread
takes lines off it, groups them by stream and sends them with PutLogEvents in batches within
the API's limits. When the endpoint is slow or down the queue fills and further lines are
dropped and counted (``stats()["dropped"]``) rather than slowing an invoke; a failed send is
counted (``"failed"``) and logged, never raised. An invoke never fails because of its logs.

PutLogEvents limits (https://docs.aws.amazon.com/AmazonCloudWatchLogs/latest/APIReference/API_PutLogEvents.html):
at most 10,000 events and 1,048,576 bytes per call, where each event counts its UTF-8 message
plus 26 bytes; events in chronological order; one event at most 256 KB; a message is at least
one character long.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

__all__ = ["LogShipper", "LogStreamWriter", "logs_client"]

LOG = logging.getLogger(__name__)

MAX_BATCH_EVENTS = 10_000
MAX_BATCH_BYTES = 1_048_576
EVENT_OVERHEAD_BYTES = 26
MAX_EVENT_BYTES = 262_144 - EVENT_OVERHEAD_BYTES
DEFAULT_QUEUE_SIZE = 50_000
DEFAULT_LINGER_S = 0.2
_WARN_EVERY_S = 30.0


def logs_client(endpoint_url: str, region: str) -> Any:
    """A CloudWatch Logs client for the shipper: short timeouts and one retry, so a dead
    endpoint costs the shipping thread seconds, not minutes (the queue absorbs the rest)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=region)
    credentials = (
        {}
        if session.get_credentials() is not None
        else {"aws_access_key_id": "test", "aws_secret_access_key": "test"}
    )
    config = Config(
        retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=2, read_timeout=10
    )
    return session.client("logs", endpoint_url=endpoint_url, config=config, **credentials)


@dataclass(frozen=True)
class _Line:
    group: str
    stream: str
    timestamp_ms: int
    message: str


class LogStreamWriter:
    """Ships lines to one log stream of one group; calling it never blocks and never raises."""

    def __init__(self, shipper: LogShipper, group: str, stream: str) -> None:
        self.shipper = shipper
        self.group = group
        self.stream = stream

    def __call__(self, line: str) -> None:
        self.shipper.submit(self.group, self.stream, line)


class LogShipper:
    """Batches lines to CloudWatch Logs on a background thread (see the module docstring).

    ``client_factory`` returns a boto3 ``logs`` client; it is called on the shipping thread,
    the first time there is something to send. The thread starts with the first line and
    ``close`` sends what is queued (within ``timeout_s``) and stops it.
    """

    def __init__(
        self,
        client_factory: Callable[[], Any],
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        linger_s: float = DEFAULT_LINGER_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client_factory = client_factory
        self._client: Any = None
        self._queue: queue.Queue[_Line | None] = queue.Queue(maxsize=queue_size)
        self._linger_s = linger_s
        self._clock = clock
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._ready: set[tuple[str, str]] = set()  # (group, stream) known to exist
        self._counts = {"submitted": 0, "shipped": 0, "dropped": 0, "failed": 0, "batches": 0}
        self._last_warning = 0.0
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0

    # -- producers (any thread) ----------------------------------------------------------------

    def writer(self, group: str, stream: str) -> LogStreamWriter:
        return LogStreamWriter(self, group, stream)

    def submit(self, group: str, stream: str, message: str) -> bool:
        """Queue one line; False (and counted as dropped) when the queue is full or closed."""
        if not message:
            return True  # CloudWatch rejects empty messages; an empty line carries nothing
        with self._lock:
            if self._closed:
                self._counts["dropped"] += 1
                return False
            line = _Line(group, stream, int(self._clock() * 1000), _clip(message))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="streamkit-log-shipper", daemon=True
                )
                self._thread.start()
            try:
                self._queue.put_nowait(line)
            except queue.Full:
                self._counts["dropped"] += 1
                return False
            self._counts["submitted"] += 1
            self._in_flight += 1
        return True

    def stats(self) -> dict[str, int]:
        """Lines submitted, shipped, dropped (queue full) and failed (send refused), batches."""
        with self._lock:
            return dict(self._counts, queued=self._queue.qsize())

    def flush(self, timeout_s: float = 10.0) -> bool:
        """Wait until every line queued so far is shipped or failed; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout_s)

    def close(self, timeout_s: float = 5.0) -> None:
        """Ship what is queued (waiting at most ``timeout_s``), then stop the thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        if thread is None:
            return
        self.flush(timeout_s)
        try:
            self._queue.put(None, timeout=max(0.1, timeout_s))
        except queue.Full:  # the thread is stuck on a dead endpoint: it is a daemon, leave it
            return
        thread.join(timeout_s)

    # -- the shipping thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            lines = [first]
            stop = self._gather(lines)
            self._ship(lines)
            if stop:
                return

    def _gather(self, lines: list[_Line]) -> bool:
        """Add what arrives within the linger time (up to one batch); True when told to stop."""
        deadline = time.monotonic() + self._linger_s
        while len(lines) < MAX_BATCH_EVENTS:
            remaining = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=remaining) if remaining > 0 else None
            except queue.Empty:
                line = None
                remaining = 0
            if line is None:
                if remaining > 0:
                    return True  # None was the stop sentinel, not a timeout
                # Past the linger time: take whatever is already waiting, without waiting.
                while len(lines) < MAX_BATCH_EVENTS:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        return False
                    if more is None:
                        return True
                    lines.append(more)
                return False
            lines.append(line)
        return False

    def _ship(self, lines: list[_Line]) -> None:
        by_stream: dict[tuple[str, str], list[_Line]] = {}
        for line in lines:
            by_stream.setdefault((line.group, line.stream), []).append(line)
        for (group, stream), stream_lines in by_stream.items():
            # Stable sort: lines with the same millisecond keep the order they were written in.
            stream_lines.sort(key=lambda line: line.timestamp_ms)
            for batch in _batches(stream_lines):
                self._send(group, stream, batch)
        with self._idle:
            self._in_flight -= len(lines)
            self._idle.notify_all()

    def _send(self, group: str, stream: str, batch: list[_Line]) -> None:
        events = [{"timestamp": line.timestamp_ms, "message": line.message} for line in batch]
        try:
            client = self._logs_client()
            self._ensure_stream(client, group, stream)
            try:
                client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
            except Exception as exc:
                if _error_code(exc) != "ResourceNotFoundException":
                    raise
                # Deleted under us (e.g. by a terraform destroy and re-apply): recreate once.
                self._ready.discard((group, stream))
                self._ensure_stream(client, group, stream)
                client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
        except Exception as exc:
            with self._lock:
                self._counts["failed"] += len(batch)
            self._warn(group, stream, len(batch), exc)
            return
        with self._lock:
            self._counts["shipped"] += len(batch)
            self._counts["batches"] += 1

    def _logs_client(self) -> Any:
        if self._client is None:
            self._client = self._client_factory()
        return self._client

    def _ensure_stream(self, client: Any, group: str, stream: str) -> None:
        if (group, stream) in self._ready:
            return
        _create_unless_exists(client.create_log_group, logGroupName=group)
        _create_unless_exists(client.create_log_stream, logGroupName=group, logStreamName=stream)
        self._ready.add((group, stream))

    def _warn(self, group: str, stream: str, count: int, exc: Exception) -> None:
        now = time.monotonic()
        if now - self._last_warning < _WARN_EVERY_S:
            LOG.debug("log shipping to %s failed again (%d lines): %s", group, count, exc)
            return
        self._last_warning = now
        LOG.warning(
            "could not ship %d log lines to CloudWatch Logs %s (stream %s): %s; the lines are "
            "dropped (invokes are not affected; further failures within %.0f s are not logged)",
            count,
            group,
            stream,
            exc,
            _WARN_EVERY_S,
        )


def _batches(lines: Iterable[_Line]) -> Iterable[list[_Line]]:
    """Consecutive runs of ``lines`` within PutLogEvents' count and size limits."""
    batch: list[_Line] = []
    size = 0
    for line in lines:
        cost = len(line.message.encode()) + EVENT_OVERHEAD_BYTES
        if batch and (len(batch) >= MAX_BATCH_EVENTS or size + cost > MAX_BATCH_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += cost
    if batch:
        yield batch


def _create_unless_exists(create: Callable[..., Any], **kwargs: str) -> None:
    try:
        create(**kwargs)
    except Exception as exc:
        if _error_code(exc) != "ResourceAlreadyExistsException":
            raise


def _clip(message: str) -> str:
    encoded = message.encode()
    if len(encoded) <= MAX_EVENT_BYTES:
        return message
    return encoded[:MAX_EVENT_BYTES].decode("utf-8", "ignore")


def _error_code(exc: Exception) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        return str(code) if code is not None else None
    return None
