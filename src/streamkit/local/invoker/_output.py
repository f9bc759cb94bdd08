"""A worker's log pipe (its stdout and stderr), split into each invoke's output."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import IO

# The package's one logger, named for the public module users configure.
logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 100
_MAX_LOG_LINE_BYTES = 8192


class OutputCollector:
    """Drains a worker's log pipe (its stdout and stderr) and splits it by invoke.

    Lines written between invokes (init, background threads) are kept and given to the next
    invoke. An invoke's output ends at the worker's ``END RequestId: <id>`` line.

    ``on_line``, when given, also gets every line as it arrives, the ``END`` lines included, and
    the ``START`` and ``REPORT`` lines Lambda adds (``streamkit.local.invoker.log_shipper``); it must
    not block.
    """

    def __init__(
        self, stream: IO[bytes], label: str, on_line: Callable[[str], None] | None = None
    ) -> None:
        self._label = label
        self._on_line = on_line
        self._cond = threading.Condition()
        self._pending: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self._current: deque[str] | None = None
        self._end_marker: str | None = None
        self._ended = False
        self._eof = False
        threading.Thread(
            target=self._drain, args=(stream,), name=f"{label}-log", daemon=True
        ).start()

    def _drain(self, stream: IO[bytes]) -> None:
        try:
            for raw in iter(lambda: stream.readline(_MAX_LOG_LINE_BYTES), b""):
                self._add(raw.decode("utf-8", "replace").rstrip("\r\n"))
        except (OSError, ValueError):  # the pipe was closed under us: the worker is gone
            pass
        finally:
            stream.close()
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _add(self, line: str) -> None:
        self.note(line)
        with self._cond:
            marker = self._end_marker
            if marker is not None and self._current is not None and line.endswith(marker):
                if line != marker:  # output that did not end with a newline
                    self._current.append(line[: -len(marker)])
                self._end_marker = None
                self._ended = True
                self._cond.notify_all()
                return
            if self._current is not None and not self._ended:
                self._current.append(line)
            else:
                self._pending.append(line)
        logger.debug("[%s] %s", self._label, line)

    def note(self, line: str) -> None:
        """Pass ``line`` to ``on_line`` only (a line of the platform's, not the function's)."""
        if self._on_line is not None:
            try:
                self._on_line(line)
            except Exception:  # logs must never break an invoke
                logger.debug("[%s] on_line failed", self._label, exc_info=True)

    def begin(self, request_id: str, version: str = "$LATEST") -> None:
        self.note(f"START RequestId: {request_id} Version: {version}")
        with self._cond:
            self._current, self._pending = self._pending, deque(maxlen=LOG_TAIL_LINES)
            self._end_marker = f"END RequestId: {request_id}"
            self._ended = False

    def finish(self, wait_s: float) -> str:
        """This invoke's output, once its END line (or the end of the pipe) is seen."""
        with self._cond:
            self._cond.wait_for(lambda: self._ended or self._eof, timeout=wait_s)
            lines = list(self._current or ())
            self._current = None
            self._end_marker = None
            return "\n".join(lines)

    def take_pending(self, wait_s: float) -> str:
        """Output outside any invoke (e.g. a failed init), once the pipe closes."""
        with self._cond:
            self._cond.wait_for(lambda: self._eof, timeout=wait_s)
            lines = list(self._pending)
            self._pending.clear()
            return "\n".join(lines)
