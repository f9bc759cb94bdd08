"""ParallelizationFactor: up to N batches of one shard in flight at once, order kept per item.

"You can also increase concurrency by processing multiple batches from each shard in parallel
... If you increase the number of concurrent batches per shard, Lambda still ensures in-order
processing at the item (partition and sort key) level."
https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-eventsourcemapping.html

How the runner does it:

- One dispatcher (the shard worker's thread) reads the shard, takes records through the
  mapping's intake (:mod:`streamkit.local.esm.intake`: conversion, FilterCriteria), and sends each record to lane ``crc32(item key) % N`` (:func:`lane_of`). The item key is the
  canonical text of ``Keys`` (:attr:`streamkit.records.StreamRecord.item_key`), so an item
  always lands in the same lane, in every process and run (never Python's ``hash()``, which is
  salted per process).
- Each lane batches its records (BatchSize, batching window, 6 MB) and processes them with
  its own :class:`~streamkit.local.esm.processor.BatchProcessor` on its own thread; the invoker
  runs up to N function workers at once. A lane processes one batch at a time, so an item's
  records reach the function in stream order.
- The shard's :class:`~streamkit.local.esm.checkpointer.ShardCheckpointer` keeps its records
  in read order. A lane's processor reports records done (succeeded, or described to the
  on-failure destination); filtered-out records are done at once. The checkpoint moves past a
  record only when it and every earlier record of the shard are done, so a restart never
  skips a record a slow lane still holds; what faster lanes finished above it is saved with
  it, so a restart (even after ``kill -9``) does not run that again either: the intake
  admits such records as done (:mod:`streamkit.local.esm.checkpointer`).
- Reading runs ahead of the slowest lane by at most ``capacity`` records: a lane that retries
  forever holds the shard's checkpoint (as on AWS) and, once that many records wait, reading.
"""

from __future__ import annotations

import json
import logging
import threading
import zlib
from collections import deque
from collections.abc import Mapping
from typing import Any

from streamkit.local.esm.checkpointer import ShardCheckpointer
from streamkit.local.esm.pipeline import ShardParts
from streamkit.local.esm.processor import BatchOutcome
from streamkit.streams.reader import GET_RECORDS_LIMIT, ReadResult, ShardReader
from streamkit.streams.throttling import IdleBackoff

__all__ = ["LaneScheduler", "lane_of"]

LOG = logging.getLogger(__name__)

# How long an idle lane waits for records before its poller looks again (it wakes at once
# when records arrive; this only bounds how late it notices a stop or a batching window).
_LANE_WAIT_S = 0.05


def lane_of(record: Mapping[str, Any], lanes: int) -> int:
    """The lane of a Lambda-shaped record: stable for the item, across processes."""
    if lanes <= 1:
        return 0
    from streamkit.records import StreamRecord  # the library's canonical item key

    try:
        key = StreamRecord(record).item_key
    except ValueError:  # malformed Keys: still one fixed lane per distinct Keys text
        key = json.dumps(record.get("dynamodb", {}).get("Keys"), sort_keys=True, default=str)
    return zlib.crc32(key.encode("utf-8")) % lanes


class _LaneSource:
    """A lane's records, fed by the dispatcher; a poller reads it like a shard."""

    def __init__(self, shard_id: str) -> None:
        self.shard_id = shard_id
        self._records: deque[dict[str, Any]] = deque()
        self._closed = False
        self._arrived = threading.Condition()

    @property
    def ended(self) -> bool:
        with self._arrived:
            return self._closed and not self._records

    def put(self, records: list[dict[str, Any]]) -> None:
        with self._arrived:
            self._records.extend(records)
            self._arrived.notify_all()

    def close(self) -> None:
        """The shard has ended: nothing more will come."""
        with self._arrived:
            self._closed = True
            self._arrived.notify_all()

    def read(self, limit: int) -> ReadResult:
        with self._arrived:
            if not self._records and not self._closed:
                self._arrived.wait(_LANE_WAIT_S)
            count = min(limit, len(self._records))
            records = [self._records.popleft() for _ in range(count)]
            return ReadResult(records=records, shard_ended=self._closed and not self._records)


class _Lane:
    """One lane: its records, its poller and processor, its thread."""

    def __init__(
        self,
        index: int,
        parts: ShardParts,
        checkpointer: ShardCheckpointer,
        stop: threading.Event,
        abort: threading.Event,
    ) -> None:
        self.index = index
        self.parts = parts
        self.checkpointer = checkpointer
        self.stop = stop
        self.abort = abort
        self.source = _LaneSource(parts.shard_id)
        self.abandoned = False
        self.thread = threading.Thread(
            target=self._run,
            name=f"lane-{parts.config.uuid[:8]}-{parts.shard_id[-8:]}-{index}",
            daemon=True,
        )

    def give(self, records: list[dict[str, Any]]) -> None:
        self.source.put(records)

    def _run(self) -> None:
        # A lane waits on the source itself, so its poller need not back off.
        poller = self.parts.poller(
            self.source, converted=True, backoff=IdleBackoff(min_delay=0.0, max_delay=0.0)
        )
        processor = self.parts.processor(
            self.checkpointer, label=f"{self.parts.label} lane {self.index}"
        )
        try:
            while not self.stop.is_set():
                batch = poller.next_batch(self.stop)
                if batch is None:
                    if poller.exhausted:
                        return
                    continue
                if processor.process(batch, self.stop) is BatchOutcome.ABANDONED:
                    self._give_up_lane()
                    return
        except Exception:
            LOG.exception("%s lane %d failed", self.parts.where, self.index)
            self._give_up_lane()

    def _give_up_lane(self) -> None:
        self.abandoned = True
        self.abort.set()


class LaneScheduler:
    """Runs one shard with ``parts.config.parallelization_factor`` lanes (see module doc)."""

    def __init__(self, parts: ShardParts, reader: ShardReader) -> None:
        self.parts = parts
        self.reader = reader
        self.lane_count = parts.config.parallelization_factor
        batch_size = parts.config.batch_size
        self.checkpointer = parts.checkpointer(
            capacity=max(GET_RECORDS_LIMIT, 2 * self.lane_count * batch_size)
        )
        self._lanes_stop = threading.Event()  # set on stop or when a lane gave up
        self._abort = threading.Event()
        self.lanes = [
            _Lane(i, parts, self.checkpointer, self._lanes_stop, self._abort)
            for i in range(self.lane_count)
        ]

    def run(self) -> bool:
        for lane in self.lanes:
            lane.thread.start()
        try:
            self._dispatch_until_shard_ends()
            for lane in self.lanes:
                lane.source.close()
            self._join_lanes()
        finally:
            self._lanes_stop.set()
            for lane in self.lanes:
                lane.source.close()
        if self.parts.stop.is_set() or any(lane.abandoned for lane in self.lanes):
            LOG.info("%s: stopped with batches in flight; they will be read again", self.parts.where)  # fmt: skip
            return False
        return self.reader.ended and self.checkpointer.outstanding == 0

    def _stopping(self) -> bool:
        return self.parts.stop.is_set() or self._abort.is_set()

    def _dispatch_until_shard_ends(self) -> None:
        backoff = self.parts.idle_backoff()
        while not self._stopping() and not self.reader.ended:
            room = self.checkpointer.wait_for_room(self.parts.stop, timeout=0.1)
            if room <= 0:
                continue
            read = self.reader.read(min(room, GET_RECORDS_LIMIT))
            if read.gap:
                self.parts.note_gap()
            if read.records:
                backoff.reset()
                self._dispatch(read.records)
            elif not read.shard_ended:
                self.parts.stop.wait(backoff.next_delay())

    def _dispatch(self, raw_records: list[dict[str, Any]]) -> None:
        admitted = self.parts.intake(raw_records)
        self.checkpointer.read(sequence for sequence, _ in admitted)
        filtered: list[str] = []
        by_lane: dict[int, list[dict[str, Any]]] = {}
        for sequence, record in admitted:
            if record is None:
                filtered.append(sequence)
                continue
            by_lane.setdefault(lane_of(record, self.lane_count), []).append(record)
        for index, lane_records in by_lane.items():
            self.lanes[index].give(lane_records)
        self.checkpointer.done(filtered)

    def _join_lanes(self) -> None:
        for lane in self.lanes:
            while lane.thread.is_alive():
                lane.thread.join(0.1)
                if self._stopping():
                    self._lanes_stop.set()
