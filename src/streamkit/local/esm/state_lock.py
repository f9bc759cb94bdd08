"""One runner per state directory, and not while a previous runner's workers still run.

Two runners on one state directory would both run its mappings from the same checkpoints:
every batch twice, at the same time. A runner therefore holds an exclusive ``flock`` on
``DIR/runner.lock`` while it runs, and its function workers inherit the locked descriptor
and keep it open (:mod:`streamkit.local.invoker._worker`). A runner killed with ``kill -9``
thus still holds the lock through its workers until they are gone too -- they notice their
runner's death at once and kill themselves -- so a new runner never starts a batch while an
old worker may still be running it. ``flock`` locks belong to the open file, not the process:
the kernel releases this one when the last process holding it exits, however it exits.

A runner that finds the lock held waits up to ``timeout`` seconds (old workers take a few
milliseconds to go), then gives up with :class:`StateDirectoryBusyError`, naming the holder.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import time
from pathlib import Path

__all__ = ["StateDirectoryBusyError", "StateDirectoryLock"]

LOG = logging.getLogger(__name__)

_POLL_S = 0.05


class StateDirectoryBusyError(RuntimeError):
    """Another runner, or function workers of a runner that died, hold the state directory."""


class StateDirectoryLock:
    """The exclusive lock of one state directory (see the module doc)."""

    FILENAME = "runner.lock"

    def __init__(self, state_dir: str | os.PathLike[str]) -> None:
        self.path = Path(state_dir) / self.FILENAME
        self.fd: int | None = None

    def acquire(self, timeout: float = 10.0) -> int:
        """Take the lock (waiting up to ``timeout`` s); the locked descriptor, for workers to
        hold. Raises :class:`StateDirectoryBusyError` when it stays taken."""
        if self.fd is not None:
            return self.fd
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)  # not inheritable (PEP 446)
        deadline = time.monotonic() + timeout
        warned = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = self._holder(fd)
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise StateDirectoryBusyError(
                        f"state directory {self.path.parent} is in use by {holder}; stop it, "
                        "or use another --state-dir"
                    ) from None
                if not warned:
                    LOG.warning("state directory %s is in use by %s; waiting up to %.0fs",
                                self.path.parent, holder, timeout)  # fmt: skip
                    warned = True
                time.sleep(_POLL_S)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return fd

    def release(self) -> None:
        """Close this process's descriptor. The lock is free once workers holding it are gone
        too (closing, unlike LOCK_UN, leaves their hold alone)."""
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    @staticmethod
    def _holder(fd: int) -> str:
        with contextlib.suppress(OSError, ValueError):
            pid = int(os.pread(fd, 32, 0).decode().strip())
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return f"function workers of runner {pid}, which is gone"
            except PermissionError:
                pass
            return f"runner {pid}"
        return "another runner"
