"""Ratio benchmarks: streamkit against boto3 / Powertools anchors, measured side by side.

Run ``python -m benchmarks`` (every ``bench_*.py`` module) or ``python -m benchmarks codec
batch`` (a selection). Each module has a ``main() -> bool`` that prints its table and returns
whether every target was met.

The machine is noisy (2 cores, other work running), so absolute times mean little. What is
reported is the *ratio* anchor time / streamkit time, from the two measured in the same run,
interleaved call by call (alternating which goes first), with the garbage collector off
while a case is timed (objects that exist beforehand are frozen, so no collection walks the
input), as ``timeit`` does. A case made with ``collector=True`` is timed with the collector on
and nothing frozen instead: that is how a Lambda function runs, and what a library does to
the collector's work (creating objects it must traverse, or sparing it that) then counts. Both the minimum (the least disturbed call) and the median are shown; PASS/FAIL uses
the ratio of the minima. CPU-bound cases should use ``clock=time.process_time`` (CPU time of
this process, which other processes on the machine disturb less); anything that waits on
I/O or on another process must keep the default wall clock.

Helpers for bench modules:

- ``Case``: one comparison (two zero-argument callables doing the same work).
- ``measure(case)``: time it, returning a ``Result``.
- ``run_cases(title, cases)``: measure several and print the table.
- ``tests.helpers.stream_data``: deterministic stream events and items (shared with the tests).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Case", "Result", "measure", "print_table", "run_cases"]

# Each case gets about this much wall time, split between both sides.
DEFAULT_SECONDS_PER_CASE = 3.0
MIN_REPEATS = 5
MAX_REPEATS = 41


@dataclass(frozen=True)
class Case:
    """``ours`` and ``anchor`` each process ``records`` records once per call."""

    name: str
    ours: Callable[[], object]
    anchor: Callable[[], object]
    anchor_name: str
    records: int
    target: float | None  # required anchor/ours speed ratio; None means informational
    clock: Callable[[], float] = time.perf_counter
    collector: bool = False  # time with the cyclic GC on, as on Lambda (see the module doc)


@dataclass(frozen=True)
class Result:
    case: Case
    ours: list[float]  # seconds per call
    anchor: list[float]

    def _per_record_us(self, seconds: float) -> float:
        return seconds / self.case.records * 1e6

    @property
    def ours_us(self) -> float:
        return self._per_record_us(min(self.ours))

    @property
    def anchor_us(self) -> float:
        return self._per_record_us(min(self.anchor))

    @property
    def ratio(self) -> float:
        """anchor / ours from the fastest call of each: the least disturbed measurement."""
        return min(self.anchor) / min(self.ours)

    @property
    def median_ratio(self) -> float:
        return statistics.median(self.anchor) / statistics.median(self.ours)

    @property
    def passed(self) -> bool | None:
        return None if self.case.target is None else self.ratio >= self.case.target


def _time_call(fn: Callable[[], object], clock: Callable[[], float]) -> float:
    start = clock()
    fn()
    return clock() - start


def measure(case: Case, *, seconds: float = DEFAULT_SECONDS_PER_CASE) -> Result:
    """Time both sides alternately; the repeat count is fitted to ``seconds``."""
    gc.collect()
    if not case.collector:
        gc.freeze()
        gc.disable()
    try:
        warm = _time_call(case.ours, time.perf_counter) + _time_call(case.anchor, time.perf_counter)
        repeats = max(MIN_REPEATS, min(MAX_REPEATS, int(seconds / max(warm, 1e-9))))
        ours: list[float] = []
        anchor: list[float] = []
        for i in range(repeats):
            if i % 2:
                anchor.append(_time_call(case.anchor, case.clock))
                ours.append(_time_call(case.ours, case.clock))
            else:
                ours.append(_time_call(case.ours, case.clock))
                anchor.append(_time_call(case.anchor, case.clock))
    finally:
        if not case.collector:
            gc.enable()
            gc.unfreeze()
    return Result(case, ours, anchor)


def print_table(title: str, results: Sequence[Result]) -> None:
    header = (
        f"{'case':<44} {'streamkit':>12} {'anchor':>12}  {'anchor is':<24}"
        f" {'ratio':>6} {'median':>6} {'target':>6}  verdict"
    )
    print(f"\n{title}\n{header}\n{'-' * len(header)}")
    for r in results:
        target = "-" if r.case.target is None else f"{r.case.target:.1f}x"
        verdict = {True: "PASS", False: "FAIL", None: "info"}[r.passed]
        print(
            f"{r.case.name:<44} {r.ours_us:>9.2f} us {r.anchor_us:>9.2f} us  "
            f"{r.case.anchor_name:<24} {r.ratio:>5.2f}x {r.median_ratio:>5.2f}x {target:>6}  "
            f"{verdict}"
        )
    clocks = sorted({r.case.clock.__name__ for r in results})
    print(
        "(times are per record, fastest of the interleaved calls, by "
        f"{' / '.join(clocks)}; ratio = anchor / streamkit)"
    )


def run_cases(
    title: str, cases: Sequence[Case], *, seconds: float = DEFAULT_SECONDS_PER_CASE
) -> bool:
    """Measure and print ``cases``; True when every case with a target met it."""
    results = [measure(case, seconds=seconds) for case in cases]
    print_table(title, results)
    return all(r.passed is not False for r in results)
