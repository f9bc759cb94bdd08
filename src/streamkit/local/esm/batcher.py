"""The poller stage: turns a shard's records into batches the way Lambda's poller does.

- Polls adaptively: while records flow it reads again at once; when a read comes back empty
  it waits, doubling the wait from ``IdleBackoff.min_delay`` up to ``max_delay`` (AWS polls an
  idle shard about 4 times a second; 250 ms is the default cap).
- Applies the mapping's FilterCriteria before batching: records that do not match are
  dropped here, but their sequence numbers stay in the batch so the checkpoint moves past
  them. A batch whose records were all filtered out is still returned (no records, so no
  invoke) only to advance the checkpoint.
- Closes a batch at BatchSize records, at the 6 MB invoke payload limit, or when the
  batching window (MaximumBatchingWindowInSeconds, from the first record) has elapsed;
  with a window of 0 a batch closes as soon as a read returned records.
  https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventsourcemapping.html#invocation-eventsourcemapping-batching
- Optionally closes a batch where ``split_when`` says the next record may not join it (tumbling
  windows: a batch never spans two windows).

It reads from any :class:`RecordSource`: a shard (:class:`ShardReader`) or, with
ParallelizationFactor, one lane of a shard (:mod:`streamkit.local.esm.lanes`).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from streamkit.streams.reader import ReadResult

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "Batch",
    "BatchPoller",
    "BatchSplit",
    "IdleBackoff",
    "PollCounters",
    "RecordSource",
]

# Lambda's synchronous invocation payload limit, minus the envelope {"Records":[...]}.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024 - 64

RecordFilter = Callable[[Mapping[str, Any]], bool]
RecordConverter = Callable[[Mapping[str, Any]], dict[str, Any]]
# (first record of the batch, next record) -> True when the next record must start a new batch
BatchSplit = Callable[[Mapping[str, Any], Mapping[str, Any]], bool]


class RecordSource(Protocol):
    """Where a poller's records come from (a :class:`ShardReader` has this shape)."""

    @property
    def shard_id(self) -> str: ...

    @property
    def ended(self) -> bool:
        """Nothing more will ever come (a closed shard read to its end)."""
        ...

    def read(self, limit: int) -> ReadResult: ...


@dataclass
class IdleBackoff:
    """How long to wait after an empty read: doubles from ``min_delay`` to ``max_delay``."""

    min_delay: float = 0.01
    max_delay: float = 0.25
    factor: float = 2.0
    _current: float = 0.0

    def next_delay(self) -> float:
        self._current = (
            self.min_delay
            if self._current == 0
            else min(self._current * self.factor, self.max_delay)
        )
        return self._current

    def reset(self) -> None:
        self._current = 0.0


@dataclass
class Batch:
    """Records for one invoke plus the sequence numbers of everything read for it.

    ``records`` are Lambda-shaped and matched the filter; ``sequence_numbers`` lists every
    record read for this batch in shard order, filtered-out ones included.
    """

    shard_id: str
    records: list[dict[str, Any]] = field(default_factory=list)
    sequence_numbers: list[str] = field(default_factory=list)
    payload_bytes: int = 0
    first_read_at: float | None = None

    @property
    def last_sequence_number(self) -> str | None:
        return self.sequence_numbers[-1] if self.sequence_numbers else None

    def checkpoint_before(self, sequence_number: str) -> str | None:
        """The last sequence number read before ``sequence_number`` in this batch (what the
        checkpoint becomes when processing must resume at ``sequence_number``), or None
        when nothing of this batch precedes it."""
        target = int(sequence_number)
        before = None
        for seq in self.sequence_numbers:
            if int(seq) >= target:
                break
            before = seq
        return before


@dataclass
class PollCounters:
    polled: int = 0
    filtered: int = 0


class BatchPoller:
    """Builds batches from one :class:`RecordSource`."""

    def __init__(
        self,
        reader: RecordSource,
        *,
        batch_size: int,
        batching_window_s: float,
        convert: RecordConverter,
        record_filter: RecordFilter | None = None,
        backoff: IdleBackoff | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        on_poll: Callable[[int, int], None] | None = None,
        on_gap: Callable[[], None] | None = None,
        split_when: BatchSplit | None = None,
    ) -> None:
        self.reader = reader
        self.batch_size = batch_size
        self.batching_window_s = batching_window_s
        self.convert = convert
        self.record_filter = record_filter
        self.backoff = backoff or IdleBackoff()
        self.clock = clock
        self.max_payload_bytes = max_payload_bytes
        self.counters = PollCounters()
        # (sequence number, Lambda record or None when filtered out, payload bytes)
        self._carry: deque[tuple[str, dict[str, Any] | None, int]] = deque()
        self._on_poll = on_poll
        self._on_gap = on_gap
        self.split_when = split_when

    @property
    def exhausted(self) -> bool:
        """The shard is closed and every record of it has been handed out."""
        return self.reader.ended and not self._carry

    def next_batch(self, stop: threading.Event, timeout: float | None = None) -> Batch | None:
        """Block until a batch is ready. None if ``stop`` was set or the shard is exhausted
        with nothing pending. With ``timeout`` (seconds), gives up once a read *started after*
        the timeout found nothing more to add, returning the batch so far (or None): so a
        None then means the source was caught up at that moment."""
        batch = Batch(shard_id=self.reader.shard_id)
        deadline = None if timeout is None else self.clock() + timeout
        read_after_deadline = False
        while not stop.is_set():
            if self._fill_from_carry(batch):
                return batch
            if batch.sequence_numbers and self._window_elapsed(batch):
                return batch
            if self.reader.ended or read_after_deadline:
                return batch if batch.sequence_numbers else None
            read_started = self.clock()
            read = self.reader.read(self._read_limit(batch))
            read_after_deadline = deadline is not None and read_started >= deadline
            if read.gap and self._on_gap is not None:
                self._on_gap()
            if read.records:
                self.backoff.reset()
                self._accept(read.records)
                continue
            if batch.sequence_numbers and self.batching_window_s <= 0:
                return batch
            if read.shard_ended or read_after_deadline:
                continue
            stop.wait(self._idle_wait(batch, deadline))
        return None

    def _read_limit(self, batch: Batch) -> int:
        return max(1, self.batch_size - len(batch.records))

    def _accept(self, raw_records: list[dict[str, Any]]) -> None:
        polled = filtered = 0
        for raw in raw_records:
            record = self.convert(raw)
            sequence = record["dynamodb"]["SequenceNumber"]
            polled += 1
            if self.record_filter is not None and not self.record_filter(record):
                filtered += 1
                self._carry.append((sequence, None, 0))
                continue
            size = len(json.dumps(record, separators=(",", ":"))) + 1
            self._carry.append((sequence, record, size))
        self.counters.polled += polled
        self.counters.filtered += filtered
        if self._on_poll is not None:
            self._on_poll(polled, filtered)

    def _fill_from_carry(self, batch: Batch) -> bool:
        """Move carried records into ``batch``; True when the batch must close now."""
        moved_any = False
        while self._carry:
            sequence, record, size = self._carry[0]
            if record is not None:
                if len(batch.records) >= self.batch_size:
                    return True
                if (
                    batch.records
                    and self.split_when is not None
                    and self.split_when(batch.records[0], record)
                ):
                    return True
                if batch.records and batch.payload_bytes + size > self.max_payload_bytes:
                    return True
                batch.records.append(record)
                batch.payload_bytes += size
            batch.sequence_numbers.append(sequence)
            self._carry.popleft()
            moved_any = True
            if batch.first_read_at is None:
                batch.first_read_at = self.clock()
        if len(batch.records) >= self.batch_size:
            return True
        # Window 0: what one read returned is the batch (AWS invokes as soon as it has records).
        return moved_any and self.batching_window_s <= 0

    def _window_elapsed(self, batch: Batch) -> bool:
        if batch.first_read_at is None:
            return False
        return self.clock() - batch.first_read_at >= self.batching_window_s

    def _idle_wait(self, batch: Batch, deadline: float | None) -> float:
        delay = self.backoff.next_delay()
        if batch.first_read_at is not None:
            remaining = self.batching_window_s - (self.clock() - batch.first_read_at)
            delay = max(0.0, min(delay, remaining))
        if deadline is not None:
            delay = max(0.0, min(delay, deadline - self.clock()))
        return delay
