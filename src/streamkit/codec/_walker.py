"""Which fast deserializer the codec runs: the compiled one when it is there and current.

``_native_deserializer`` compiled by mypyc (wheels and ``make`` builds, see ``hatch_build.py``)
is about 1.5x faster than ``_fast_deserializer``, the pure-Python walker. Both return the same
values and both leave anything unusual to the checked walker, so the choice changes speed,
never results. The pure walker is used when:

- ``STREAMKIT_PURE_PYTHON`` is set (to anything but ``0``/``false``/``no``);
- the compiled module is absent (no compiler at build time, or a Lambda zip of sources), or
  cannot be loaded (built for another interpreter or platform);
- the compiled module is stale: an editable install records the digest of the source it
  compiled, and an edited source must not be shadowed by its old build (this warns).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PURE_PYTHON_ENV = "STREAMKIT_PURE_PYTHON"
NATIVE_MODULE = "streamkit.codec._native_deserializer"
DIGEST_SUFFIX = ".source-sha256"  # written by hatch_build.py next to the source


class StaleNativeBuildWarning(RuntimeWarning):
    """The compiled deserializer was built from an older source; the pure one runs instead."""


@dataclass(frozen=True)
class Deserializer:
    """The fast deserializer in use, and its table of remembered short numbers."""

    decimal_map: Callable[[Any], Any]
    map_for: Callable[[str], Callable[[Any], Any]]
    remembered_numbers: Callable[[], int]
    forget_numbers: Callable[[], None]
    compiled: bool


def deserializer_from_module(module: Any, compiled: bool) -> Deserializer:
    return Deserializer(
        decimal_map=module.fast_decimal_map,
        map_for=module.fast_map_for,
        remembered_numbers=module.remembered_numbers,
        forget_numbers=module.forget_numbers,
        compiled=compiled,
    )


def pure_python_deserializer() -> Deserializer:
    from streamkit.codec import _fast_deserializer

    return deserializer_from_module(_fast_deserializer, compiled=False)


def _pure_python_requested() -> bool:
    value = os.environ.get(PURE_PYTHON_ENV, "").strip().lower()
    return value not in ("", "0", "false", "no")


def stale_reason(compiled_file: Path) -> str | None:
    """Why a compiled module next to its source no longer matches it, or None."""
    source = compiled_file.parent / (NATIVE_MODULE.rsplit(".", 1)[1] + ".py")
    digest_file = source.with_name(source.name + DIGEST_SUFFIX)
    if not digest_file.exists():
        return None  # an installed wheel: built and shipped together
    import hashlib

    recorded = digest_file.read_text().strip()
    try:
        current = hashlib.sha256(source.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None
    if current == recorded:
        return None
    return (
        f"{compiled_file.name} was compiled from an older {source.name}; using the pure-Python "
        "deserializer. Rebuild with `make venv` (or `pip install -e .`)."
    )


def load_deserializer() -> Deserializer:
    """The compiled deserializer if it can be used, else the pure-Python one."""
    if _pure_python_requested():
        return pure_python_deserializer()
    spec = importlib.util.find_spec(NATIVE_MODULE)
    origin = spec.origin if spec is not None else None
    if origin is None or origin.endswith(".py"):
        return pure_python_deserializer()  # not compiled for this interpreter
    reason = stale_reason(Path(origin))
    if reason is not None:
        warnings.warn(reason, StaleNativeBuildWarning, stacklevel=2)
        return pure_python_deserializer()
    try:
        module = importlib.import_module(NATIVE_MODULE)
    except ImportError:
        return pure_python_deserializer()  # built for another platform or interpreter
    return deserializer_from_module(module, compiled=True)
