"""The live view: progress bars (rich) for placing and settling orders, with runner figures.

Without rich, or with ``--no-progress``, or when stdout is not a terminal, it prints a plain
status line every few seconds instead, so CI logs stay readable.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any


class Progress:
    def __init__(self, orders: int, enabled: bool) -> None:
        self._orders = orders
        self._rich: Any = None
        self._tasks: dict[str, Any] = {}
        self._last_line = 0.0
        self.info = ""
        if enabled and sys.stdout.isatty():
            try:
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    TextColumn,
                    TimeElapsedColumn,
                )
                from rich.progress import Progress as RichProgress
            except ImportError:
                return
            self._rich = RichProgress(
                TextColumn("{task.description:<16}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[info]}"),
            )

    def __enter__(self) -> Progress:
        if self._rich is not None:
            self._rich.start()
            for name in ("placed", "settled"):
                self._tasks[name] = self._rich.add_task(name, total=self._orders, info="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()

    def grow(self, orders: int) -> None:
        """The run places ``orders`` more (the backlog phase)."""
        self._orders += orders
        if self._rich is not None:
            for task in self._tasks.values():
                self._rich.update(task, total=self._orders)

    def update(self, placed: int, settled: int, info: str) -> None:
        self.info = info
        if self._rich is not None:
            self._rich.update(self._tasks["placed"], completed=placed, info="")
            self._rich.update(self._tasks["settled"], completed=settled, info=info)
            return
        now = time.monotonic()
        if now - self._last_line >= 5.0:
            self._last_line = now
            print(f"placed {placed}/{self._orders}, settled {settled}/{self._orders}  {info}",
                  flush=True)  # fmt: skip

    def say(self, message: str) -> None:
        if self._rich is not None:
            self._rich.console.print(message)
        else:
            print(message, flush=True)


def sayer(progress: Progress | None) -> Callable[[str], None]:
    return progress.say if progress is not None else lambda m: print(m, flush=True)
