"""One worker subprocess: starting it, the frame protocol on its pipes, and ending it.

The frame format and the messages are described in ``streamkit.local.invoker._worker_main``.

Workers die with the process that started them, even when it is killed with SIGKILL and
cannot clean up: each worker gets the read end of one pipe whose write end only this process
holds (:func:`parent_watch_fd`, never written). When this process ends, however it ends, the
kernel closes the write end, the worker reads EOF on a watcher thread and SIGKILLs its own
process group (itself and whatever its handler started). ``prctl(PR_SET_PDEATHSIG)`` is not
used: it fires when the *thread* that started the worker exits, and workers outlive the lane
threads that start them. ``hold_fds`` are descriptors a worker keeps open for its whole life
(the runner's lock on its state directory, so a new runner waits for the old workers too).
"""

from __future__ import annotations

import json
import os
import queue
import signal
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO, Any

from streamkit.local.invoker._output import OutputCollector
from streamkit.local.invoker.functions import LoadedFunction
from streamkit.local.invoker.runtime_python import WorkerPython, worker_python

WORKER_MAIN = Path(__file__).parent / "_worker_main.py"
_FRAME_PREFIX = struct.Struct(">II")
_EXIT_WAIT_S = 2.0

# How Lambda (its Go runtime manager) words a worker killed by a signal.
_SIGNAL_WORDS = {
    signal.SIGKILL: "killed",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating point exception",
    signal.SIGILL: "illegal instruction",
    signal.SIGINT: "interrupt",
}


_watch_lock = threading.Lock()
_watch_pipe: tuple[int, int] | None = None


def parent_watch_fd() -> int:
    """The read end of this process's parent-watch pipe (made once; both ends are
    non-inheritable, so only workers given it in ``pass_fds`` get the read end, and no child
    ever gets the write end, which stays open until this process ends)."""
    global _watch_pipe
    with _watch_lock:
        if _watch_pipe is None:
            _watch_pipe = os.pipe()
        return _watch_pipe[0]


class Worker:
    """One worker subprocess: the protocol pipe, the log pipe, and how to end it."""

    def __init__(
        self,
        function: LoadedFunction,
        env: Mapping[str, str],
        python: WorkerPython | None = None,
        on_line: Callable[[str], None] | None = None,
        *,
        hold_fds: Sequence[int] = (),
    ) -> None:
        """``python``: the interpreter to run (default: the function's declared runtime's);
        ``hold_fds``: descriptors the worker keeps open until it exits (see the module doc)."""
        python = python or worker_python(function)
        watch = parent_watch_fd()
        options = ["--watch-fd", str(watch)]
        options += [arg for fd in hold_fds for arg in ("--hold-fd", str(fd))]
        options += [arg for path in python.site_dirs for arg in ("--site-dir", path)]
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            # -P: keep the worker script's directory off sys.path; -u: unbuffered stdout and
            # stderr, so output reaches the log pipe in order and survives a kill.
            [python.executable, "-P", "-u", str(WORKER_MAIN), *options],
            pass_fds=(watch, *hold_fds),
            cwd=function.code_dir,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own process group, so a kill also reaches processes the handler started.
            start_new_session=True,
        )
        self.pid = self.process.pid
        self.label = f"{function.spec.name}:{self.pid}"
        self.warned_memory = False
        self._messages: queue.Queue[tuple[dict[str, Any], bytes] | None] = queue.Queue()
        assert self.process.stdout is not None and self.process.stderr is not None
        self.output = OutputCollector(self.process.stderr, self.label, on_line)
        threading.Thread(
            target=self._read_frames, args=(self.process.stdout,), name=self.label, daemon=True
        ).start()

    def _read_frames(self, stream: IO[bytes]) -> None:
        try:
            while True:
                prefix = stream.read(_FRAME_PREFIX.size)
                if len(prefix) < _FRAME_PREFIX.size:
                    break
                header_length, body_length = _FRAME_PREFIX.unpack(prefix)
                header = stream.read(header_length)
                body = stream.read(body_length)
                if len(header) < header_length or len(body) < body_length:
                    break
                self._messages.put((json.loads(header), body))
        except (OSError, ValueError):
            pass
        finally:
            stream.close()
            self._messages.put(None)

    def send(self, header: Mapping[str, Any], body: bytes) -> bool:
        """False when the worker is gone (its exit shows up as EOF on receive)."""
        encoded = json.dumps(header).encode()
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(_FRAME_PREFIX.pack(len(encoded), len(body)) + encoded + body)
            stdin.flush()
        except (OSError, ValueError):
            return False
        return True

    def receive(self, timeout_s: float) -> tuple[dict[str, Any], bytes] | None:
        """The next message, or None at EOF. Raises ``queue.Empty`` after ``timeout_s``."""
        return self._messages.get(timeout=max(timeout_s, 0.001))

    def kill(self) -> None:
        """SIGKILL the worker's process group, then reap the worker."""
        # Only while the worker is unreaped: its pid (= the group id) cannot be reused yet.
        if self.process.returncode is None:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        if self.process.stdin is not None:
            with suppress(OSError):
                self.process.stdin.close()
        self.process.wait()

    def exit_description(self) -> str:
        """How the worker ended, worded like Lambda's Runtime.ExitError ("exit status 1",
        "signal: killed"). Waits briefly for it to exit, then kills what is left of its group."""
        deadline = time.monotonic() + _EXIT_WAIT_S
        while time.monotonic() < deadline and not self._has_exited():
            time.sleep(0.01)
        self.kill()
        code = self.process.returncode
        if code < 0:
            signum = -code
            try:
                word = _SIGNAL_WORDS.get(signal.Signals(signum), signal.Signals(signum).name)
            except ValueError:
                word = f"signal {signum}"
            return f"signal: {word}"
        return f"exit status {code}"

    def _has_exited(self) -> bool:
        # WNOWAIT leaves the worker unreaped, so kill() can still signal its group safely.
        if not hasattr(os, "waitid"):
            return self.process.poll() is not None
        try:
            status = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return status is not None
