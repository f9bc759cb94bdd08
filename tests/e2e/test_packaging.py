"""The package as users get it: ``python -m build``, then a wheel installed in a fresh venv.

Covers what the README promises about packaging: sdist and wheel build; the wheel carries
``py.typed`` and the compiled deserializer and is tagged for this interpreter; a build with
``STREAMKIT_BUILD_NATIVE=skip`` is a pure-Python ``py3-none-any`` wheel; both install with no
dependencies and decode the same; importing streamkit pulls in no boto3. Deployment zips
(``scripts/build_lambda.py``) leave out what an editable install compiled in src/ (they get
the codec compiled for their runtime instead: tests/e2e/test_lambda_codec.py).

Builds use pip's build isolation, so they fetch hatchling, mypy and setuptools from the
package index (cached after the first run).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

IMPORT_PROBE = """
import json, sys
import streamkit
from streamkit import codec
print(json.dumps({
    "compiled": codec.COMPILED,
    "decoded": repr(codec.deserialize({"n": {"N": "1E+40"}, "b": {"B": "AQI="}})),
    "boto3_imported": "boto3" in sys.modules,
    "location": streamkit.__file__,
}))
"""


def _attempt(
    command: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=600
    )


def _run(command: list[str], *, env: dict[str, str] | None = None, cwd: Path = REPO) -> str:
    done = _attempt(command, env=env, cwd=cwd)
    assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _attempt_build(
    out: Path, native: str, *targets: str, **env: str
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "build", *targets, "--outdir", str(out), str(REPO)]
    return _attempt(command, env={**os.environ, "STREAMKIT_BUILD_NATIVE": native, **env})


def _build(out: Path, native: str, *targets: str, **env: str) -> list[Path]:
    done = _attempt_build(out, native, *targets, **env)
    assert done.returncode == 0, f"build failed:\n{done.stdout}\n{done.stderr}"
    return sorted(out.iterdir())


def _install_and_probe(wheel: Path, venv: Path) -> dict[str, object]:
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            str(wheel),
        ]
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "STREAMKIT_PURE_PYTHON")}
    # Run from an empty directory so that the repository's src/ cannot be imported instead.
    result: dict[str, object] = json.loads(
        _run([str(python), "-c", IMPORT_PROBE], env=env, cwd=venv)
    )
    assert str(result["location"]).startswith(str(venv)), result
    assert result["decoded"] == "{'n': Decimal('1E+40'), 'b': b'\\x01\\x02'}"
    assert result["boto3_imported"] is False
    return result


@pytest.fixture(scope="module")
def native_dist(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """sdist and wheel as ``make build`` makes them (the wheel built from the sdist)."""
    return _build(tmp_path_factory.mktemp("dist"), "require")


def test_sdist_carries_the_sources_and_the_build_hook_but_nothing_compiled(
    native_dist: list[Path],
) -> None:
    (sdist,) = [p for p in native_dist if p.name.endswith(".tar.gz")]
    with tarfile.open(sdist) as archive:
        names = [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]
    assert "hatch_build.py" in names
    assert "src/streamkit/codec/_native_deserializer.py" in names
    assert "src/streamkit/py.typed" in names
    assert not [n for n in names if n.endswith((".so", ".pyd", ".source-sha256"))]


def test_wheel_carries_the_compiled_deserializer_and_installs(
    native_dist: list[Path], tmp_path: Path
) -> None:
    (wheel,) = [p for p in native_dist if p.suffix == ".whl"]
    assert not wheel.name.endswith("-none-any.whl"), "a compiled wheel is platform-specific"
    assert f"-cp{sys.version_info.major}{sys.version_info.minor}-" in wheel.name
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    compiled = [n for n in names if n.startswith("streamkit/codec/") and n.endswith(".so")]
    assert len(compiled) == 2, compiled  # the module and its mypyc runtime library
    assert "streamkit/py.typed" in names
    assert not [n for n in names if n.endswith(".source-sha256")]
    assert _install_and_probe(wheel, tmp_path / "venv")["compiled"] is True


def test_a_pure_python_wheel_can_be_asked_for(tmp_path: Path) -> None:
    (wheel,) = _build(tmp_path / "dist", "skip", "--wheel")
    assert wheel.name.endswith("-py3-none-any.whl")
    with zipfile.ZipFile(wheel) as archive:
        assert not [n for n in archive.namelist() if n.endswith((".so", ".pyd"))]
    assert _install_and_probe(wheel, tmp_path / "venv")["compiled"] is False


def test_without_a_c_compiler_auto_builds_pure_python_and_require_refuses(
    tmp_path: Path,
) -> None:
    no_compiler = {"CC": "false"}  # setuptools compiles with $CC; `false` fails every call
    (wheel,) = _build(tmp_path / "auto", "auto", "--wheel", **no_compiler)
    assert wheel.name.endswith("-py3-none-any.whl")
    done = _attempt_build(tmp_path / "require", "require", "--wheel", **no_compiler)
    assert done.returncode != 0
    assert "NativeBuildError" in done.stdout + done.stderr


def test_an_unknown_build_mode_is_refused(tmp_path: Path) -> None:
    done = _attempt_build(tmp_path, "sometimes", "--wheel")
    assert done.returncode != 0
    assert "STREAMKIT_BUILD_NATIVE must be one of auto, require, skip" in done.stdout + done.stderr


def test_deployment_zips_leave_compiled_files_out() -> None:
    from scripts.build_lambda import build_zip

    with zipfile.ZipFile(io.BytesIO(build_zip({"app.py": "x = 1\n"}))) as archive:
        names = archive.namelist()
    assert "streamkit/codec/_native_deserializer.py" in names
    assert "streamkit/codec/_fast_deserializer.py" in names
    assert not [n for n in names if n.endswith((".so", ".pyd", ".source-sha256", ".pyc"))]
