"""Run ``streamkit emulator`` in a child process and yield its endpoint URL.

Load tests, benchmarks and isolated tests want an emulator of their own, in another process
so that moto's work does not compete with theirs for the GIL. This module does not import
moto: the child does.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from streamkit.exceptions import EmulatorError

__all__ = ["spawn_emulator"]


@contextmanager
def spawn_emulator(*, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Start ``python -m streamkit.cli emulator`` and yield its endpoint; stop it on exit.

    ``port=0`` picks a free port. The child prints its endpoint as its first line once it
    serves; anything else (it died, the port was taken) raises ``EmulatorError``.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamkit.cli", "emulator", "--host", host, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    try:
        endpoint = proc.stdout.readline().strip()
        if not endpoint.startswith("http"):
            raise EmulatorError(
                f"streamkit emulator did not start on {host}:{port} "
                f"(first line {endpoint!r}, exit status {proc.poll()})"
            )
        yield endpoint
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        proc.stdout.close()
