"""Which Python a function's workers run on: the one its ``Runtime`` declares.

A function that declares ``python3.12`` runs on CPython 3.12, as on Lambda, so a zip built
for that runtime (its compiled codec included) is tested on the interpreter it ships to. The
interpreter is found by ``streamkit.local.interpreters`` (``STREAMKIT_PYTHON_PYTHON3_12``,
``python3.12`` on PATH, pyenv); the runner's own interpreter serves its own version.

Lambda's Python runtimes provide the AWS SDK (boto3 and its dependencies, in /var/runtime,
after the function's code on sys.path). A worker on the runner's interpreter finds it in the
runner's site-packages; a worker on another interpreter gets the same pure-Python packages,
linked into one directory that it appends to sys.path (``sdk_path``), and nothing else of
the runner's environment.

When this machine has no interpreter for the runtime, the worker runs on the runner's
interpreter instead and a WARNING says so, once per function (the documented fallback);
``STREAMKIT_RUNTIME_PYTHON=strict`` makes that an ``UnsupportedRuntimeError`` instead, which
the runner reports as it does any function code it cannot run.
"""

from __future__ import annotations

import atexit
import functools
import importlib.util
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from streamkit.exceptions import UnsupportedRuntimeError
from streamkit.local.interpreters import (
    InterpreterNotFoundError,
    find_interpreter,
    python_version_of,
)
from streamkit.local.invoker.functions import LoadedFunction

__all__ = ["SDK_PACKAGES", "STRICT_ENV", "WorkerPython", "worker_python"]

logger = logging.getLogger(__name__)

STRICT_ENV = "STREAMKIT_RUNTIME_PYTHON"
# What the Lambda Python runtimes provide besides the standard library: boto3 and what it
# imports (https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html, "runtime-included
# SDK"). All pure Python, so the runner's copies serve any interpreter.
SDK_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")


@dataclass(frozen=True)
class WorkerPython:
    """The interpreter a function's workers run on."""

    executable: str
    version: tuple[int, int]
    sdk_path: str | None  # appended to the worker's sys.path; None on the runner's interpreter
    how: str  # "runner", "STREAMKIT_PYTHON_PYTHON3_12", "PATH", "pyenv", "fallback"


def _runner() -> WorkerPython:
    return WorkerPython(sys.executable, sys.version_info[:2], None, "runner")


@functools.cache
def _sdk_directory() -> str:
    """A directory linking the runner's copies of the SDK packages (made once per process)."""
    directory = Path(tempfile.mkdtemp(prefix="streamkit-lambda-sdk-"))
    atexit.register(shutil.rmtree, directory, ignore_errors=True)
    for name in SDK_PACKAGES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue  # not installed here: the handler gets the ImportError Lambda would not give
        origin = Path(spec.origin)
        source = origin.parent if spec.submodule_search_locations else origin
        (directory / source.name).symlink_to(source)
    return str(directory)


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
        return WorkerPython(sys.executable, sys.version_info[:2], None, "fallback")
    logger.info(
        "function %s runs on %s (%s, found via %s)",
        spec.name,
        spec.runtime,
        found.executable,
        found.source,
    )
    return WorkerPython(found.executable, found.version, _sdk_directory(), found.source)
