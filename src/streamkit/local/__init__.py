"""The local runtime: an embedded AWS emulator and a Lambda-faithful event source mapping runner.

- :mod:`.emulator` -- moto's server with streamkit's fixes (``streamkit emulator``);
- :mod:`.esm` -- the event source mapping runner (``streamkit run``);
- :mod:`.invoker` -- runs a function's deployed code in warm worker processes;
- :mod:`.faults` / :mod:`.faults_cli` -- the emulator's fault injection, from Python and
  ``streamkit faults``;
- :mod:`.interpreters` -- the CPython interpreter of a Lambda Python runtime.

The stream building blocks the runner shares with ``streamkit.ops`` are in
:mod:`streamkit.streams`.

Names are resolved lazily so that ``import streamkit.local`` stays cheap and never imports
moto unless the emulator itself is used (the runner talks to any endpoint over HTTP).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from streamkit.local.emulator import Emulator
    from streamkit.local.emulator.process import spawn_emulator
    from streamkit.local.esm.checkpoints import CheckpointStore
    from streamkit.local.esm.config import (
        MappingConfig,
        validate_create_request,
        validate_update_request,
    )
    from streamkit.local.esm.runner import Runner
    from streamkit.local.invoker import FunctionInvoker, InvokeResult
    from streamkit.local.invoker.functions import (
        FunctionSpec,
        LoadedFunction,
        fetch_function,
        install_code,
        load_function_from_directory,
    )
    from streamkit.local.invoker.lambda_context import LambdaContext

_LAZY: dict[str, str] = {
    "CheckpointStore": "streamkit.local.esm.checkpoints",
    "Emulator": "streamkit.local.emulator",
    "FunctionInvoker": "streamkit.local.invoker",
    "FunctionSpec": "streamkit.local.invoker.functions",
    "InvokeResult": "streamkit.local.invoker",
    "LambdaContext": "streamkit.local.invoker.lambda_context",
    "LoadedFunction": "streamkit.local.invoker.functions",
    "MappingConfig": "streamkit.local.esm.config",
    "Runner": "streamkit.local.esm.runner",
    "fetch_function": "streamkit.local.invoker.functions",
    "spawn_emulator": "streamkit.local.emulator.process",
    "install_code": "streamkit.local.invoker.functions",
    "load_function_from_directory": "streamkit.local.invoker.functions",
    "validate_create_request": "streamkit.local.esm.config",
    "validate_update_request": "streamkit.local.esm.config",
}

__all__ = [
    "CheckpointStore",
    "Emulator",
    "FunctionInvoker",
    "FunctionSpec",
    "InvokeResult",
    "LambdaContext",
    "LoadedFunction",
    "MappingConfig",
    "Runner",
    "fetch_function",
    "install_code",
    "load_function_from_directory",
    "spawn_emulator",
    "validate_create_request",
    "validate_update_request",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'streamkit.local' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
