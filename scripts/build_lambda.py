#!/usr/bin/env python3
"""Build a Lambda deployment zip: handler sources plus the streamkit package.

Terraform's archive provider is not available on every machine, so deployment zips are built
by this script. The zip is deterministic (sorted entries, fixed timestamps), so an unchanged
source tree gives the same CodeSha256 and Terraform plans stay clean.

    python scripts/build_lambda.py handlers/orders -o build/orders.zip
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


def build_from_directory(source: Path, *, include_streamkit: bool = True) -> bytes:
    if not source.is_dir():
        raise NotADirectoryError(f"handler source directory not found: {source}")
    return build_zip(dict(_tree(source, "")), include_streamkit=include_streamkit)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="directory holding the handler modules")
    parser.add_argument("-o", "--output", type=Path, required=True, help="zip file to write")
    parser.add_argument(
        "--no-streamkit", action="store_true", help="do not bundle the streamkit package"
    )
    args = parser.parse_args(argv)
    data = build_from_directory(args.source, include_streamkit=not args.no_streamkit)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    print(f"{args.output}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
