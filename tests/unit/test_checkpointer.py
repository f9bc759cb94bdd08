"""The shard checkpointer: one watermark over the records read, held while a window is open."""

from __future__ import annotations

import threading
import time

from streamkit.local.esm.checkpointer import ShardCheckpointer


def test_the_checkpoint_moves_only_over_a_done_prefix() -> None:
    commits: list[str] = []
    checkpointer = ShardCheckpointer(commits.append, capacity=4)
    checkpointer.read(["1", "2", "3", "4"])
    checkpointer.done(["2", "4"])
    assert commits == []  # 1 is not done: nothing may be checkpointed
    checkpointer.done(["1"])
    assert commits == ["2"]
    checkpointer.done(["3"])
    assert commits == ["2", "4"]
    assert checkpointer.outstanding == 0


def test_the_checkpointer_bounds_how_far_reading_runs_ahead() -> None:
    checkpointer = ShardCheckpointer(lambda seq: None, capacity=2)
    checkpointer.read(["1", "2"])
    stop = threading.Event()
    started = time.monotonic()
    assert checkpointer.wait_for_room(stop, timeout=0.05) == 0
    assert time.monotonic() - started >= 0.04
    threading.Timer(0.02, lambda: checkpointer.done(["1"])).start()
    assert checkpointer.wait_for_room(stop, timeout=2) == 1


def test_records_read_again_are_known_already() -> None:
    commits: list[str] = []
    checkpointer = ShardCheckpointer(commits.append)
    checkpointer.read(["10", "20"])
    checkpointer.read(["20"])  # a lane's processor registers what the dispatcher registered
    assert checkpointer.outstanding == 2
    checkpointer.done(["10", "20"])
    assert commits == ["20"]
    assert checkpointer.outstanding == 0


def test_a_held_checkpoint_is_written_on_release_only() -> None:
    commits: list[str] = []
    checkpointer = ShardCheckpointer(commits.append)
    checkpointer.read(["1", "2", "3"])
    checkpointer.done(["1"])
    checkpointer.hold()
    checkpointer.done(["2"])
    checkpointer.done(["3"])
    assert commits == ["1"]  # the window's records wait for its final invoke
    checkpointer.release()
    assert commits == ["1", "3"]
    assert checkpointer.committed == "3"
    checkpointer.release()  # nothing new: nothing written
    assert commits == ["1", "3"]
