"""The CPython interpreter for a Lambda Python runtime (``python3.12`` -> a python3.12 binary).

Deployment zips are built for the runtime a function declares (``scripts/build_lambda.py``
compiles the codec for it), and the local runtime runs a function on that runtime's
interpreter, so what is tested locally is what Lambda runs. Where to look, in this order:

1. a configured map: ``STREAMKIT_PYTHON_<RUNTIME>``, the runtime upper-cased with ``.``
   as ``_`` (``STREAMKIT_PYTHON_PYTHON3_12=/opt/py312/bin/python``). A configured path that
   is not that runtime's interpreter is an error, never a reason to look elsewhere;
2. ``python3.12`` on ``PATH`` (a pyenv shim that cannot run it is skipped);
3. pyenv's installs: ``$PYENV_ROOT/versions/3.12.*/bin/python`` (default ``~/.pyenv``),
   the newest patch release first.

Each candidate is run once to ask its version, so a binary that claims a name it does not
have (a shim, a wrapper, a broken venv) is never used. Results are cached per process.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Interpreter",
    "InterpreterNotFoundError",
    "find_interpreter",
    "interpreter_env_var",
    "python_version_of",
]

ENV_PREFIX = "STREAMKIT_PYTHON_"
_RUNTIME = re.compile(r"python(3)\.(\d+)")
_PROBE = "import sys; print(sys.version_info[0], sys.version_info[1], sys.executable)"


class InterpreterNotFoundError(LookupError):
    """No interpreter for a runtime: says what was tried and how to configure one."""

    def __init__(self, runtime: str, tried: list[str], hint: str) -> None:
        self.runtime = runtime
        self.tried = tried
        shown = "; ".join(tried) if tried else "nothing to try"
        super().__init__(f"no interpreter for runtime {runtime} (tried: {shown}). {hint}")


@dataclass(frozen=True)
class Interpreter:
    """A CPython binary and the runtime it serves."""

    runtime: str  # "python3.12"
    executable: str  # the real binary (shims resolved), absolute
    version: tuple[int, int]
    source: str  # how it was found: "STREAMKIT_PYTHON_PYTHON3_12", "PATH", "pyenv"


def python_version_of(runtime: str) -> tuple[int, int]:
    """``(3, 12)`` for ``"python3.12"``; ValueError for anything that is not a Python runtime."""
    match = _RUNTIME.fullmatch(runtime)
    if match is None:
        raise ValueError(f"{runtime!r} is not a Lambda Python runtime (expected e.g. python3.12)")
    return int(match.group(1)), int(match.group(2))


def interpreter_env_var(runtime: str) -> str:
    """``STREAMKIT_PYTHON_PYTHON3_12`` for ``python3.12``."""
    return ENV_PREFIX + runtime.upper().replace(".", "_")


def _probe(binary: str) -> tuple[tuple[int, int], str] | None:
    """``((major, minor), real executable)`` of a binary, or None when it does not run."""
    try:
        done = subprocess.run(
            [binary, "-I", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
            # A pyenv shim picks its version from these; the probe must see the binary itself.
            env={k: v for k, v in os.environ.items() if k != "PYENV_VERSION"},
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    try:
        major, minor, executable = done.stdout.strip().split(" ", 2)
        return (int(major), int(minor)), executable
    except ValueError:
        return None


def _pyenv_candidates(version: tuple[int, int], environ: Mapping[str, str]) -> Iterator[str]:
    root = Path(environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    prefix = f"{version[0]}.{version[1]}."
    installs: list[tuple[int, Path]] = []
    for path in (root / "versions").glob(f"{prefix}*"):
        patch = path.name[len(prefix) :]
        if patch.isdigit():  # 3.12.1, not 3.12.1t or 3.12-dev
            installs.append((int(patch), path / "bin" / "python"))
    for _, binary in sorted(installs, reverse=True):
        if binary.exists():
            yield str(binary)


@functools.cache
def _find(
    runtime: str, configured: str | None, path: str | None, pyenv_root: str | None
) -> Interpreter:
    version = python_version_of(runtime)
    variable = interpreter_env_var(runtime)
    hint = f"Install CPython {version[0]}.{version[1]} or set {variable}=/path/to/python."
    if configured:
        found = _probe(configured)
        if found is None or found[0] != version:
            what = "does not run" if found is None else f"is Python {found[0][0]}.{found[0][1]}"
            raise InterpreterNotFoundError(
                runtime, [f"{variable}={configured} ({what})"], f"Point {variable} at a "
                f"CPython {version[0]}.{version[1]} binary."
            )  # fmt: skip
        return Interpreter(runtime, found[1], version, variable)
    tried: list[str] = []
    on_path = shutil.which(f"python{version[0]}.{version[1]}", path=path)
    candidates = [("PATH", on_path)] if on_path else []
    environ = {"PYENV_ROOT": pyenv_root} if pyenv_root else {}
    candidates += [("pyenv", binary) for binary in _pyenv_candidates(version, environ)]
    for source, binary in candidates:
        found = _probe(binary)
        if found is not None and found[0] == version:
            return Interpreter(runtime, found[1], version, source)
        tried.append(f"{binary} ({source}: {'does not run' if found is None else 'wrong version'})")
    if not on_path:
        tried.append(f"python{version[0]}.{version[1]} on PATH (none)")
    if not candidates or candidates[-1][0] != "pyenv":
        tried.append("pyenv versions (none)")
    raise InterpreterNotFoundError(runtime, tried, hint)


def find_interpreter(runtime: str, environ: Mapping[str, str] | None = None) -> Interpreter:
    """The interpreter for ``runtime`` (``"python3.12"``); raises InterpreterNotFoundError."""
    env = os.environ if environ is None else environ
    return _find(
        runtime,
        env.get(interpreter_env_var(runtime)) or None,
        env.get("PATH"),
        env.get("PYENV_ROOT") or None,
    )
