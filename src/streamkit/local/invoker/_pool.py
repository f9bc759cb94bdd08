"""Which workers of one function exist, and which caller may use which."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from streamkit.exceptions import InvokerClosedError
from streamkit.local.invoker._worker import Worker


class WorkerPool:
    """The workers of one function version, at most ``max_concurrency`` of them busy.

    A caller holds a ``slot`` for the whole invoke; in it, it takes an idle worker or starts
    one and ``adopt``s it, and in the end ``release``s it (warm, for the next caller) or
    ``discard``s it (dead). ``close`` kills every worker, busy ones included.
    """

    def __init__(self, function_name: str, max_concurrency: int) -> None:
        self._function_name = function_name
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._lock = threading.Lock()
        self._idle: list[Worker] = []
        self._live: set[Worker] = set()
        self._closed = False

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Wait for one of the ``max_concurrency`` slots."""
        self.check_open()
        with self._slots:
            self.check_open()
            yield

    def check_open(self) -> None:
        """Raise ``InvokerClosedError`` once the pool is closed."""
        if self._closed:
            raise InvokerClosedError(self._function_name)

    def take_idle(self) -> Worker | None:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()  # the most recently used one: the warmest
                if worker.process.poll() is None:
                    return worker
                self._live.discard(worker)
            return None

    def adopt(self, worker: Worker) -> None:
        """Count a just-started worker in, so ``close`` kills it too."""
        with self._lock:
            if self._closed:
                worker.kill()
                raise InvokerClosedError(self._function_name)
            self._live.add(worker)

    def release(self, worker: Worker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        worker.kill()

    def discard(self, worker: Worker) -> None:
        with self._lock:
            self._live.discard(worker)

    def close(self) -> None:
        """Kill every worker; the callers using one get ``InvokerClosedError``."""
        with self._lock:
            self._closed = True
            workers = list(self._live)
            self._idle.clear()
        for worker in workers:
            worker.kill()
