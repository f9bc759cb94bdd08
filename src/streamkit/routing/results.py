"""What a router did: per-record outcomes of every target, and counters for metrics.

One target's failure never hides another's result: every target of a record runs, and each
one's outcome (``succeeded``, ``failed`` with its error, or ``already_completed`` on a
redelivery) is kept here and counted per target.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from streamkit.batch import BatchResponse, BatchResult

__all__ = ["DispatchStats", "RecordOutcome", "RoutedBatch", "TargetOutcome", "TargetStats"]

TargetStatus = Literal["succeeded", "failed", "already_completed"]


@dataclass(slots=True)
class TargetOutcome:
    status: TargetStatus
    result: Any = None
    error: BaseException | None = None


@dataclass(slots=True)
class RecordOutcome:
    """One dispatched record: the routes it matched and what each target did, in run order."""

    sequence_number: str
    routes: list[str] = field(default_factory=list)
    targets: dict[str, TargetOutcome] = field(default_factory=dict)
    unmatched: bool = False

    @property
    def failed_targets(self) -> list[str]:
        return [name for name, o in self.targets.items() if o.status == "failed"]


@dataclass(slots=True)
class TargetStats:
    matched: int = 0
    succeeded: int = 0
    failed: int = 0
    already_completed: int = 0

    def add(self, other: TargetStats) -> None:
        self.matched += other.matched
        self.succeeded += other.succeeded
        self.failed += other.failed
        self.already_completed += other.already_completed


@dataclass(slots=True)
class DispatchStats:
    """Counters: records dispatched, records that matched no route, and per target."""

    records: int = 0
    unmatched: int = 0
    targets: dict[str, TargetStats] = field(default_factory=dict)

    def target(self, name: str) -> TargetStats:
        stats = self.targets.get(name)
        if stats is None:
            stats = self.targets[name] = TargetStats()
        return stats

    def add(self, other: DispatchStats) -> None:
        self.records += other.records
        self.unmatched += other.unmatched
        for name, stats in other.targets.items():
            self.target(name).add(stats)

    def as_dict(self) -> dict[str, Any]:
        """Plain counters, e.g. for an EMF metrics line or a log."""
        return {
            "records": self.records,
            "unmatched": self.unmatched,
            "targets": {
                name: {
                    "matched": s.matched,
                    "succeeded": s.succeeded,
                    "failed": s.failed,
                    "already_completed": s.already_completed,
                }
                for name, s in self.targets.items()
            },
        }


class CumulativeStats:
    """Counters over the life of a router (one execution environment); thread-safe."""

    def __init__(self) -> None:
        self._stats = DispatchStats()
        self._lock = threading.Lock()

    def add(self, stats: DispatchStats) -> None:
        with self._lock:
            self._stats.add(stats)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return self._stats.as_dict()


@dataclass(slots=True)
class RoutedBatch:
    """The result of ``Router.run``: the batch accounting of ``process_batch``, every
    dispatched record's outcome, and this invocation's counters."""

    batch: BatchResult
    outcomes: list[RecordOutcome]
    stats: DispatchStats

    def response(self) -> BatchResponse:
        return self.batch.response()


def counted_as_already_completed(result: BatchResult, records: int) -> BatchResult:
    """``result`` with ``records`` of its succeeded records counted as already completed: the
    consumer found their work done by an earlier delivery (completion markers, a version
    fence) and did nothing. For observers; the response is the same."""
    return replace(
        result,
        succeeded=result.succeeded - records,
        already_completed=result.already_completed + records,
    )
