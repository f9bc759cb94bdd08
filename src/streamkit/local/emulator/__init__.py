"""The embedded AWS emulator: moto's server with streamkit's fixes, on real HTTP.

``Emulator`` is the Python API; ``cli_main`` implements ``streamkit emulator``;
``spawn_emulator`` (:mod:`.process`) runs that command in a child process.

Names are resolved lazily, so that :mod:`.process` stays free of moto (the child imports it).
Resolving any other name applies streamkit's moto patches, as importing this package did
before the spawner moved in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from streamkit.exceptions import EmulatorError, PortInUseError

if TYPE_CHECKING:
    from streamkit.local.emulator.cli import cli_main
    from streamkit.local.emulator.code_server import HEALTH_PATH
    from streamkit.local.emulator.moto_patches import CODE_PATH_PREFIX, apply_moto_patches
    from streamkit.local.emulator.process import spawn_emulator
    from streamkit.local.emulator.server import Emulator

_LAZY: dict[str, str] = {
    "CODE_PATH_PREFIX": "streamkit.local.emulator.moto_patches",
    "HEALTH_PATH": "streamkit.local.emulator.code_server",
    "Emulator": "streamkit.local.emulator.server",
    "apply_moto_patches": "streamkit.local.emulator.moto_patches",
    "cli_main": "streamkit.local.emulator.cli",
    "spawn_emulator": "streamkit.local.emulator.process",
}

__all__ = [
    "CODE_PATH_PREFIX",
    "HEALTH_PATH",
    "Emulator",
    "EmulatorError",
    "PortInUseError",
    "apply_moto_patches",
    "cli_main",
    "spawn_emulator",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'streamkit.local.emulator' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    if name != "spawn_emulator":
        importlib.import_module("streamkit.local.emulator.moto_patches").apply_moto_patches()
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
