#!/usr/bin/env python3
"""Start a private redis-server for the local order platform (its cache target).

    with start_redis() as server:          # a free loopback port
        print(server.url)                  # redis://127.0.0.1:PORT/0

    python scripts/redis_server.py [--port N]   # foreground, until Ctrl-C

The server listens on 127.0.0.1 only, keeps nothing on disk (no RDB snapshots, no AOF) and
runs in a temporary directory that goes with it. ``PrerequisiteMissing`` says in one line how
to install ``redis-server`` when it is absent (Debian/Ubuntu: ``apt-get install redis-server``).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import TracebackType
from typing import Self

__all__ = ["INSTALL_HINT", "PrerequisiteMissing", "RedisServer", "start_redis"]

INSTALL_HINT = (
    "redis-server is not installed: apt-get install redis-server "
    "(Debian/Ubuntu; macOS: brew install redis)"
)


class PrerequisiteMissing(RuntimeError):
    """A program the platform needs is not installed; the message says how to install it."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A running redis-server process; stop it with ``stop()`` or by leaving the ``with``."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, workdir: str) -> None:
        self.process = process
        self.port = port
        self.host = "127.0.0.1"
        self._workdir = workdir

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s) and remove its directory."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def start_redis(port: int | None = None, *, binary: str | None = None) -> RedisServer:
    """Start redis-server on 127.0.0.1:``port`` (a free one by default); returns once it
    answers PING. Raises ``PrerequisiteMissing`` when the binary is absent and RuntimeError when
    it does not come up (with its output)."""
    program = binary or shutil.which("redis-server")
    if program is None:
        raise PrerequisiteMissing(INSTALL_HINT)
    chosen = port or _free_port()
    workdir = tempfile.mkdtemp(prefix="streamkit-redis-")
    command = [
        program,
        "--bind", "127.0.0.1",
        "--port", str(chosen),
        "--save", "",
        "--appendonly", "no",
        "--dir", workdir,
        "--daemonize", "no",
        "--loglevel", "warning",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    server = RedisServer(process, chosen, workdir)
    deadline = time.monotonic() + 10
    while not _answers_ping(chosen):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise RuntimeError(f"redis-server did not start on port {chosen}:\n{output[-2000:]}")
        time.sleep(0.05)
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    args = parser.parse_args(argv)
    try:
        server = start_redis(args.port)
    except PrerequisiteMissing as exc:
        print(exc, file=sys.stderr)
        return 2
    print(server.url, flush=True)
    stopped = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopped
        stopped = True

    signal.signal(signal.SIGTERM, stop)
    with server, contextlib.suppress(KeyboardInterrupt):
        while not stopped and server.process.poll() is None:
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
