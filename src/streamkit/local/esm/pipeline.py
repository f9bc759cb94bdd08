"""How a mapping's pipeline is wired, what one shard's processing is built from, and the
plain (one batch at a time) loop.

:func:`wire_mapping` turns a mapping's settings, with the runner's :class:`Pacing`, into
its policies once per mapping (a :class:`MappingPipeline`); :meth:`MappingPipeline.shard`
adds one shard's own parts (its id, its stop event, its durable commit). A shard worker
reads its shard with a :class:`~streamkit.streams.reader.ShardReader` and hands it to one of
three loops, by the mapping's settings:

- :func:`run_sequential` -- ParallelizationFactor 1, no tumbling window: poll a batch, process
  it, checkpoint, repeat;
- :class:`~streamkit.local.esm.lanes.LaneScheduler` -- ParallelizationFactor 2-10;
- :class:`~streamkit.local.esm.windows.WindowedShard` -- TumblingWindowInSeconds > 0.

Each loop returns True when the shard was read to its end (a closed shard: its children may
start) and False when it stopped first. :class:`ShardParts` builds the pollers, processors and
the shard's :class:`~streamkit.local.esm.checkpointer.ShardCheckpointer` they use, with the
mapping's policies, so the three agree on everything but their control flow.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from streamkit.local.esm.batcher import BatchPoller, BatchSplit, RecordSource
from streamkit.local.esm.checkpointer import ShardCheckpointer
from streamkit.local.esm.checkpoints import ShardProgress
from streamkit.local.esm.config import MappingConfig
from streamkit.local.esm.destinations import DeliveryPolicy, OnFailureDestination
from streamkit.local.esm.intake import RecordIntake, admitted_as_is
from streamkit.local.esm.processor import (
    BatchOutcome,
    BatchProcessor,
    BisectPolicy,
    FailureReporter,
    InvocationStyle,
    Invoker,
    PlainInvocation,
    ProcessingPolicy,
    RecordAgePolicy,
    RetryDelay,
    RetryPolicy,
    StatsSink,
)
from streamkit.local.esm.stats import Counter
from streamkit.streams.reader import ShardReader
from streamkit.streams.throttling import IdleBackoff

__all__ = ["MappingPipeline", "Pacing", "ShardParts", "run_sequential", "wire_mapping"]

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pacing:
    """The runner's timing, the same for every mapping: how long a failed invoke waits
    before its retry, how an on-failure delivery backs off, how an idle shard's polling slows
    down, and the epoch clock (record age, tumbling windows). Tests shorten or shift these;
    what a mapping itself sets (retries, record age, bisect, ...) is in its config."""

    retry_delay: RetryDelay = field(default_factory=RetryDelay)
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    idle_backoff: Callable[[], IdleBackoff] = IdleBackoff
    clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class MappingPipeline:
    """What every shard of one mapping shares: its settings, its function, its policies and
    where it reports. Built once per mapping by :func:`wire_mapping`; :meth:`shard` adds
    what is one shard's own."""

    config: MappingConfig
    invoker: Invoker
    stats: StatsSink
    policy: ProcessingPolicy
    reporter: FailureReporter
    idle_backoff: Callable[[], IdleBackoff] = IdleBackoff

    def shard(
        self,
        shard_id: str,
        stop: threading.Event,
        commit: Callable[[str], None],
        *,
        progress: Callable[[ShardProgress], None] | None = None,
        resume: ShardProgress | None = None,
    ) -> ShardParts:
        """The parts of one shard: ``commit`` is its durable "every record up to this one
        is done"; ``progress``, when given, its durable "these records are done" (watermark
        and the runs above it, see :mod:`streamkit.local.esm.checkpointer`), which replaces
        ``commit``; ``resume`` what was saved at the last run."""
        return ShardParts(self, shard_id, stop, commit, progress, resume)


def wire_mapping(
    config: MappingConfig,
    *,
    invoker: Invoker,
    stats: StatsSink,
    destination: OnFailureDestination | None = None,
    pacing: Pacing | None = None,
) -> MappingPipeline:
    """The one place where a mapping's settings become its pipeline's policies (as
    LocalStack's event source mapping worker factory builds a poller from a mapping):
    MaximumRetryAttempts, MaximumRecordAgeInSeconds, BisectBatchOnFunctionError,
    ReportBatchItemFailures and the on-failure destination, with the runner's pacing."""
    pacing = pacing or Pacing()
    policy = ProcessingPolicy(
        report_batch_item_failures=config.report_batch_item_failures,
        retry=RetryPolicy(config.max_retry_attempts),
        retry_delay=pacing.retry_delay,
        record_age=RecordAgePolicy(config.max_record_age_s),
        bisect=BisectPolicy(config.bisect),
        clock=pacing.clock,
    )
    reporter = FailureReporter(
        config.function_arn,
        config.event_source_arn,
        stats,
        destination,
        pacing.delivery,
    )
    return MappingPipeline(config, invoker, stats, policy, reporter, pacing.idle_backoff)


@dataclass
class ShardParts:
    """One shard of one mapping: the mapping's pipeline, the shard, its stop and its commit."""

    mapping: MappingPipeline
    shard_id: str
    stop: threading.Event
    commit: Callable[[str], None]  # durable: "every record up to this one is done"
    progress: Callable[[ShardProgress], None] | None = None  # durable: what is done
    resume: ShardProgress | None = None  # saved at the last run

    def __post_init__(self) -> None:
        done_above = self.resume.done_above if self.resume is not None else None
        self.intake = RecordIntake(
            self.config.event_source_arn,
            self.config.filter_patterns,
            on_admit=self.count_polled,
            already_done=done_above.covers if done_above else None,
            label=self.where,
        )

    @property
    def config(self) -> MappingConfig:
        return self.mapping.config

    @property
    def stats(self) -> StatsSink:
        return self.mapping.stats

    @property
    def clock(self) -> Callable[[], float]:
        return self.mapping.policy.clock

    @property
    def idle_backoff(self) -> Callable[[], IdleBackoff]:
        return self.mapping.idle_backoff

    @property
    def label(self) -> str:
        return f"mapping {self.config.uuid[:8]}"

    @property
    def where(self) -> str:
        return f"{self.label} shard {self.shard_id}"

    def count_polled(self, polled: int, filtered: int) -> None:
        self.stats.count(Counter.POLLED, polled)
        if filtered:
            self.stats.count(Counter.FILTERED, filtered)

    def note_gap(self) -> None:
        """Records were trimmed before they were read (the reader logged a warning)."""
        self.stats.count(Counter.TRIMMED_GAPS)

    def poller(
        self,
        source: RecordSource,
        *,
        converted: bool = False,
        backoff: IdleBackoff | None = None,
        split_when: BatchSplit | None = None,
    ) -> BatchPoller:
        """A poller over ``source``: a shard reader (raw records, through the intake), or
        with ``converted`` a lane, whose records went through the intake in the dispatcher."""
        return BatchPoller(
            source,
            batch_size=self.config.batch_size,
            batching_window_s=self.config.max_batching_window_s,
            intake=admitted_as_is if converted else self.intake,
            backoff=backoff or self.idle_backoff(),
            on_gap=None if converted else self.note_gap,
            split_when=split_when,
        )

    def checkpointer(self, capacity: int = 0) -> ShardCheckpointer:
        """The shard's one checkpointer: finished records become ``commit`` calls."""
        return ShardCheckpointer(self.commit, capacity, progress=self.progress, resume=self.resume)

    def processor(
        self,
        checkpointer: ShardCheckpointer,
        *,
        style: InvocationStyle | None = None,
        label: str | None = None,
    ) -> BatchProcessor:
        mapping = self.mapping
        return BatchProcessor(
            invoker=mapping.invoker,
            checkpointer=checkpointer,
            stats=mapping.stats,
            reporter=mapping.reporter,
            policy=mapping.policy,
            label=label or self.label,
            style=style or PlainInvocation(),
        )


def run_sequential(parts: ShardParts, reader: ShardReader) -> bool:
    """One batch at a time: poll, process, checkpoint (ParallelizationFactor 1)."""
    poller = parts.poller(reader)
    processor = parts.processor(parts.checkpointer())
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
