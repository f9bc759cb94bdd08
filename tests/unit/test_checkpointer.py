"""The shard checkpointer: one watermark over the records read, held while a window is open."""

from __future__ import annotations

import threading
import time

from streamkit.local.esm.checkpointer import ShardCheckpointer
from streamkit.local.esm.checkpoints import DoneRuns, ShardProgress


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


def test_with_a_progress_sink_records_done_above_the_watermark_are_saved() -> None:
    saved: list[ShardProgress] = []
    checkpointer = ShardCheckpointer(_never, capacity=10, progress=saved.append)
    checkpointer.read(["1", "2", "3", "4", "5", "6"])
    checkpointer.done(["2", "3"])  # a faster lane: no watermark yet, but 2..3 are done
    checkpointer.done(["5"])
    checkpointer.done(["5"])  # nothing new: nothing written
    assert saved == [
        ShardProgress(None, DoneRuns(((2, 3),))),
        ShardProgress(None, DoneRuns(((2, 3), (5, 5)))),
    ]
    checkpointer.done(["1"])
    assert saved[-1] == ShardProgress("3", DoneRuns(((5, 5),)))
    checkpointer.done(["4", "6"])
    assert saved[-1] == ShardProgress("6", DoneRuns())
    assert checkpointer.outstanding == 0


def test_restored_runs_are_kept_until_read_again() -> None:
    resume = ShardProgress("10", DoneRuns(((12, 13), (20, 21))))
    saved: list[ShardProgress] = []
    checkpointer = ShardCheckpointer(_never, progress=saved.append, resume=resume)
    checkpointer.read(["11", "12", "13", "14"])
    checkpointer.done(["12", "13"])  # skipped by the intake: done at once
    assert saved == []  # what is done is what was saved: nothing to write
    checkpointer.done(["11"])
    # 20..21 were not read again yet: a second crash must still skip them.
    assert saved[-1] == ShardProgress("13", DoneRuns(((20, 21),)))


def test_a_held_checkpointer_writes_nothing_until_released() -> None:
    saved: list[ShardProgress] = []
    checkpointer = ShardCheckpointer(_never, progress=saved.append)
    checkpointer.hold()
    checkpointer.read(["1", "2", "3"])
    checkpointer.done(["1", "3"])
    assert saved == []  # a window's records count only after its final invoke
    checkpointer.done(["2"])
    checkpointer.release()
    assert saved == [ShardProgress("3", DoneRuns())]


def _never(sequence_number: str) -> None:
    raise AssertionError("with a progress sink, commit is never called")
