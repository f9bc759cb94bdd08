"""The codec's compiled deserializer, built for a Lambda Python runtime, for deployment zips.

``build_lambda.py --runtime python3.12`` ships ``_native_deserializer`` compiled by mypyc for
CPython 3.12 on a platform Lambda accepts, so functions run the fast path. What happens:

1. find that runtime's interpreter (``streamkit.local.interpreters``: a configured
   ``STREAMKIT_PYTHON_PYTHON3_12``, ``python3.12`` on PATH, or pyenv). None here: warn and
   ship pure Python (same results, slower decoding);
2. compile with mypyc under that interpreter, in a toolchain venv kept in
   ``build/lambda-toolchains/`` (mypy pinned to the version this environment has, so the
   generated C does not drift), the way ``hatch_build.py`` compiles for wheels;
3. check the extension with ``auditwheel show --json`` against the manylinux policy of the
   runtime's operating system, and refuse (``PlatformPolicyError``) to ship one that needs
   more, e.g. a newer glibc symbol than Lambda's has;
4. keep the result in ``build/lambda-codec/<runtime>-<arch>/<key>/``, the key a digest of
   everything that goes into the compile, so a rebuild with the same inputs is instant and
   gives the same bytes.

The compile is reproducible (checked by tests/e2e/test_lambda_codec.py): no debug info, and
sources compiled from a scratch copy under relative paths, so neither the scratch directory
nor the checkout's location ends up in the binary.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from streamkit.local.interpreters import (
    Interpreter,
    InterpreterNotFoundError,
    find_interpreter,
)

REPO = Path(__file__).resolve().parents[1]
BUILD_DIR = REPO / "build"
TOOLCHAIN_DIR = BUILD_DIR / "lambda-toolchains"
# Where compiled artifacts are kept; tests point it at a scratch directory.
CACHE_ENV = "STREAMKIT_LAMBDA_CODEC_CACHE"
PACKAGE_SRC = REPO / "src" / "streamkit"
NATIVE_MODULE = "streamkit/codec/_native_deserializer.py"
RUNTIMES = ("python3.11", "python3.12", "python3.13")
ARCHITECTURES = ("x86_64", "arm64")
_MACHINE = {"x86_64": "x86_64", "arm64": "aarch64"}  # Lambda's names -> ELF/platform names

# The operating system under each Lambda Python runtime, and the newest glibc it has: an
# extension must satisfy the manylinux policy of that glibc. python3.11 runs on Amazon Linux 2
# (glibc 2.26), python3.12 and python3.13 on Amazon Linux 2023 (glibc 2.34); see "Supported
# runtimes" in https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html
RUNTIME_GLIBC: dict[str, tuple[str, tuple[int, int]]] = {
    "python3.11": ("Amazon Linux 2", (2, 26)),
    "python3.12": ("Amazon Linux 2023", (2, 34)),
    "python3.13": ("Amazon Linux 2023", (2, 34)),
}

# Bumped when the way the artifact is made changes without any input file changing.
_RECIPE = "1"


class NativeCodecWarning(UserWarning):
    """The zip gets the pure-Python deserializer: no interpreter or compiler for the target."""


class PlatformPolicyError(RuntimeError):
    """The compiled extension needs more than the Lambda runtime's platform provides."""


class CompileError(RuntimeError):
    """The toolchain or mypyc failed; carries their output."""


@dataclass(frozen=True)
class CompiledCodec:
    """The compiled deserializer for one runtime: ``{"streamkit/codec/<file>.so": bytes}``."""

    runtime: str
    arch: str
    files: dict[str, bytes]
    platform_tag: str  # what auditwheel found the extension consistent with
    cached: bool


def manylinux_policy(runtime: str, arch: str) -> str:
    """``manylinux_2_34_x86_64`` for python3.12 on x86_64."""
    _, (major, minor) = RUNTIME_GLIBC[runtime]
    return f"manylinux_{major}_{minor}_{_MACHINE[arch]}"


def _hatch_build() -> ModuleType:
    """The build hook module (repository root), for its mypyc compile step."""
    spec = importlib.util.spec_from_file_location("_streamkit_hatch_build", REPO / "hatch_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(command: list[str], what: str) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=900)
    if done.returncode != 0:
        raise CompileError(f"{what} failed:\n{(done.stdout + done.stderr).strip()[-4000:]}")
    return done.stdout


@contextlib.contextmanager
def _exclusive(directory: Path) -> Iterator[None]:
    """Holds ``<directory>.lock`` while ``directory`` is (re)made. Builds run side by side
    (parallel test workers, a ``make lambdas`` during a load test): without it one would
    delete the toolchain or compile slot another is still filling. The lock is released by
    the kernel if the holder dies; the ``.ready``/``.complete`` markers then say whether the
    directory is usable."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.with_name(directory.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _toolchain(interpreter: Interpreter, mypy_version: str) -> Path:
    """A venv of ``interpreter`` with mypy (mypyc) and setuptools; made once, then reused."""
    venv = TOOLCHAIN_DIR / f"{interpreter.runtime}-mypy{mypy_version}"
    python = venv / "bin" / "python"
    ready = venv / ".ready"
    if ready.exists() and python.exists():
        return python
    with _exclusive(venv):
        if ready.exists() and python.exists():  # another process made it while we waited
            return python
        shutil.rmtree(venv, ignore_errors=True)
        _run([interpreter.executable, "-m", "venv", str(venv)], f"creating {venv}")
        _run(
            [str(python), "-m", "pip", "install", "-q", f"mypy=={mypy_version}", "setuptools>=68"],
            f"installing mypy {mypy_version} for {interpreter.runtime}",
        )
        ready.write_text(interpreter.executable + "\n")
    return python


def _source_files() -> dict[str, bytes]:
    """The streamkit sources mypyc reads: the module it compiles and what it imports."""
    return {
        f"streamkit/{path.relative_to(PACKAGE_SRC).as_posix()}": path.read_bytes()
        for path in sorted(PACKAGE_SRC.rglob("*.py"))
        if "__pycache__" not in path.parts
    }


def _c_compiler(toolchain: Path) -> str | None:
    """The C compiler setuptools will use for ``toolchain``'s interpreter, if it is here."""
    configured = _run(
        [str(toolchain), "-c", "import sysconfig; print(sysconfig.get_config_var('CC') or 'cc')"],
        "asking for the C compiler",
    ).split()
    return shutil.which(configured[0]) if configured else None


def _cache_key(toolchain: Path, compiler: str, mypy_version: str, runtime: str, arch: str) -> str:
    """Digest of every input of the compile: sources, compile script, compiler, interpreter."""
    digest = hashlib.sha256()
    version = _run([str(toolchain), "-c", "import sys; print(sys.version)"], "asking the version")
    compiler_version = _run([compiler, "--version"], "asking the C compiler's version")
    for part in (_RECIPE, runtime, arch, version, mypy_version, compiler_version.splitlines()[0]):
        digest.update(part.encode() + b"\0")
    digest.update((REPO / "hatch_build.py").read_bytes())
    for name, content in _source_files().items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()[:24]


def _compile(toolchain: Path, out: Path) -> None:
    """mypyc-compile the native deserializer with ``toolchain``; the extensions into ``out``."""
    hatch_build = _hatch_build()
    with tempfile.TemporaryDirectory(prefix="streamkit-lambda-codec-") as scratch_name:
        scratch = Path(scratch_name)
        # A scratch copy, compiled under relative paths: the binary records the path it was
        # compiled from (for tracebacks), and that must not depend on where this runs.
        for name, content in _source_files().items():
            target = scratch / "src" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        try:
            built = hatch_build.compile_native(
                Path("src") / NATIVE_MODULE, scratch, python=str(toolchain), reproducible=True
            )
        except hatch_build.NativeBuildError as error:
            raise CompileError(f"mypyc failed:\n{error}") from error
        out.mkdir(parents=True, exist_ok=True)
        for relative in built:
            shutil.copyfile(scratch / "lib" / relative, out / relative.name)


def audit(files: dict[str, bytes], runtime: str, arch: str) -> str:
    """The platform tag auditwheel finds ``files`` consistent with; PlatformPolicyError when
    that is not within the runtime's manylinux policy (or the extension is for another CPU).

    auditwheel inspects wheels, so the files are put in a throwaway one; ``show --json``
    reports the most compatible tag and what keeps it from a better one.
    """
    wanted = manylinux_policy(runtime, arch)
    _, glibc = RUNTIME_GLIBC[runtime]
    tag = "cp" + runtime.removeprefix("python").replace(".", "")
    with tempfile.TemporaryDirectory(prefix="streamkit-audit-") as scratch:
        wheel = Path(scratch) / f"streamkit_codec-0-{tag}-{tag}-linux_{_MACHINE[arch]}.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            for name, content in files.items():
                archive.writestr(name, content)
            info = "streamkit_codec-0.dist-info"
            archive.writestr(
                f"{info}/METADATA", "Metadata-Version: 2.1\nName: streamkit-codec\nVersion: 0\n"
            )
            archive.writestr(
                f"{info}/WHEEL",
                f"Wheel-Version: 1.0\nGenerator: streamkit\nRoot-Is-Purelib: false\nTag: {tag}-{tag}-linux_{_MACHINE[arch]}\n",
            )  # fmt: skip
            # auditwheel finds the files to inspect through RECORD.
            record = "".join(f"{name},,\n" for name in files)
            archive.writestr(f"{info}/RECORD", record + f"{info}/RECORD,,\n")
        done = subprocess.run(
            [sys.executable, "-m", "auditwheel", "show", "--json", str(wheel)],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
    try:
        report = json.loads(done.stdout)
    except json.JSONDecodeError:
        report = {"error": (done.stdout + done.stderr).strip()[-2000:]}
    if "error" in report or done.returncode != 0:
        raise PlatformPolicyError(
            f"auditwheel could not place the compiled codec for {runtime} on {arch} on any "
            f"manylinux platform ({report.get('error', 'no report')}); refusing to ship it."
        )
    found = str(report["overall_tag"])
    parts = found.split("_")
    fits = (
        found.startswith("manylinux_")
        and found.endswith(_MACHINE[arch])
        and (int(parts[1]), int(parts[2])) <= glibc
    )
    if not fits:
        os_name, _ = RUNTIME_GLIBC[runtime]
        symbols = report.get("versioned_symbols", {})
        raise PlatformPolicyError(
            f"the compiled codec for {runtime} ({os_name}, glibc {glibc[0]}.{glibc[1]}) must "
            f"satisfy {wanted}, but auditwheel finds it needs {found} "
            f"(versioned symbols: {symbols}; external libraries: "
            f"{sorted(report.get('external_libs', {}))}). Refusing to ship it: build on an "
            "older platform (e.g. a manylinux_2_28 or Amazon Linux container), or pass --pure "
            "to ship the pure-Python deserializer."
        )
    return found


def _read(directory: Path) -> dict[str, bytes]:
    return {
        f"streamkit/codec/{path.name}": path.read_bytes()
        for path in sorted(directory.iterdir())
        if path.suffix == ".so"
    }


def _fall_back(message: str) -> None:
    warnings.warn(
        f"{message}; the zip gets the pure-Python deserializer (same results, slower decoding)",
        NativeCodecWarning,
        stacklevel=3,
    )


def cache_slot(runtime: str, arch: str = "x86_64") -> tuple[Path, Path] | None:
    """``(toolchain python, cache directory)`` for the compiled codec of ``runtime``, making
    the toolchain if needed; None (with a NativeCodecWarning) where this machine cannot
    compile for it."""
    if runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, got {arch!r}")
    import platform

    if platform.machine() != _MACHINE[arch]:
        _fall_back(f"cannot compile the codec for {arch} on this {platform.machine()} machine")
        return None
    try:
        interpreter = find_interpreter(runtime)
    except InterpreterNotFoundError as error:
        _fall_back(str(error).rstrip("."))
        return None
    mypy_version = importlib.metadata.version("mypy")
    toolchain = _toolchain(interpreter, mypy_version)
    compiler = _c_compiler(toolchain)
    if compiler is None:
        _fall_back(f"no C compiler to build the codec for {runtime}")
        return None
    key = _cache_key(toolchain, compiler, mypy_version, runtime, arch)
    cache = Path(os.environ.get(CACHE_ENV) or BUILD_DIR / "lambda-codec")
    return toolchain, cache / f"{runtime}-{arch}" / key


def compiled_codec(runtime: str, arch: str = "x86_64") -> CompiledCodec | None:
    """The compiled deserializer for ``runtime`` on ``arch``, checked for Lambda's platform.

    None, with a NativeCodecWarning, when this machine cannot build it (no interpreter for
    the runtime, another CPU architecture, no C compiler). Raises PlatformPolicyError when
    what it has is not fit for Lambda, CompileError when the toolchain fails.
    """
    found = cache_slot(runtime, arch)
    if found is None:
        return None
    toolchain, slot = found
    cached = (slot / ".complete").exists()
    if not cached:
        with _exclusive(slot):
            cached = (slot / ".complete").exists()  # compiled by another build while we waited
            if not cached:
                shutil.rmtree(slot, ignore_errors=True)
                _compile(toolchain, slot)
                (slot / ".complete").write_text("compiled\n")
    files = _read(slot)
    # Checked on every build, cached or not: the policy is about what ships.
    tag = audit(files, runtime, arch)
    return CompiledCodec(runtime, arch, files, tag, cached)
