"""One acknowledgment model per shard: finished records become the shard's checkpoint here.

Whatever runs a shard -- one batch at a time, ParallelizationFactor lanes, or tumbling
windows -- reports to one :class:`ShardCheckpointer`:

- :meth:`~ShardCheckpointer.read` -- sequence numbers in shard order, as they are read (the
  lane dispatcher registers every record it reads; a processor registers its batch, which is
  a no-op for records registered already);
- :meth:`~ShardCheckpointer.done` -- records that are finished: succeeded, filtered out, or
  described to the on-failure destination.

The checkpoint is a watermark: it moves to the highest sequence number below which every
record read is done, so it never passes a record a slow lane still holds, and it is written
(through ``commit``, the durable store) only when it moves. While a tumbling window is open
the watermark is *held* (:meth:`~ShardCheckpointer.hold`): it keeps moving in memory but is
written only by :meth:`~ShardCheckpointer.release`, after the window's final invoke succeeded
("After successful invocation, your function checkpoints the sequence number",
https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-windows.html).

Lanes finish out of order, so records above the watermark can be done as well. With a
``progress`` sink (the shard worker's durable store) every change of what is done -- the
watermark, or the runs of done records above it (:class:`~streamkit.local.esm.checkpoints.DoneRuns`)
-- is written as one :class:`~streamkit.local.esm.checkpoints.ShardProgress`, so a restart
skips what faster lanes had finished (the intake admits the records of ``resume``'s runs as
done, :mod:`streamkit.local.esm.intake`) and runs again only the batches in flight.
Runs restored at a restart and not read again yet stay in what is written, so a second crash
loses nothing either. Without a sink only the watermark is written (``commit``).

``capacity`` bounds how many records may be read and not yet done: the lane dispatcher waits
for room (:meth:`~ShardCheckpointer.wait_for_room`), so a lane that retries forever holds
the shard's reading as well as its checkpoint, as on AWS.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable

from streamkit.local.esm.checkpoints import DoneRuns, ShardProgress

__all__ = ["ShardCheckpointer"]


class ShardCheckpointer:
    """The shard's records in read order and which of them are done (thread-safe)."""

    def __init__(
        self,
        commit: Callable[[str], None],
        capacity: int = 0,
        *,
        progress: Callable[[ShardProgress], None] | None = None,
        resume: ShardProgress | None = None,
    ) -> None:
        self._commit = commit
        self._progress = progress
        self.capacity = capacity  # 0: unbounded (only the lane dispatcher waits for room)
        self._order: deque[str] = deque()
        self._done: set[str] = set()
        self._last_read: int | None = None
        self._changed = threading.Condition()
        self._held = False
        self._unwritten: str | None = None  # the watermark while held
        self._resume = resume or ShardProgress()
        self.committed: str | None = self._resume.watermark
        self._written_above = self._resume.done_above

    @property
    def outstanding(self) -> int:
        """Records read and not yet done."""
        with self._changed:
            return len(self._order)

    def read(self, sequence_numbers: Iterable[str]) -> None:
        """Records just read, in shard order (before any of them can be done). Sequence
        numbers at or below the last one registered are ignored: they are known already."""
        with self._changed:
            for sequence_number in sequence_numbers:
                number = int(sequence_number)
                if self._last_read is not None and number <= self._last_read:
                    continue
                self._last_read = number
                self._order.append(sequence_number)

    def done(self, sequence_numbers: Iterable[str]) -> None:
        with self._changed:
            before = len(self._done)
            self._done.update(sequence_numbers)
            if len(self._done) == before:
                return
            last = None
            while self._order and self._order[0] in self._done:
                last = self._order.popleft()
                self._done.discard(last)
            if self._held:
                # A window's records count only once its final invoke succeeded: nothing
                # is written meanwhile, neither the watermark nor anything above it.
                if last is not None:
                    self._unwritten = last
            elif self._progress is not None:
                self._write_progress(last if last is not None else self.committed)
            elif last is not None:
                self._write(last)
            if last is not None:
                self._changed.notify_all()

    def hold(self) -> None:
        """Keep the watermark in memory until :meth:`release` (a tumbling window is open)."""
        with self._changed:
            self._held = True

    def release(self) -> None:
        """Write the watermark reached while held (the window's final invoke succeeded)."""
        with self._changed:
            self._held = False
            if self._progress is not None:
                self._write_progress(self._unwritten or self.committed)
            elif self._unwritten is not None:
                self._write(self._unwritten)
            self._unwritten = None

    def wait_for_room(self, stop: threading.Event, timeout: float) -> int:
        """How many more records may be read now (waits up to ``timeout`` for room)."""
        with self._changed:
            if len(self._order) >= self.capacity and not stop.is_set():
                self._changed.wait(timeout)
            return self.capacity - len(self._order)

    def _write(self, sequence_number: str) -> None:
        # Under the lock: commits reach the store in order.
        self._commit(sequence_number)
        self.committed = sequence_number

    def _write_progress(self, watermark: str | None) -> None:
        """Write the watermark and the done runs above it, if either changed (under the lock)."""
        above = self._done_above()
        if watermark == self.committed and above == self._written_above:
            return
        assert self._progress is not None
        self._progress(ShardProgress(watermark, above))
        self.committed = watermark
        self._written_above = above

    def _done_above(self) -> DoneRuns:
        """Runs of done records in read order (all above the watermark: the first record
        read and not done is where it stopped), plus the restored runs not read again yet."""
        runs: list[tuple[int, int]] = []
        first: str | None = None
        last: str | None = None
        for sequence_number in self._order:
            if sequence_number in self._done:
                first = first or sequence_number
                last = sequence_number
            elif first is not None and last is not None:
                runs.append((int(first), int(last)))
                first = None
        if first is not None and last is not None:
            runs.append((int(first), int(last)))
        for run in self._resume.done_above.runs:
            if self._last_read is None or run[1] > self._last_read:
                runs.append(run)
        return DoneRuns.of(runs)
