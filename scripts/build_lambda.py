#!/usr/bin/env python3
"""Build a Lambda deployment zip: handler sources plus the streamkit package.

Terraform's archive provider is not available on every machine, so deployment zips are built
by this script. The zip is deterministic (sorted entries, fixed timestamps, a reproducible
compile), so unchanged inputs give the same CodeSha256 and Terraform plans stay clean.

    python scripts/build_lambda.py handlers/order_events -o build/order_events.zip
    python scripts/build_lambda.py --all -o build/        # every function in handlers/

A function directory is one with an ``app.py``. Its sibling directories that are Python
packages without one (``handlers/orderplatform``: code the functions share) are bundled into
its zip too, as top-level packages, so that ``import orderplatform`` works in Lambda.

The zip carries the codec's compiled deserializer built for ``--runtime`` (default: the
runtime the Terraform modules declare) and checked against that runtime's manylinux policy
(``lambda_codec.py``): functions on Lambda run the fast path. Where this machine has no
interpreter for the runtime, the zip gets the pure-Python deserializer, with a warning;
``--pure`` asks for that explicitly. A compiled module Lambda's platform could not load is
refused (exit status 2), never shipped.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE_DIR = REPO / "src" / "streamkit"
TERRAFORM_MODULES = REPO / "terraform" / "modules"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache"}
# Bytecode, and the codec's compiled deserializer that an editable install leaves in src/:
# that one is built for this machine's interpreter, not necessarily the Lambda runtime's.
# The zip gets one compiled for its runtime instead (build_zip's ``native``).
_SKIP_SUFFIXES = {".pyc", ".pyo", ".so", ".pyd", ".source-sha256"}


def _tree(root: Path, prefix: str) -> Iterable[tuple[str, bytes]]:
    for path in sorted(root.rglob("*")):
        if not path.is_file() or _SKIP_DIRS.intersection(path.parts):
            continue
        if path.suffix in _SKIP_SUFFIXES:
            continue
        yield f"{prefix}{path.relative_to(root).as_posix()}", path.read_bytes()


def streamkit_package_files() -> dict[str, bytes]:
    """Every file of the streamkit package, as ``{"streamkit/...": bytes}``."""
    if not (PACKAGE_DIR / "__init__.py").is_file():
        raise FileNotFoundError(f"streamkit package not found at {PACKAGE_DIR}")
    return dict(_tree(PACKAGE_DIR, "streamkit/"))


def build_zip(
    files: Mapping[str, str | bytes],
    *,
    include_streamkit: bool = True,
    native: Mapping[str, bytes] | None = None,
) -> bytes:
    """A deterministic zip of ``files`` (name -> content), plus streamkit unless told not to.

    ``native``: the compiled deserializer's files (``lambda_codec.compiled_codec(...).files``)
    to ship beside the package; without them the zip runs the pure-Python deserializer.
    """
    entries: dict[str, bytes] = streamkit_package_files() if include_streamkit else {}
    if native and include_streamkit:
        entries.update(native)
    for name, content in files.items():
        entries[name] = content.encode() if isinstance(content, str) else content
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name])
    return buffer.getvalue()


def is_function_dir(path: Path) -> bool:
    return path.is_dir() and (path / "app.py").is_file()


def shared_packages(source: Path) -> list[Path]:
    """The sibling directories of ``source`` that are shared packages (``__init__.py``, no
    ``app.py``)."""
    parent = source.resolve().parent
    return [
        path
        for path in sorted(parent.iterdir())
        if path.is_dir() and (path / "__init__.py").is_file() and not (path / "app.py").exists()
    ]


def build_from_directory(
    source: Path, *, include_streamkit: bool = True, native: Mapping[str, bytes] | None = None
) -> bytes:
    if not source.is_dir():
        raise NotADirectoryError(f"handler source directory not found: {source}")
    files: dict[str, bytes] = {}
    for package in shared_packages(source):
        files.update(_tree(package, f"{package.name}/"))
    files.update(_tree(source, ""))
    return build_zip(files, include_streamkit=include_streamkit, native=native)


def function_dirs(root: Path) -> list[Path]:
    """The function directories under ``root`` (``handlers/``), sorted by name."""
    return [path for path in sorted(root.iterdir()) if is_function_dir(path)]


_RUNTIME_SETTING = re.compile(r'^\s*(?:runtime|default)\s*=\s*"(python3\.\d+)"', re.MULTILINE)


def declared_runtime(modules: Path = TERRAFORM_MODULES) -> str:
    """The Python runtime the Terraform modules declare (``runtime = "python3.12"`` and the
    ``runtime`` variable's default); an error when they disagree or declare none."""
    found = {
        match.group(1)
        for path in sorted(modules.rglob("*.tf"))
        for match in _RUNTIME_SETTING.finditer(path.read_text())
    }
    if len(found) != 1:
        raise SystemExit(
            f"cannot tell which Python runtime {modules} declares (found: {sorted(found) or 'none'});"
            " pass --runtime"
        )
    return found.pop()


def _codec():  # type: ignore[no-untyped-def]
    """lambda_codec, imported as this module was (``scripts.build_lambda`` or a script)."""
    try:
        from scripts import lambda_codec
    except ImportError:  # run as a script, or imported with scripts/ on sys.path
        import lambda_codec  # type: ignore[no-redef]
    return lambda_codec


def native_files(runtime: str, arch: str = "x86_64") -> dict[str, bytes]:
    """The compiled deserializer for ``runtime``, or ``{}`` (with a warning) where this
    machine cannot build it. Raises ``lambda_codec.PlatformPolicyError`` for one Lambda could
    not load."""
    compiled = _codec().compiled_codec(runtime, arch)
    return {} if compiled is None else compiled.files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument(
        "source", type=Path, nargs="?", help="directory holding the handler modules"
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help="zip file to write (a directory with --all)",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="build <output>/<name>.zip for every function directory in handlers/ (or SOURCE)",
    )
    parser.add_argument(
        "--no-streamkit", action="store_true", help="do not bundle the streamkit package"
    )
    parser.add_argument(
        "--runtime",
        choices=("python3.11", "python3.12", "python3.13"),
        help="Lambda runtime to compile the codec for (default: the one terraform/modules declares)",
    )
    parser.add_argument("--arch", choices=("x86_64", "arm64"), default="x86_64")
    parser.add_argument(
        "--pure", action="store_true", help="ship the pure-Python deserializer only"
    )
    args = parser.parse_args(argv)
    if not args.all and args.source is None:
        parser.error("give a handler directory, or --all")
    native: dict[str, bytes] = {}
    runtime = args.runtime or declared_runtime()
    if not (args.pure or args.no_streamkit):
        codec = _codec()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", codec.NativeCodecWarning)
            try:
                native = native_files(runtime, args.arch)
            except codec.PlatformPolicyError as error:
                print(f"build_lambda: {error}", file=sys.stderr)
                return 2
            except codec.CompileError as error:
                print(f"build_lambda: compiling the codec for {runtime}: {error}", file=sys.stderr)
                return 2
        for warning in caught:
            print(f"build_lambda: warning: {warning.message}", file=sys.stderr)
    walker = "compiled" if native else "pure-Python"
    if args.all:
        root = args.source or Path(__file__).resolve().parents[1] / "handlers"
        targets = [
            (function, args.output / f"{function.name}.zip") for function in function_dirs(root)
        ]
    else:
        targets = [(args.source, args.output)]
    for function, target in targets:
        data = build_from_directory(
            function, include_streamkit=not args.no_streamkit, native=native
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        print(f"{target}: {len(data)} bytes, {runtime} {args.arch}, {walker} deserializer")
    return 0


if __name__ == "__main__":
    sys.exit(main())
