"""One shard of a mapping, on its own thread: resume after the checkpoint, run the loop.

A :class:`ShardWorker` resumes after the shard's checkpoint (or at the mapping's
StartingPosition), skipping records its lanes had finished above it, and hands the reader to the loop the mapping's settings call for
(:mod:`streamkit.local.esm.pipeline`): one batch at a time, ParallelizationFactor lanes
(:mod:`streamkit.local.esm.lanes`), or tumbling windows (:mod:`streamkit.local.esm.windows`).
Unexpected errors (the endpoint went away) restart it from the checkpoint after a jittered
backoff; a stream that is gone ends it.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from streamkit.exceptions import StreamNotFoundError
from streamkit.local.esm.checkpoints import ShardProgress
from streamkit.local.esm.lanes import LaneScheduler
from streamkit.local.esm.pipeline import MappingPipeline, run_sequential
from streamkit.local.esm.stats import Counter, MappingState, MappingStats
from streamkit.local.esm.windows import WindowedShard
from streamkit.streams.backoff import Backoff
from streamkit.streams.reader import Shard, ShardReader, StartPosition

if TYPE_CHECKING:
    from streamkit.local.esm.mapping import WorkerSettings

__all__ = ["ShardWorker"]

LOG = logging.getLogger(__name__)

# Resuming from the checkpoint after an unexpected error: 0.4 s, doubling up to 30 s, jittered.
_RESUME_BACKOFF = Backoff(initial=0.4, maximum=30.0, jitter=0.5)


class ShardWorker:
    """Poll -> process -> checkpoint for one shard, on its own thread."""

    def __init__(
        self,
        pipeline: MappingPipeline,
        shard: Shard,
        stream_label: str,
        settings: WorkerSettings,
        stats: MappingStats,
        stop: threading.Event,
    ) -> None:
        self.pipeline = pipeline
        self.config = config = pipeline.config
        self.shard = shard
        self.stream_label = stream_label
        self.settings = settings
        self.stats = stats
        self.stop = stop
        self.ready = threading.Event()  # the shard iterator is acquired (LATEST is anchored)
        self.finished = False  # a closed shard read to its end
        self.stream_gone = False
        self.thread = threading.Thread(
            target=self._run, name=f"shard-{config.uuid[:8]}-{shard.shard_id[-8:]}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        self.stats.shard_started()
        gate = self.settings.streams.gate
        gate.register(self.config.event_source_arn, self.shard.shard_id, self)
        try:
            self._run_until_stopped()
        finally:
            gate.unregister(self.config.event_source_arn, self.shard.shard_id, self)
            self.stats.shard_ended()

    def _run_until_stopped(self) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                self._process_from_checkpoint()
                return
            except StreamNotFoundError as exc:
                self.stats.set_state(MappingState.ERROR, str(exc))
                self.stream_gone = True
                return
            except Exception as exc:
                if self.stop.is_set():
                    return
                # The endpoint went away or a bug: start over from the checkpoint (records
                # held in memory are read again: at-least-once). Throttling is waited out
                # where it happens (ThrottleBackoff) and does not get here.
                failures += 1
                delay = _RESUME_BACKOFF.delay(failures)
                LOG.warning(
                    "mapping %s shard %s: %s: %s; resuming from the checkpoint in %.1fs",
                    self.config.uuid[:8], self.shard.shard_id, type(exc).__name__, exc, delay,
                    exc_info=LOG.isEnabledFor(logging.DEBUG),
                )  # fmt: skip
                self.stats.note_error(f"{type(exc).__name__}: {exc}")
                self.stop.wait(delay)

    def _start_position(self) -> tuple[StartPosition, ShardProgress | None]:
        """Where to read from, and what was done at the last run (None: a fresh start)."""
        store = self.settings.checkpoints
        checkpoint = store.load(self.config.uuid, self.config.event_source_arn, self.shard.shard_id)
        if checkpoint is not None and checkpoint.stream_label == self.stream_label:
            if checkpoint.sequence_number:
                return StartPosition.after(checkpoint.sequence_number), checkpoint.progress
            # Only records above a watermark were done (faster lanes): read from the start
            # again and skip them.
            return self._initial_position(), checkpoint.progress
        if checkpoint is not None:
            LOG.warning(
                "mapping %s shard %s: ignoring a checkpoint of stream generation %s (now %s)",
                self.config.uuid[:8], self.shard.shard_id, checkpoint.stream_label, self.stream_label,
            )  # fmt: skip
        return self._initial_position(), None

    def _initial_position(self) -> StartPosition:
        if self.shard.parent_shard_id is not None:
            return StartPosition("TRIM_HORIZON")  # a child continues where its parent ended
        return StartPosition(self.config.starting_position)

    def _commit(self, sequence_number: str) -> None:
        self._save(ShardProgress(sequence_number))

    def _save(self, progress: ShardProgress) -> None:
        self.settings.checkpoints.save(
            self.config.uuid,
            self.config.event_source_arn,
            self.shard.shard_id,
            stream_label=self.stream_label,
            sequence_number=progress.watermark or "",
            done_above=progress.done_above,
        )

    def _process_from_checkpoint(self) -> None:
        config = self.config
        start, resume = self._start_position()
        reader = ShardReader(
            self.settings.streams.client,
            config.event_source_arn,
            self.shard.shard_id,
            start,
            gate=self.settings.streams.gate,
            backoff=self.settings.streams.backoff,
            stop=self.stop,
            on_throttle=self._count_throttle,
        )
        parts = self.pipeline.shard(
            self.shard.shard_id, self.stop, self._commit, progress=self._save, resume=resume
        )
        if reader.acquire():
            parts.note_gap()
        LOG.info(
            "mapping %s shard %s: reading from %s",
            config.uuid[:8],
            self.shard.shard_id,
            start.describe(),
        )
        self.ready.set()
        if config.parallelization_factor > 1:
            finished = LaneScheduler(parts, reader).run()
        elif config.tumbling_window_s > 0:
            finished = WindowedShard(parts, reader).run()
        else:
            finished = run_sequential(parts, reader)
        if finished:
            self._finish()

    def _count_throttle(self, code: str) -> None:
        self.stats.count(Counter.THROTTLED)
        self.stats.note_error(f"{code} (throttled; backing off)")

    def _finish(self) -> None:
        self.settings.checkpoints.mark_shard_finished(
            self.config.uuid,
            self.config.event_source_arn,
            self.shard.shard_id,
            stream_label=self.stream_label,
        )
        self.finished = True
        LOG.info(
            "mapping %s shard %s: finished (shard closed)",
            self.config.uuid[:8],
            self.shard.shard_id,
        )
