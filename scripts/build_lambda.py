#!/usr/bin/env python3
"""Build a Lambda deployment zip: handler sources plus the streamkit package.

Terraform's archive provider is not available on every machine, so deployment zips are built
by this script. The zip is deterministic (sorted entries, fixed timestamps), so an unchanged
source tree gives the same CodeSha256 and Terraform plans stay clean.

    python scripts/build_lambda.py handlers/order_events -o build/order_events.zip
    python scripts/build_lambda.py --all -o build/        # every function in handlers/

A function directory is one with an ``app.py``. Its sibling directories that are Python
packages without one (``handlers/orderplatform``: code the functions share) are bundled into
its zip too, as top-level packages, so that ``import orderplatform`` works in Lambda.
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / "streamkit"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SKIP_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache"}
# Bytecode, and the codec's compiled deserializer that an editable install leaves in src/:
# it is built for this machine's interpreter and platform, not necessarily the Lambda
# runtime's, and leaving it out keeps the zip (and its CodeSha256) the same on every machine.
# Without it the codec runs its pure-Python deserializer, with the same results.
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


def build_zip(files: Mapping[str, str | bytes], *, include_streamkit: bool = True) -> bytes:
    """A deterministic zip of ``files`` (name -> content), plus streamkit unless told not to."""
    entries: dict[str, bytes] = streamkit_package_files() if include_streamkit else {}
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


def build_from_directory(source: Path, *, include_streamkit: bool = True) -> bytes:
    if not source.is_dir():
        raise NotADirectoryError(f"handler source directory not found: {source}")
    files: dict[str, bytes] = {}
    for package in shared_packages(source):
        files.update(_tree(package, f"{package.name}/"))
    files.update(_tree(source, ""))
    return build_zip(files, include_streamkit=include_streamkit)


def function_dirs(root: Path) -> list[Path]:
    """The function directories under ``root`` (``handlers/``), sorted by name."""
    return [path for path in sorted(root.iterdir()) if is_function_dir(path)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    args = parser.parse_args(argv)
    if args.all:
        root = args.source or Path(__file__).resolve().parents[1] / "handlers"
        for function in function_dirs(root):
            target = args.output / f"{function.name}.zip"
            data = build_from_directory(function, include_streamkit=not args.no_streamkit)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            print(f"{target}: {len(data)} bytes")
        return 0
    if args.source is None:
        parser.error("give a handler directory, or --all")
    data = build_from_directory(args.source, include_streamkit=not args.no_streamkit)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    print(f"{args.output}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
