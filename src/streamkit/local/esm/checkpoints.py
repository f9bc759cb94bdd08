"""Durable shard checkpoints for the event source mapping runner, in SQLite.

One row per (mapping UUID, stream ARN, shard ID) holds the sequence number of the last record
that is *done* (processed, filtered out, or described to the on-failure destination); reading
resumes AFTER_SEQUENCE_NUMBER it. The row also records the stream label the position belongs
to: every moto table starts at the same sequence number, and a recreated table reuses the ARN
prefix, so a checkpoint whose label differs from the live stream's is stale and ignored.

With ParallelizationFactor > 1 lanes finish out of order, so records *above* that watermark
can be done too. The row keeps them as well (``done_above``: inclusive runs of sequence numbers
in which every record read is done, :class:`DoneRuns`), written in the same transaction as the
watermark, so a runner restarted even after ``kill -9`` skips what its lanes had finished and
runs again only the batches that were in flight. ``sequence_number`` is ``""`` while no
watermark exists yet (only faster lanes have finished something).

File format: ``PRAGMA user_version`` says which one. 0 is the format before ``done_above``; it
is upgraded in place (the column is added, empty: nothing above the watermark is known done,
which is what such a file meant). A file of a newer format than this code knows is refused
with :class:`CheckpointFormatError` rather than misread.

Durability: the database runs in WAL mode and every ``save`` is its own transaction, committed
before the runner asks for more records. With ``synchronous=NORMAL`` a committed transaction
survives the process being killed (kill -9); only an OS crash or power loss could lose the
last few commits, which at worst re-runs those batches (at-least-once, as on AWS).
"""

from __future__ import annotations

import bisect
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Checkpoint", "CheckpointFormatError", "CheckpointStore", "DoneRuns", "ShardProgress"]

# PRAGMA user_version of the files this code writes (0: before done_above).
FORMAT_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    mapping_uuid    TEXT NOT NULL,
    stream_arn      TEXT NOT NULL,
    shard_id        TEXT NOT NULL,
    stream_label    TEXT NOT NULL,
    sequence_number TEXT NOT NULL,
    updated_at      REAL NOT NULL,
    done_above      TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (mapping_uuid, stream_arn, shard_id)
);
CREATE TABLE IF NOT EXISTS finished_shards (
    mapping_uuid TEXT NOT NULL,
    stream_arn   TEXT NOT NULL,
    shard_id     TEXT NOT NULL,
    stream_label TEXT NOT NULL,
    finished_at  REAL NOT NULL,
    PRIMARY KEY (mapping_uuid, stream_arn, shard_id)
);
"""


class CheckpointFormatError(RuntimeError):
    """The checkpoint file is of a format this code cannot read (or is damaged)."""


@dataclass(frozen=True)
class DoneRuns:
    """Records above a shard's watermark that are done already: sorted, disjoint, inclusive
    runs of sequence numbers; every record of the shard inside a run is done (the runs are
    built over the records in read order, and a shard is read without gaps)."""

    runs: tuple[tuple[int, int], ...] = ()
    _starts: list[int] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._starts.extend(first for first, _ in self.runs)

    @classmethod
    def of(cls, runs: Iterable[tuple[int, int]]) -> DoneRuns:
        """Sorted, with overlapping runs merged (both halves are done, so is their union)."""
        merged: list[tuple[int, int]] = []
        for first, last in sorted(runs):
            if merged and first <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], last))
            else:
                merged.append((first, last))
        return cls(tuple(merged))

    def __bool__(self) -> bool:
        return bool(self.runs)

    def covers(self, sequence_number: str) -> bool:
        number = int(sequence_number)
        index = bisect.bisect_right(self._starts, number) - 1
        return index >= 0 and number <= self.runs[index][1]

    def encode(self) -> str:
        return ",".join(f"{first}-{last}" for first, last in self.runs)

    @classmethod
    def decode(cls, text: str) -> DoneRuns:
        if not text:
            return cls()
        try:
            runs = [tuple(int(n) for n in run.split("-")) for run in text.split(",")]
        except ValueError:
            runs = [()]
        if any(len(run) != 2 or run[0] > run[1] for run in runs):
            raise CheckpointFormatError(f"a damaged done_above value: {text[:200]!r}")
        return cls.of((run[0], run[1]) for run in runs)


@dataclass(frozen=True)
class ShardProgress:
    """What a restart needs: the watermark (every record up to it is done; None before the
    first) and the records above it that are done too."""

    watermark: str | None = None
    done_above: DoneRuns = DoneRuns()


@dataclass(frozen=True)
class Checkpoint:
    """Where a shard's processing stands: everything up to ``sequence_number`` is done
    (``""``: no such record yet), and so is every record in ``done_above``."""

    mapping_uuid: str
    stream_arn: str
    shard_id: str
    stream_label: str
    sequence_number: str
    updated_at: float
    done_above: DoneRuns = DoneRuns()

    @property
    def progress(self) -> ShardProgress:
        return ShardProgress(self.sequence_number or None, self.done_above)


class CheckpointStore:
    """Thread-safe: the runner's shard workers share one store (one connection, one lock;
    each write is a few hundred microseconds, far below an invoke)."""

    FILENAME = "checkpoints.sqlite3"

    def __init__(self, state_dir: str | Path) -> None:
        directory = Path(state_dir)
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / self.FILENAME
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._upgrade()

    def _upgrade(self) -> None:
        """Create the tables, or bring a file of an older format up to this one."""
        with self._lock:
            (version,) = self._db.execute("PRAGMA user_version").fetchone()
            if version > FORMAT_VERSION:
                self._db.close()
                raise CheckpointFormatError(
                    f"{self.path} is a checkpoint file of format {version}, written by a newer "
                    f"streamkit; this one reads formats up to {FORMAT_VERSION}. Upgrade "
                    "streamkit, or use another --state-dir."
                )
            self._db.executescript(_SCHEMA)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(checkpoints)")}
            if "done_above" not in columns:  # format 0: nothing above the watermark known
                self._db.execute(
                    "ALTER TABLE checkpoints ADD COLUMN done_above TEXT NOT NULL DEFAULT ''"
                )
            if version != FORMAT_VERSION:
                self._db.execute(f"PRAGMA user_version = {FORMAT_VERSION}")

    def load(self, mapping_uuid: str, stream_arn: str, shard_id: str) -> Checkpoint | None:
        """The saved position, whatever its stream label (compare it before use)."""
        with self._lock:
            row = self._db.execute(
                "SELECT stream_label, sequence_number, updated_at, done_above FROM checkpoints"
                " WHERE mapping_uuid = ? AND stream_arn = ? AND shard_id = ?",
                (mapping_uuid, stream_arn, shard_id),
            ).fetchone()
        if row is None:
            return None
        return Checkpoint(
            mapping_uuid, stream_arn, shard_id, row[0], row[1], row[2], DoneRuns.decode(row[3])
        )

    def save(
        self,
        mapping_uuid: str,
        stream_arn: str,
        shard_id: str,
        *,
        stream_label: str,
        sequence_number: str,
        done_above: DoneRuns = DoneRuns(),
    ) -> None:
        """Record that every record up to ``sequence_number`` (``""``: none yet) and every
        record in ``done_above`` is done; one transaction, committed on return."""
        with self._lock:
            self._db.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (mapping_uuid, stream_arn, shard_id) DO UPDATE SET"
                " stream_label = excluded.stream_label,"
                " sequence_number = excluded.sequence_number,"
                " updated_at = excluded.updated_at,"
                " done_above = excluded.done_above",
                (
                    mapping_uuid,
                    stream_arn,
                    shard_id,
                    stream_label,
                    sequence_number,
                    time.time(),
                    done_above.encode(),
                ),
            )

    def mark_shard_finished(
        self, mapping_uuid: str, stream_arn: str, shard_id: str, *, stream_label: str
    ) -> None:
        """A closed shard read to its end: its children may start (shard lineage)."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO finished_shards VALUES (?, ?, ?, ?, ?)",
                (mapping_uuid, stream_arn, shard_id, stream_label, time.time()),
            )

    def is_shard_finished(
        self, mapping_uuid: str, stream_arn: str, shard_id: str, *, stream_label: str
    ) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM finished_shards WHERE mapping_uuid = ? AND stream_arn = ?"
                " AND shard_id = ? AND stream_label = ?",
                (mapping_uuid, stream_arn, shard_id, stream_label),
            ).fetchone()
        return row is not None

    def all(self) -> list[Checkpoint]:
        with self._lock:
            rows = self._db.execute(
                "SELECT mapping_uuid, stream_arn, shard_id, stream_label, sequence_number,"
                " updated_at, done_above FROM checkpoints"
                " ORDER BY mapping_uuid, stream_arn, shard_id"
            ).fetchall()
        return [
            Checkpoint(row[0], row[1], row[2], row[3], row[4], row[5], DoneRuns.decode(row[6]))
            for row in rows
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()
