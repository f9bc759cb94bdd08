"""The state directory lock: one runner at a time, and not while a dead runner's workers
(which hold the locked descriptor) still run."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamkit.local.esm.state_lock import StateDirectoryBusyError, StateDirectoryLock


def test_a_second_holder_waits_then_gives_up_naming_the_first(tmp_path: Path) -> None:
    first = StateDirectoryLock(tmp_path)
    first.acquire()
    started = time.monotonic()
    with pytest.raises(StateDirectoryBusyError) as info:
        StateDirectoryLock(tmp_path).acquire(timeout=0.2)
    assert time.monotonic() - started >= 0.2
    assert str(info.value) == (
        f"state directory {tmp_path} is in use by runner {os.getpid()}; stop it, "
        "or use another --state-dir"
    )
    first.release()
    second = StateDirectoryLock(tmp_path)
    second.acquire(timeout=0)
    second.release()


def test_a_child_holding_the_descriptor_keeps_the_directory_busy(tmp_path: Path) -> None:
    # As a function worker does after its runner died: the lock lives while the child does.
    lock = StateDirectoryLock(tmp_path)
    fd = lock.acquire()
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        pass_fds=(fd,),
    )
    try:
        lock.release()  # the runner's own descriptor is gone (as after kill -9)
        with pytest.raises(StateDirectoryBusyError, match="in use by function workers of runner"):
            # The holder recorded is this process, alive here: make it look gone.
            (tmp_path / StateDirectoryLock.FILENAME).write_text(f"{_a_dead_pid()}\n")
            StateDirectoryLock(tmp_path).acquire(timeout=0.1)
        assert child.stdin is not None
        child.stdin.close()
        child.wait(10)
        StateDirectoryLock(tmp_path).acquire(timeout=5)  # free once the child is gone
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


def _a_dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid
