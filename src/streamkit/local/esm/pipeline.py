"""What one shard's processing is built from, and the plain (one batch at a time) loop.

A shard worker reads its shard with a :class:`~streamkit.streams.reader.ShardReader` and
hands it to one of three loops, by the mapping's settings:

- :func:`run_sequential` -- ParallelizationFactor 1, no tumbling window: poll a batch, process
  it, checkpoint, repeat;
- :class:`~streamkit.local.esm.lanes.LaneScheduler` -- ParallelizationFactor 2-10;
- :class:`~streamkit.local.esm.windows.WindowedShard` -- TumblingWindowInSeconds > 0.

Each loop returns True when the shard was read to its end (a closed shard: its children may
start) and False when it stopped first. :class:`ShardParts` builds the pollers and processors
they use, with the mapping's policies, so the three agree on everything but their control flow.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streamkit.local.esm.batcher import BatchPoller, BatchSplit, IdleBackoff, RecordSource
from streamkit.local.esm.config import MappingConfig
from streamkit.local.esm.destinations import DeliveryPolicy, OnFailureDestination
from streamkit.local.esm.processor import (
    BatchOutcome,
    BatchProcessor,
    BisectPolicy,
    FailureReporter,
    InvocationStyle,
    Invoker,
    PlainInvocation,
    RecordAgePolicy,
    RetryDelay,
    RetryPolicy,
    StatsSink,
)
from streamkit.streams.envelope import LambdaRecordConverter, build_record_filter
from streamkit.streams.reader import ShardReader

__all__ = ["ShardParts", "run_sequential"]

LOG = logging.getLogger("streamkit.local.runner")

RecordFilter = Callable[[Mapping[str, Any]], bool]


@dataclass
class ShardParts:
    """One shard of one mapping: its settings, collaborators and where checkpoints go."""

    config: MappingConfig
    shard_id: str
    invoker: Invoker
    stats: StatsSink
    stop: threading.Event
    commit: Callable[[str], None]  # durable: "every record up to this one is done"
    destination: OnFailureDestination | None = None
    retry_delay: RetryDelay = field(default_factory=RetryDelay)
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    idle_backoff: Callable[[], IdleBackoff] = IdleBackoff
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        self.convert = LambdaRecordConverter(self.config.event_source_arn)
        self.record_filter: RecordFilter | None = build_record_filter(self.config.filter_patterns)

    @property
    def label(self) -> str:
        return f"mapping {self.config.uuid[:8]}"

    @property
    def where(self) -> str:
        return f"{self.label} shard {self.shard_id}"

    def count_polled(self, polled: int, filtered: int) -> None:
        self.stats.count("polled", polled)
        if filtered:
            self.stats.count("filtered", filtered)

    def note_gap(self) -> None:
        """Records were trimmed before they were read (the reader logged a warning)."""
        self.stats.count("trimmed_gaps")

    def poller(
        self,
        source: RecordSource,
        *,
        converted: bool = False,
        backoff: IdleBackoff | None = None,
        split_when: BatchSplit | None = None,
    ) -> BatchPoller:
        """A poller over ``source``: a shard reader (raw records, filtered and counted here),
        or with ``converted`` a lane, whose records were converted, filtered and counted by
        the shard's dispatcher."""
        return BatchPoller(
            source,
            batch_size=self.config.batch_size,
            batching_window_s=self.config.max_batching_window_s,
            convert=_as_is if converted else self.convert,
            record_filter=None if converted else self.record_filter,
            backoff=backoff or self.idle_backoff(),
            on_poll=None if converted else self.count_polled,
            on_gap=None if converted else self.note_gap,
            split_when=split_when,
        )

    def processor(
        self,
        commit: Callable[[str], None],
        *,
        style: InvocationStyle | None = None,
        label: str | None = None,
    ) -> BatchProcessor:
        config = self.config
        return BatchProcessor(
            function_arn=config.function_arn,
            stream_arn=config.event_source_arn,
            invoker=self.invoker,
            commit=commit,
            stats=self.stats,
            report_batch_item_failures=config.report_batch_item_failures,
            retry=RetryPolicy(config.max_retry_attempts),
            retry_delay=self.retry_delay,
            record_age=RecordAgePolicy(config.max_record_age_s),
            bisect=BisectPolicy(config.bisect),
            destination=self.destination,
            delivery=self.delivery,
            clock=self.clock,
            label=label or self.label,
            style=style or PlainInvocation(),
        )

    def reporter(self) -> FailureReporter:
        config = self.config
        return FailureReporter(
            config.function_arn,
            config.event_source_arn,
            self.stats,
            self.destination,
            self.delivery,
        )


def _as_is(record: Mapping[str, Any]) -> dict[str, Any]:
    assert isinstance(record, dict)
    return record


def run_sequential(parts: ShardParts, reader: ShardReader) -> bool:
    """One batch at a time: poll, process, checkpoint (ParallelizationFactor 1)."""
    poller = parts.poller(reader)
    processor = parts.processor(parts.commit)
    while not parts.stop.is_set():
        batch = poller.next_batch(parts.stop)
        if batch is None:
            if poller.exhausted:
                return True
            continue
        if processor.process(batch, parts.stop) is BatchOutcome.ABANDONED:
            LOG.info("%s: stopped mid-batch; its records will be read again", parts.where)
            return False
    return False
