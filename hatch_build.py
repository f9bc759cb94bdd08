"""Hatch build hook: compile the codec's native deserializer with mypyc.

``src/streamkit/codec/_native_deserializer.py`` is plain, typed Python that mypyc turns into a
C extension about 1.5x faster than the best interpreted walker. The library never needs it:
when the compiled module is missing (or stale, see below) the codec uses its pure-Python
walker, which gives the same results.

``STREAMKIT_BUILD_NATIVE`` chooses what a build does:

- ``auto`` (default): compile when a C compiler is available; otherwise warn and build a
  pure-Python wheel, so ``pip install streamkit`` from the sdist works everywhere.
- ``require``: fail the build if the module cannot be compiled (``make`` and CI use this,
  so that tests and benchmarks never silently run the fallback).
- ``skip``: build a pure-Python wheel.

A standard wheel carries the extension (and is tagged for this interpreter and platform).
An editable install (``pip install -e .``) compiles into the source tree, next to the module,
and writes ``<module>.source-sha256``: the codec ignores a compiled module whose source has
changed since, so an edit is never shadowed by an old build.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

NATIVE_SOURCE = Path("src/streamkit/codec/_native_deserializer.py")
PACKAGE_ROOT = Path("src")
# Must match streamkit.codec._walker.DIGEST_SUFFIX, which reads the file (the build cannot
# import streamkit); tests/unit/test_codec_walker.py checks that an editable build has it.
DIGEST_SUFFIX = ".source-sha256"
DIGEST_FILE = NATIVE_SOURCE.with_name(NATIVE_SOURCE.name + DIGEST_SUFFIX)
EXTENSION_SUFFIXES = (".so", ".pyd")  # what a compiled module's file ends with
MODES = ("auto", "require", "skip")

# Run in a child process with a scratch working directory: mypyc and setuptools write build
# files and caches into it, and setuptools must not read this project's pyproject.toml.
_COMPILE_SCRIPT = """
import sys
from setuptools import setup
from mypyc.build import mypycify

source, c_dir, build_lib, build_temp, debug_level = sys.argv[1:6]
setup(
    name="streamkit-native-codec",
    # Only this module is compiled; the rest of streamkit is read for its types, and errors
    # there (e.g. boto3 missing from the build environment) are not this build's business.
    ext_modules=mypycify(
        ["--follow-imports=silent", source],
        opt_level="3",
        debug_level=debug_level,
        target_dir=c_dir,
    ),
    script_args=["build_ext", "--build-lib", build_lib, "--build-temp", build_temp],
)
"""


class NativeBuildError(RuntimeError):
    """mypyc or the C compiler failed; carries their output."""


def source_digest(source: Path) -> str:
    return hashlib.sha256(source.read_bytes()).hexdigest()


def compile_native(
    source: Path, scratch: Path, *, python: str = sys.executable, reproducible: bool = False
) -> list[Path]:
    """Compile ``source`` with mypyc; the extension files, relative to the build directory.

    mypyc makes two files for a module inside a package: the module itself and its
    ``<module>__mypyc`` runtime library. Both are returned and both must ship.

    ``python`` is the interpreter to compile for (it needs mypy and setuptools).
    ``reproducible`` (Lambda zips, scripts/lambda_codec.py) makes the same inputs give the same
    bytes: no debug info, build paths mapped away, and ``source`` taken relative to
    ``scratch`` (the caller copies the package there), since the binary records that path.
    """
    build_lib = scratch / "lib"
    env = None
    if reproducible:
        flags = f"-g0 -ffile-prefix-map={scratch}=."
        env = {**os.environ, "CFLAGS": f"{os.environ.get('CFLAGS', '')} {flags}".strip()}
    process = subprocess.run(
        [
            python,
            "-c",
            _COMPILE_SCRIPT,
            str(source if reproducible else source.resolve()),
            str(scratch / "c"),
            str(build_lib),
            str(scratch / "temp"),
            "0" if reproducible else "1",
        ],
        cwd=scratch,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if process.returncode != 0:
        raise NativeBuildError(process.stdout.strip()[-4000:])
    built = sorted(path for path in build_lib.rglob("*") if path.suffix in EXTENSION_SUFFIXES)
    if not built:
        raise NativeBuildError(f"mypyc reported success but built nothing:\n{process.stdout}")
    return [path.relative_to(build_lib) for path in built]


def in_place_artifacts(root: Path) -> list[Path]:
    """What an earlier editable build left next to the source."""
    # The module (<stem>.<tag>.so) and its runtime library (<stem>__mypyc.<tag>.so).
    found = [
        path
        for path in (root / NATIVE_SOURCE.parent).glob(f"{NATIVE_SOURCE.stem}*")
        if path.suffix in EXTENSION_SUFFIXES
    ]
    digest = root / DIGEST_FILE
    return [*found, digest] if digest.exists() else found


class NativeCodecBuildHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        mode = os.environ.get("STREAMKIT_BUILD_NATIVE", "auto").strip().lower() or "auto"
        if mode not in MODES:
            raise ValueError(
                f"STREAMKIT_BUILD_NATIVE must be one of {', '.join(MODES)}, got {mode!r}"
            )
        root = Path(self.root)
        editable = version == "editable"
        if editable:
            # A pure or failed rebuild must not leave an older compiled module in charge.
            for stale in in_place_artifacts(root):
                stale.unlink()
        if mode == "skip":
            return
        self._scratch = Path(tempfile.mkdtemp(prefix="streamkit-native-"))
        try:
            built = compile_native(root / NATIVE_SOURCE, self._scratch)
        except NativeBuildError as error:
            if mode == "require":
                raise
            sys.stderr.write(
                "streamkit: could not compile the native deserializer; building pure Python "
                "(same results, slower decoding). Set STREAMKIT_BUILD_NATIVE=require to make "
                f"this an error. mypyc said:\n{error}\n"
            )
            return
        if editable:
            for relative in built:
                shutil.copy2(self._scratch / "lib" / relative, root / PACKAGE_ROOT / relative)
            (root / DIGEST_FILE).write_text(source_digest(root / NATIVE_SOURCE) + "\n")
            return
        for relative in built:
            build_data["force_include"][str(self._scratch / "lib" / relative)] = relative.as_posix()
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        scratch = getattr(self, "_scratch", None)
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
