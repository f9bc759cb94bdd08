"""Finding the interpreter for a Lambda Python runtime (streamkit.local.interpreters).

Stand-in interpreters are small shell scripts that answer the version probe the way CPython
does, so each source (configured map, PATH, pyenv) and each refusal can be shown here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from streamkit.local.interpreters import (
    InterpreterNotFoundError,
    find_interpreter,
    interpreter_env_var,
    python_version_of,
)


def _fake_python(path: Path, major: int, minor: int) -> Path:
    """A script answering the probe as CPython major.minor would (it ignores its arguments)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\necho {major} {minor} {path}\n")
    path.chmod(0o755)
    return path


def test_runtime_names_and_their_variables() -> None:
    assert python_version_of("python3.12") == (3, 12)
    assert interpreter_env_var("python3.12") == "STREAMKIT_PYTHON_PYTHON3_12"
    for bad in ("nodejs20.x", "python3", "python3.x", "python2.7"):
        with pytest.raises(ValueError, match="not a Lambda Python runtime"):
            python_version_of(bad)


def test_a_configured_interpreter_wins_and_a_wrong_one_is_an_error(tmp_path: Path) -> None:
    good = _fake_python(tmp_path / "py312", 3, 12)
    found = find_interpreter("python3.12", {"STREAMKIT_PYTHON_PYTHON3_12": str(good), "PATH": ""})
    assert (found.executable, found.version, found.source) == (
        str(good),
        (3, 12),
        "STREAMKIT_PYTHON_PYTHON3_12",
    )
    wrong = _fake_python(tmp_path / "py311", 3, 11)
    with pytest.raises(InterpreterNotFoundError) as refused:
        # A python3.12 on PATH must not be used instead of the configured one.
        find_interpreter(
            "python3.12",
            {"STREAMKIT_PYTHON_PYTHON3_12": str(wrong), "PATH": str(good.parent)},
        )
    assert "STREAMKIT_PYTHON_PYTHON3_12" in str(refused.value)
    assert "is Python 3.11" in str(refused.value)


def test_path_then_pyenv_newest_patch_first(tmp_path: Path) -> None:
    on_path = _fake_python(tmp_path / "bin" / "python3.12", 3, 12)
    found = find_interpreter("python3.12", {"PATH": str(on_path.parent), "PYENV_ROOT": "/nowhere"})
    assert (found.executable, found.source) == (str(on_path), "PATH")

    root = tmp_path / "pyenv"
    _fake_python(root / "versions" / "3.12.1" / "bin" / "python", 3, 12)
    newest = _fake_python(root / "versions" / "3.12.10" / "bin" / "python", 3, 12)
    _fake_python(root / "versions" / "3.12.11t" / "bin" / "python", 3, 12)  # not a plain build
    found = find_interpreter(
        "python3.12", {"PATH": str(tmp_path / "empty"), "PYENV_ROOT": str(root)}
    )
    assert (found.executable, found.source) == (str(newest), "pyenv")


def test_a_shim_that_is_not_the_version_is_skipped(tmp_path: Path) -> None:
    shim = _fake_python(tmp_path / "bin" / "python3.12", 3, 11)  # claims the name, is 3.11
    with pytest.raises(InterpreterNotFoundError) as missing:
        find_interpreter("python3.12", {"PATH": str(shim.parent), "PYENV_ROOT": "/nowhere"})
    message = str(missing.value)
    assert "wrong version" in message
    assert "STREAMKIT_PYTHON_PYTHON3_12=/path/to/python" in message


def test_the_running_interpreter_is_found_for_its_own_runtime() -> None:
    runtime = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    env = {"STREAMKIT_PYTHON_" + runtime.upper().replace(".", "_"): sys.executable}
    assert find_interpreter(runtime, env).version == sys.version_info[:2]
