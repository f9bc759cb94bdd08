"""A local console for ``streamkit run``: monitor and debug stream processing in a browser.

``streamkit run --console [HOST:]PORT`` or ``Runner(..., console="127.0.0.1:0")`` serve it
while the runner runs (``runner.console_url``); :func:`serve` starts one for any runner.
Pages: overview, mapping detail, stream live tail, on-failure destinations with replay, and
faults (when the emulator has fault injection), each backed by a JSON API under ``/api/``
(docs/console.md). It reads the runner's counters through
:class:`~streamkit.console.runner_view.RunnerView` and the endpoint's APIs; it keeps no
database, only the last minutes of samples in memory.
"""

from __future__ import annotations

from streamkit.console.server import Console, ConsoleBindError, parse_bind, serve

__all__ = ["Console", "ConsoleBindError", "parse_bind", "serve"]
