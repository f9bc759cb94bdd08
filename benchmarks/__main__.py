"""``python -m benchmarks [name ...]``: run every ``bench_<name>.py`` module, or the named ones.

Exits 1 when a benchmark missed a target, 2 when a name is unknown.
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time
from pathlib import Path

PREFIX = "bench_"


def available() -> list[str]:
    here = [str(Path(__file__).parent)]
    return sorted(
        m.name[len(PREFIX) :] for m in pkgutil.iter_modules(here) if m.name.startswith(PREFIX)
    )


def main(argv: list[str]) -> int:
    names = available()
    selected = [a.removeprefix(PREFIX).removesuffix(".py") for a in argv] or names
    unknown = [n for n in selected if n not in names]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(names)}")
        return 2
    failed = []
    for name in selected:
        module = importlib.import_module(f"benchmarks.{PREFIX}{name}")
        start = time.perf_counter()
        ok = module.main()
        print(f"[{name}: {time.perf_counter() - start:.1f} s]")
        if ok is False:
            failed.append(name)
    if failed:
        print(f"targets missed in: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
