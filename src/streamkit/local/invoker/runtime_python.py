"""Which Python a function's workers run on: the one its ``Runtime`` declares.

A function that declares ``python3.12`` runs on CPython 3.12, as on Lambda, so a zip built
for that runtime (its compiled codec included) is tested on the interpreter it ships to. The
interpreter is found by ``streamkit.local.interpreters`` (``STREAMKIT_PYTHON_PYTHON3_12``,
``python3.12`` on PATH, pyenv); the runner's own interpreter serves its own version.

What else a worker can import is the same on every interpreter: the function's code first
(Lambda's /var/task), then the interpreter's own library, then the runner's site-packages
(boto3, as Lambda's runtimes provide it in /var/runtime, but also anything else installed
there). A worker on another interpreter gets those directories through ``site.addsitedir``
(``site_dirs``), after its own: pure-Python packages import on any CPython 3, and a compiled
module built for the runner's version is not picked up by another (its file name carries the
version), so the import fails or the package falls back to its pure-Python code.

When this machine has no interpreter for the runtime, the worker runs on the runner's
interpreter instead and a WARNING says so, once per function (the documented fallback);
``STREAMKIT_RUNTIME_PYTHON=strict`` makes that an ``UnsupportedRuntimeError`` instead, which
the runner reports as it does any function code it cannot run.
"""

from __future__ import annotations

import logging
import os
import site
import sys
from dataclasses import dataclass
from pathlib import Path

from streamkit.exceptions import UnsupportedRuntimeError
from streamkit.local.interpreters import (
    InterpreterNotFoundError,
    find_interpreter,
    python_version_of,
)
from streamkit.local.invoker.functions import LoadedFunction

__all__ = ["STRICT_ENV", "WorkerPython", "worker_python"]

logger = logging.getLogger(__name__)

STRICT_ENV = "STREAMKIT_RUNTIME_PYTHON"


@dataclass(frozen=True)
class WorkerPython:
    """The interpreter a function's workers run on."""

    executable: str
    version: tuple[int, int]
    site_dirs: tuple[str, ...]  # the runner's site-packages, for another interpreter; else ()
    how: str  # "runner", "STREAMKIT_PYTHON_PYTHON3_12", "PATH", "pyenv", "fallback"


def _runner(how: str = "runner") -> WorkerPython:
    return WorkerPython(sys.executable, sys.version_info[:2], (), how)


def _runner_site_dirs() -> tuple[str, ...]:
    return tuple(path for path in site.getsitepackages() if Path(path).is_dir())


def worker_python(function: LoadedFunction) -> WorkerPython:
    """The interpreter for ``function``'s declared runtime (see the module docstring)."""
    spec = function.spec
    try:
        if python_version_of(spec.runtime) == sys.version_info[:2]:
            return _runner()
        found = find_interpreter(spec.runtime)
    except (InterpreterNotFoundError, ValueError) as error:
        if os.environ.get(STRICT_ENV, "").strip().lower() == "strict":
            raise UnsupportedRuntimeError(
                spec.name,
                function.code_location or str(function.code_dir),
                f"{error} ({STRICT_ENV}=strict forbids running it on Python "
                f"{sys.version_info[0]}.{sys.version_info[1]})",
            ) from error
        logger.warning(
            "function %s declares %s, but %s; running it on this Python %d.%d instead "
            "(%s=strict makes this an error)",
            spec.name,
            spec.runtime,
            error,
            *sys.version_info[:2],
            STRICT_ENV,
        )
        return _runner("fallback")
    logger.info(
        "function %s runs on %s (%s, found via %s)",
        spec.name,
        spec.runtime,
        found.executable,
        found.source,
    )
    return WorkerPython(found.executable, found.version, _runner_site_dirs(), found.source)
