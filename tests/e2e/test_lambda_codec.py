"""Deployment zips carry the codec compiled for their Lambda runtime (scripts/build_lambda.py).

- a python3.12 zip carries the extension built for CPython 3.12, and unpacked and run with
  CPython 3.12 (as Lambda runs /var/task) it imports with ``streamkit.codec.COMPILED`` true;
- zips are deterministic: twice the same bytes, also after the compiled artifact is rebuilt
  from scratch (mypyc's output is reproducible);
- an extension that needs more than the runtime's platform has (a glibc 2.36 symbol for
  Amazon Linux 2023's glibc 2.34) is refused, with a clear message and no zip written;
- a runtime with no interpreter on this machine gets a pure-Python zip, with a warning.

Needs CPython 3.12 (PATH, pyenv or STREAMKIT_PYTHON_PYTHON3_12) and a C compiler; the first
run makes a toolchain venv in build/lambda-toolchains (mypy from the package index).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from scripts import lambda_codec

from streamkit.local.interpreters import InterpreterNotFoundError, find_interpreter
from tests.helpers.terraform import unavailable

REPO = Path(__file__).resolve().parents[2]
BUILD_LAMBDA = REPO / "scripts" / "build_lambda.py"
HANDLER = REPO / "handlers" / "workflow"

PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])  # the unpacked zip first, as Lambda puts /var/task
import streamkit
from streamkit import codec
print(json.dumps({
    "compiled": codec.COMPILED,
    "decoded": repr(codec.deserialize({"n": {"N": "1.50"}, "l": {"L": [{"S": "x"}]}})),
    "location": streamkit.__file__,
    "python": list(sys.version_info[:2]),
}))
"""


def _python(runtime: str) -> str:
    try:
        return find_interpreter(runtime).executable
    except InterpreterNotFoundError as error:
        unavailable(str(error))
        raise


def _build(
    out: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BUILD_LAMBDA), str(HANDLER), "-o", str(out), *args],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={**os.environ, **(env or {})},
    )


def _names(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.namelist()


@pytest.fixture(scope="module")
def codec_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private artifact cache, so these tests compile from scratch and leave build/ alone."""
    return tmp_path_factory.mktemp("lambda-codec-cache")


@pytest.fixture(scope="module")
def zip_312(codec_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    _python("python3.12")
    out = tmp_path_factory.mktemp("zip312") / "workflow.zip"
    done = _build(out, "--runtime", "python3.12", env={lambda_codec.CACHE_ENV: str(codec_cache)})
    assert done.returncode == 0, done.stderr
    assert "python3.12 x86_64, compiled deserializer" in done.stdout
    return out.read_bytes()


def test_a_python312_zip_carries_the_codec_compiled_for_cpython312(zip_312: bytes) -> None:
    compiled = sorted(n for n in _names(zip_312) if n.endswith(".so"))
    assert compiled == [
        "streamkit/codec/_native_deserializer.cpython-312-x86_64-linux-gnu.so",
        "streamkit/codec/_native_deserializer__mypyc.cpython-312-x86_64-linux-gnu.so",
    ]
    assert "streamkit/codec/_native_deserializer.py" in _names(zip_312)  # the fallback source
    assert not [n for n in _names(zip_312) if n.endswith((".pyc", ".source-sha256"))]


def test_unpacked_and_run_on_cpython312_the_codec_is_compiled(
    zip_312: bytes, tmp_path: Path
) -> None:
    with zipfile.ZipFile(io.BytesIO(zip_312)) as archive:
        archive.extractall(tmp_path / "task")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "STREAMKIT_PURE_PYTHON")}
    done = subprocess.run(
        [_python("python3.12"), "-I", "-c", PROBE, str(tmp_path / "task")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=env,
        cwd=tmp_path,
    )
    result = json.loads(done.stdout)
    assert result["python"] == [3, 12]
    assert str(result["location"]).startswith(str(tmp_path / "task"))
    assert result["compiled"] is True
    assert result["decoded"] == "{'n': Decimal('1.50'), 'l': ['x']}"


def test_zips_are_deterministic_also_when_the_codec_is_recompiled(
    zip_312: bytes, codec_cache: Path, tmp_path: Path
) -> None:
    env = {lambda_codec.CACHE_ENV: str(codec_cache)}
    again = _build(tmp_path / "again.zip", "--runtime", "python3.12", env=env)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.zip").read_bytes() == zip_312  # from the cached artifact
    shutil.rmtree(codec_cache / "python3.12-x86_64")
    rebuilt = _build(tmp_path / "rebuilt.zip", "--runtime", "python3.12", env=env)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (codec_cache / "python3.12-x86_64").is_dir(), "the artifact was not recompiled"
    digest = hashlib.sha256((tmp_path / "rebuilt.zip").read_bytes()).hexdigest()
    assert digest == hashlib.sha256(zip_312).hexdigest()


def _glibc_236_library(tmp_path: Path) -> bytes:
    """A shared library calling arc4random, which glibc has had only since 2.36."""
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        unavailable("no C compiler")
    source = tmp_path / "probe.c"
    source.write_text("#include <stdlib.h>\nunsigned int probe(void) { return arc4random(); }\n")
    subprocess.run(
        [str(compiler), "-shared", "-fPIC", "-o", str(tmp_path / "probe.so"), str(source)],
        check=True,
        capture_output=True,
    )
    data = (tmp_path / "probe.so").read_bytes()
    if b"GLIBC_2.36" not in data:
        pytest.skip("this machine's glibc predates 2.36: cannot make a too-new extension here")
    return data


def test_an_extension_needing_a_newer_glibc_than_lambdas_is_refused(tmp_path: Path) -> None:
    name = "streamkit/codec/_native_deserializer.cpython-312-x86_64-linux-gnu.so"
    with pytest.raises(lambda_codec.PlatformPolicyError) as refused:
        lambda_codec.audit({name: _glibc_236_library(tmp_path)}, "python3.12", "x86_64")
    message = str(refused.value)
    assert "manylinux_2_34_x86_64" in message
    assert "GLIBC_2.36" in message
    assert "Amazon Linux 2023" in message


def test_build_lambda_refuses_to_ship_it(tmp_path: Path) -> None:
    """The whole command: a compiled artifact that Lambda could not load makes it fail (exit
    status 2) and write no zip. The artifact is put where the compile would have left it."""
    _python("python3.12")
    cache = tmp_path / "cache"
    os.environ[lambda_codec.CACHE_ENV] = str(cache)
    try:
        found = lambda_codec.cache_slot("python3.12", "x86_64")
    finally:
        del os.environ[lambda_codec.CACHE_ENV]
    assert found is not None
    _, slot = found
    slot.mkdir(parents=True)
    (slot / "_native_deserializer.cpython-312-x86_64-linux-gnu.so").write_bytes(
        _glibc_236_library(tmp_path)
    )
    (slot / ".complete").write_text("compiled\n")
    out = tmp_path / "workflow.zip"
    done = _build(out, "--runtime", "python3.12", env={lambda_codec.CACHE_ENV: str(cache)})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Refusing to ship it" in done.stderr
    assert "manylinux_2_34_x86_64" in done.stderr
    assert not out.exists()


def test_a_runtime_without_an_interpreter_here_gets_pure_python_with_a_warning(
    tmp_path: Path,
) -> None:
    out = tmp_path / "workflow.zip"
    # A configured interpreter that is not CPython 3.13: the finder refuses it.
    done = _build(out, "--runtime", "python3.13", env={"STREAMKIT_PYTHON_PYTHON3_13": "/bin/false"})
    assert done.returncode == 0, done.stderr
    assert "warning" in done.stderr
    assert "STREAMKIT_PYTHON_PYTHON3_13" in done.stderr
    assert "pure-Python deserializer" in done.stderr
    assert "python3.13 x86_64, pure-Python deserializer" in done.stdout
    assert not [n for n in _names(out.read_bytes()) if n.endswith(".so")]


def test_the_default_runtime_is_the_one_the_terraform_declares() -> None:
    from scripts.build_lambda import declared_runtime

    assert declared_runtime() == "python3.12"


def test_terraform_declaring_two_runtimes_needs_an_explicit_one(tmp_path: Path) -> None:
    from scripts.build_lambda import declared_runtime

    (tmp_path / "a.tf").write_text('resource "x" "y" {\n  runtime = "python3.12"\n}\n')
    (tmp_path / "b.tf").write_text('variable "runtime" {\n  default = "python3.13"\n}\n')
    with pytest.raises(SystemExit, match="pass --runtime"):
        declared_runtime(tmp_path)
