"""CheckpointStore: per-(mapping, stream, shard) rows, stream-label guard, kill -9 durability."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from streamkit.local.esm.checkpoints import CheckpointStore

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


def test_a_checkpoint_from_another_stream_generation_is_not_used(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.save("m1", ARN, SHARD, stream_label="2024-01-01T00:00:00.000", sequence_number="9")
    assert store.load_for_label("m1", ARN, SHARD, "2024-01-01T00:00:00.000") is not None
    assert store.load_for_label("m1", ARN, SHARD, "2024-06-01T00:00:00.000") is None


def test_survives_reopen_and_forget(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.save("m1", ARN, SHARD, stream_label="L", sequence_number="7")
    store.mark_shard_finished("m1", ARN, SHARD, stream_label="L")
    store.close()
    reopened = CheckpointStore(tmp_path)
    assert reopened.load("m1", ARN, SHARD).sequence_number == "7"  # type: ignore[union-attr]
    assert reopened.is_shard_finished("m1", ARN, SHARD, stream_label="L")
    assert not reopened.is_shard_finished("m1", ARN, SHARD, stream_label="other")
    assert reopened.forget_mapping("m1") == 1
    assert reopened.load("m1", ARN, SHARD) is None
    assert not reopened.is_shard_finished("m1", ARN, SHARD, stream_label="L")


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
