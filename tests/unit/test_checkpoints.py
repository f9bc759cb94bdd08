"""CheckpointStore: per-(mapping, stream, shard) rows, stream-label guard, kill -9 durability."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from streamkit.local.esm.checkpoints import (
    FORMAT_VERSION,
    CheckpointFormatError,
    CheckpointStore,
    DoneRuns,
    ShardProgress,
)

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2024-01-01T00:00:00.000"
SHARD = "shardId-00000001541626099285-f35f62ef"


def test_save_then_load_round_trips(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    assert store.load("m1", ARN, SHARD) is None
    store.save("m1", ARN, SHARD, stream_label="L1", sequence_number="100")
    store.save("m1", ARN, SHARD, stream_label="L1", sequence_number="105")
    checkpoint = store.load("m1", ARN, SHARD)
    assert checkpoint is not None
    assert (checkpoint.sequence_number, checkpoint.stream_label) == ("105", "L1")
    assert checkpoint.updated_at <= time.time()


def test_rows_are_keyed_by_mapping_stream_and_shard(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.save("m1", ARN, SHARD, stream_label="L1", sequence_number="1")
    store.save("m2", ARN, SHARD, stream_label="L1", sequence_number="2")
    store.save("m1", ARN + "x", SHARD, stream_label="L1", sequence_number="3")
    store.save("m1", ARN, "other-shard", stream_label="L1", sequence_number="4")
    assert [c.sequence_number for c in store.all()] == [
        "4",
        "1",
        "3",
        "2",
    ]  # ordered by mapping, stream, shard
    assert store.load("m1", ARN, SHARD).sequence_number == "1"  # type: ignore[union-attr]


def test_a_checkpoint_carries_its_stream_generation(tmp_path: Path) -> None:
    # The shard worker ignores a checkpoint whose label is not the live stream's.
    store = CheckpointStore(tmp_path)
    store.save("m1", ARN, SHARD, stream_label="2024-01-01T00:00:00.000", sequence_number="9")
    loaded = store.load("m1", ARN, SHARD)
    assert loaded is not None
    assert (loaded.stream_label, loaded.sequence_number) == ("2024-01-01T00:00:00.000", "9")


def test_survives_reopen(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.save("m1", ARN, SHARD, stream_label="L", sequence_number="7")
    store.mark_shard_finished("m1", ARN, SHARD, stream_label="L")
    store.close()
    reopened = CheckpointStore(tmp_path)
    assert reopened.load("m1", ARN, SHARD).sequence_number == "7"  # type: ignore[union-attr]
    assert reopened.is_shard_finished("m1", ARN, SHARD, stream_label="L")
    assert not reopened.is_shard_finished("m1", ARN, SHARD, stream_label="other")


def test_concurrent_writers_do_not_interfere(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)

    def write(shard: str) -> None:
        for n in range(200):
            store.save("m", ARN, shard, stream_label="L", sequence_number=str(n))

    threads = [threading.Thread(target=write, args=(f"s{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {c.shard_id: c.sequence_number for c in store.all()} == {
        f"s{i}": "199" for i in range(4)
    }


def test_every_acknowledged_save_survives_kill_9(tmp_path: Path) -> None:
    """A child saves in a loop and prints each sequence once ``save`` returned; after SIGKILL
    the store holds at least the last printed one."""
    src = Path(__file__).resolve().parents[2] / "src"
    child = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(src)!r})
        from streamkit.local.esm.checkpoints import CheckpointStore
        store = CheckpointStore({str(tmp_path)!r})
        n = 0
        while True:
            n += 1
            store.save("m", {ARN!r}, {SHARD!r}, stream_label="L", sequence_number=str(n))
            print(n, flush=True)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    last = 0
    deadline = time.monotonic() + 20
    while last < 300 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        last = int(line)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()
    assert last >= 300, "child did not make progress"
    checkpoint = CheckpointStore(tmp_path).load("m", ARN, SHARD)
    assert checkpoint is not None
    assert int(checkpoint.sequence_number) >= last


def test_done_runs_round_trip_with_the_watermark(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    runs = DoneRuns.of([(30, 31), (12, 15), (14, 20)])  # overlapping runs merge
    assert runs.runs == ((12, 20), (30, 31))
    store.save("m1", ARN, SHARD, stream_label="L", sequence_number="", done_above=runs)
    loaded = store.load("m1", ARN, SHARD)
    assert loaded is not None
    assert loaded.progress == ShardProgress(None, runs)
    assert [loaded.done_above.covers(s) for s in ("11", "12", "20", "21", "31")] == [
        False,
        True,
        True,
        False,
        True,
    ]


def test_a_file_of_the_format_before_lanes_progress_is_upgraded(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / CheckpointStore.FILENAME)
    old.executescript(
        """
        CREATE TABLE checkpoints (
            mapping_uuid TEXT NOT NULL, stream_arn TEXT NOT NULL, shard_id TEXT NOT NULL,
            stream_label TEXT NOT NULL, sequence_number TEXT NOT NULL, updated_at REAL NOT NULL,
            PRIMARY KEY (mapping_uuid, stream_arn, shard_id)
        );
        """
    )
    old.execute("INSERT INTO checkpoints VALUES ('m1', ?, ?, 'L', '42', 1.0)", (ARN, SHARD))
    old.commit()
    old.close()
    store = CheckpointStore(tmp_path)
    loaded = store.load("m1", ARN, SHARD)
    assert loaded is not None
    assert loaded.progress == ShardProgress("42", DoneRuns())
    store.save(
        "m1", ARN, SHARD, stream_label="L", sequence_number="43", done_above=DoneRuns.of([(45, 45)])
    )
    assert store.all()[0].done_above.runs == ((45, 45),)
    store.close()
    (version,) = (
        sqlite3.connect(tmp_path / CheckpointStore.FILENAME)
        .execute("PRAGMA user_version")
        .fetchone()
    )
    assert version == FORMAT_VERSION


def test_a_file_of_a_newer_format_is_refused(tmp_path: Path) -> None:
    CheckpointStore(tmp_path).close()
    newer = sqlite3.connect(tmp_path / CheckpointStore.FILENAME)
    newer.execute(f"PRAGMA user_version = {FORMAT_VERSION + 1}")
    newer.close()
    with pytest.raises(CheckpointFormatError, match="written by a newer streamkit"):
        CheckpointStore(tmp_path)


def test_a_damaged_done_above_value_is_a_clear_error() -> None:
    with pytest.raises(CheckpointFormatError, match="damaged done_above"):
        DoneRuns.decode("12-x")
    with pytest.raises(CheckpointFormatError, match="damaged done_above"):
        DoneRuns.decode("20-10")
