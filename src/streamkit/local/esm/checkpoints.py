"""Durable shard checkpoints for the event source mapping runner, in SQLite.

One row per (mapping UUID, stream ARN, shard ID) holds the sequence number of the last record
that is *done* (processed, filtered out, or described to the on-failure destination); reading
resumes AFTER_SEQUENCE_NUMBER it. The row also records the stream label the position belongs
to: every moto table starts at the same sequence number, and a recreated table reuses the ARN
prefix, so a checkpoint whose label differs from the live stream's is stale and ignored.

Durability: the database runs in WAL mode and every ``save`` is its own transaction, committed
before the runner asks for more records. With ``synchronous=NORMAL`` a committed transaction
survives the process being killed (kill -9); only an OS crash or power loss could lose the
last few commits, which at worst re-runs those batches (at-least-once, as on AWS).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Checkpoint", "CheckpointStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    mapping_uuid    TEXT NOT NULL,
    stream_arn      TEXT NOT NULL,
    shard_id        TEXT NOT NULL,
    stream_label    TEXT NOT NULL,
    sequence_number TEXT NOT NULL,
    updated_at      REAL NOT NULL,
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


@dataclass(frozen=True)
class Checkpoint:
    """Where a shard's processing stands: everything up to ``sequence_number`` is done."""

    mapping_uuid: str
    stream_arn: str
    shard_id: str
    stream_label: str
    sequence_number: str
    updated_at: float


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
        self._db.executescript(_SCHEMA)

    def load(self, mapping_uuid: str, stream_arn: str, shard_id: str) -> Checkpoint | None:
        """The saved position, whatever its stream label (compare it before use)."""
        with self._lock:
            row = self._db.execute(
                "SELECT stream_label, sequence_number, updated_at FROM checkpoints"
                " WHERE mapping_uuid = ? AND stream_arn = ? AND shard_id = ?",
                (mapping_uuid, stream_arn, shard_id),
            ).fetchone()
        if row is None:
            return None
        return Checkpoint(mapping_uuid, stream_arn, shard_id, row[0], row[1], row[2])

    def load_for_label(
        self, mapping_uuid: str, stream_arn: str, shard_id: str, stream_label: str
    ) -> Checkpoint | None:
        """The saved position if it belongs to the stream generation ``stream_label``."""
        checkpoint = self.load(mapping_uuid, stream_arn, shard_id)
        if checkpoint is None or checkpoint.stream_label != stream_label:
            return None
        return checkpoint

    def save(
        self,
        mapping_uuid: str,
        stream_arn: str,
        shard_id: str,
        *,
        stream_label: str,
        sequence_number: str,
    ) -> None:
        """Record that every record up to ``sequence_number`` is done; committed on return."""
        with self._lock:
            self._db.execute(
                "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (mapping_uuid, stream_arn, shard_id) DO UPDATE SET"
                " stream_label = excluded.stream_label,"
                " sequence_number = excluded.sequence_number,"
                " updated_at = excluded.updated_at",
                (mapping_uuid, stream_arn, shard_id, stream_label, sequence_number, time.time()),
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

    def forget_mapping(self, mapping_uuid: str) -> int:
        """Drop a deleted mapping's rows; returns how many checkpoints went."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM checkpoints WHERE mapping_uuid = ?", (mapping_uuid,)
            )
            self._db.execute("DELETE FROM finished_shards WHERE mapping_uuid = ?", (mapping_uuid,))
        return cursor.rowcount

    def all(self) -> list[Checkpoint]:
        with self._lock:
            rows = self._db.execute(
                "SELECT mapping_uuid, stream_arn, shard_id, stream_label, sequence_number,"
                " updated_at FROM checkpoints ORDER BY mapping_uuid, stream_arn, shard_id"
            ).fetchall()
        return [Checkpoint(*row) for row in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()
