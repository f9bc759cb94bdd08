"""Recent history of every mapping, sampled once a second: the sparklines and charts.

The runner keeps only totals; :class:`History` samples them (through the
:class:`~streamkit.console.runner_view.RunnerView`) on its own thread and keeps the last
``keep_s`` seconds per mapping, from which rates (records/s, invokes/s, errors/s), the
iterator-age series and its histogram are computed. Nothing is stored on disk.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streamkit.console.runner_view import MappingFigures, RunnerView

__all__ = ["AGE_BUCKETS_MS", "History", "Sample"]

# Upper bounds of the iterator-age histogram's buckets (ms); the last bucket is open-ended.
AGE_BUCKETS_MS = (10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


@dataclass(frozen=True)
class Sample:
    at: float  # epoch seconds
    counters: Mapping[str, int]
    iterator_age_ms: float | None


class History:
    """Samples every mapping's figures each ``interval_s``; thread-safe reads."""

    def __init__(
        self,
        view: RunnerView,
        *,
        interval_s: float = 1.0,
        keep_s: float = 600.0,
        rate_window_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.view = view
        self.interval_s = interval_s
        self.rate_window_s = rate_window_s
        self._clock = clock
        self._maxlen = max(2, int(keep_s / interval_s) + 1)
        self._samples: dict[str, deque[Sample]] = {}
        self._latest: list[MappingFigures] = []
        self._previous_round: float | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="console-history", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.sample()
            except Exception:  # a sampling hiccup must not end the console's history
                continue

    def sample(self) -> list[MappingFigures]:
        """Take one sample of every mapping now (also called by the loop); returns them."""
        figures = self.view.figures()
        now = self._clock()
        with self._lock:
            self._latest = figures
            alive = set()
            for f in figures:
                alive.add(f.uuid)
                series = self._samples.get(f.uuid)
                if series is None:
                    series = self._samples[f.uuid] = deque(maxlen=self._maxlen)
                    if self._previous_round is not None:
                        # New since the last round: the runner created its counters at zero
                        # in between, so that is the baseline (else a burst handled before
                        # this first look would never show as a rate).
                        series.append(Sample(self._previous_round, {}, None))
                series.append(Sample(now, dict(f.counters), f.iterator_age_ms))
            for gone in set(self._samples) - alive:
                del self._samples[gone]
            self._previous_round = now
        return figures

    def latest(self) -> list[MappingFigures]:
        with self._lock:
            return list(self._latest)

    def samples(self, uuid: str) -> list[Sample]:
        with self._lock:
            return list(self._samples.get(uuid, ()))

    def rate(self, uuid: str, counter: str) -> float:
        """``counter``'s increase per second over the last ``rate_window_s`` seconds."""
        series = self.samples(uuid)
        if len(series) < 2:
            return 0.0
        last = series[-1]
        times = [s.at for s in series]
        first = series[max(0, bisect.bisect_left(times, last.at - self.rate_window_s) - 1)]
        if last.at <= first.at:
            return 0.0
        delta = last.counters.get(counter, 0) - first.counters.get(counter, 0)
        return max(0.0, delta / (last.at - first.at))

    def series(self, uuid: str) -> dict[str, list[Any]]:
        """Per-interval series for charts: ``t`` (epoch s), ``records_per_s``,
        ``invocations_per_s``, ``errors_per_s``, ``records_per_invoke`` and
        ``iterator_age_ms`` (None where unknown)."""
        out: dict[str, list[Any]] = {
            "t": [],
            "records_per_s": [],
            "invocations_per_s": [],
            "errors_per_s": [],
            "records_per_invoke": [],
            "iterator_age_ms": [],
        }
        series = self.samples(uuid)
        for before, after in itertools.pairwise(series):
            span = after.at - before.at
            if span <= 0:
                continue

            def delta(name: str, a: Sample = after, b: Sample = before) -> int:
                return max(0, a.counters.get(name, 0) - b.counters.get(name, 0))

            invokes = delta("invoked")
            delivered = delta("polled") - delta("filtered")
            out["t"].append(round(after.at, 3))
            out["records_per_s"].append(round(delta("polled") / span, 2))
            out["invocations_per_s"].append(round(invokes / span, 2))
            out["errors_per_s"].append(round(delta("failed") / span, 2))
            out["records_per_invoke"].append(round(delivered / invokes, 2) if invokes else None)
            out["iterator_age_ms"].append(after.iterator_age_ms if invokes else None)
        return out

    def age_histogram(self, uuid: str) -> list[dict[str, Any]]:
        """How often each iterator-age bucket was seen, one observation per interval in which
        the mapping invoked its function (the age is that of the newest record of the last
        invoke: the change-to-handler latency)."""
        counts = [0] * (len(AGE_BUCKETS_MS) + 1)
        ages = [a for a in self.series(uuid)["iterator_age_ms"] if a is not None]
        for age in ages:
            counts[bisect.bisect_left(AGE_BUCKETS_MS, age)] += 1
        return [
            {"le_ms": bound, "count": count}
            for bound, count in zip([*AGE_BUCKETS_MS, None], counts, strict=True)
        ]


def sparkline(values: Sequence[float | None], points: int = 60) -> list[float | None]:
    """The last ``points`` values (the overview's sparklines)."""
    return list(values[-points:])
