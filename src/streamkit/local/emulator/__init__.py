"""The embedded AWS emulator: moto's server with streamkit's fixes, on real HTTP.

``Emulator`` is the Python API; ``cli_main`` implements ``streamkit emulator``.
"""

from __future__ import annotations

from streamkit.exceptions import EmulatorError, PortInUseError
from streamkit.local.emulator.cli import cli_main
from streamkit.local.emulator.code_server import HEALTH_PATH
from streamkit.local.emulator.moto_patches import CODE_PATH_PREFIX, apply_moto_patches
from streamkit.local.emulator.server import Emulator

__all__ = [
    "CODE_PATH_PREFIX",
    "HEALTH_PATH",
    "Emulator",
    "EmulatorError",
    "PortInUseError",
    "apply_moto_patches",
    "cli_main",
]

apply_moto_patches()
