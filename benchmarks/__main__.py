"""``python -m benchmarks [name ...]``: run every ``bench_<name>.py`` module, or the named ones.

With more than one module, each runs in its own interpreter (see ``main``).

Exits 1 when a benchmark missed a target, 2 when a name is unknown.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import time
from pathlib import Path

PREFIX = "bench_"


def available() -> list[str]:
    here = [str(Path(__file__).parent)]
    return sorted(
        m.name[len(PREFIX) :] for m in pkgutil.iter_modules(here) if m.name.startswith(PREFIX)
    )


def describe_build() -> str:
    """Which deserializer the figures are for: they differ by about 1.5x on decoding."""
    from streamkit import codec

    if codec.COMPILED:
        return "streamkit deserializer: compiled with mypyc (STREAMKIT_PURE_PYTHON=1 for the other)"
    return "streamkit deserializer: pure Python (no usable compiled build, or STREAMKIT_PURE_PYTHON set)"


def main(argv: list[str]) -> int:
    header = "--no-header" not in argv  # given to child runs by the parent
    argv = [a for a in argv if a != "--no-header"]
    names = available()
    selected = [a.removeprefix(PREFIX).removesuffix(".py") for a in argv] or names
    unknown = [n for n in selected if n not in names]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(names)}")
        return 2
    if header:
        print(describe_build(), flush=True)
    failed = []
    for name in selected:
        start = time.perf_counter()
        if len(selected) == 1:
            ok = importlib.import_module(f"benchmarks.{PREFIX}{name}").main() is not False
        else:
            # Each module in a fresh interpreter: a heap left fragmented by an earlier module
            # slows the memory-bound image walks by up to a fifth, so results would depend on
            # the order of the modules. Both sides of every ratio still share one process.
            child = subprocess.run(
                [sys.executable, "-m", "benchmarks", "--no-header", name], check=False
            )
            ok = child.returncode == 0
        if header:  # a child run leaves the summary lines to its parent
            print(f"[{name}: {time.perf_counter() - start:.1f} s]", flush=True)
        if not ok:
            failed.append(name)
    if failed and header:
        print(f"targets missed in: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
