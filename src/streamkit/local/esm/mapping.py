"""Running one event source mapping: its function, its stream, one thread per shard.

:class:`MappingWorker` is what the runner starts for an enabled mapping, with the
:class:`WorkerSettings` all of the runner's mappings share (how it reaches its streams
(:class:`StreamAccess`), its checkpoints, its function loader and its pacing). Its supervisor thread
loads the function's deployed code (``fetch_function`` + a warm-up, so broken code is reported
at once instead of being retried invoke after invoke), describes the stream, and starts a
:class:`ShardWorker` for every shard whose parent is done (lineage: a parent shard is finished
before its children start). It re-describes the stream every ``refresh_interval`` to pick up
new shards, and reports problems (missing stream, code that cannot be loaded) on the
mapping's :class:`MappingStats` until they go away.

A :class:`~streamkit.local.esm.shard.ShardWorker` runs one shard (:mod:`.shard`); the
mapping's counters and state are :class:`~streamkit.local.esm.stats.MappingStats`.

When the stream disappears (the table was deleted, or deleted and made again: its stream has a
new label, and the mapping's ARN names the old one), the mapping stops cleanly: its shard
workers end, its function workers are shut down, and it reports "Stream not found: <arn>"
until the stream is back or the mapping is changed or deleted. Checkpoints are keyed by stream
ARN and carry the stream label, so positions of one stream generation are never used for
another.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from streamkit.exceptions import FunctionCodeError, StreamNotFoundError
from streamkit.local.esm.checkpoints import CheckpointStore
from streamkit.local.esm.config import MappingConfig
from streamkit.local.esm.destinations import OnFailureDestination, destination_for
from streamkit.local.esm.pipeline import MappingPipeline, Pacing, wire_mapping
from streamkit.local.esm.processor import Invoker
from streamkit.local.esm.shard import ShardWorker
from streamkit.local.esm.stats import MappingState, MappingStats
from streamkit.streams.backoff import Backoff
from streamkit.streams.reader import (
    Shard,
    StreamsClient,
    describe_stream,
)
from streamkit.streams.throttling import ShardReadGate, ThrottleBackoff

__all__ = ["InvokerFactory", "MappingWorker", "StreamAccess", "WorkerSettings"]

LOG = logging.getLogger(__name__)

# How long a stopping mapping lets in-flight invokes finish before abandoning them.
_STOP_GRACE_S = 2.0


class InvokerFactory(Protocol):
    """Loads a function's deployed code and returns something to invoke it with (and close)."""

    def __call__(self, function_arn: str, *, max_concurrency: int) -> Invoker: ...


@dataclass(frozen=True)
class StreamAccess:
    """How the runner reaches its streams: the client, the gate that keeps every shard at
    AWS's two readers, and the backoff that waits out a throttled call. One per runner, so
    all its mappings take turns per shard."""

    client: StreamsClient
    gate: ShardReadGate = field(default_factory=ShardReadGate)
    backoff: ThrottleBackoff = field(default_factory=ThrottleBackoff)


@dataclass(frozen=True)
class WorkerSettings:
    """What every mapping worker of one runner shares. What differs per mapping is its
    :class:`~streamkit.local.esm.config.MappingConfig`."""

    streams: StreamAccess
    checkpoints: CheckpointStore
    invoker_factory: InvokerFactory
    client_for: Callable[[str], Any]  # boto3 client by service name (destinations)
    pacing: Pacing = field(default_factory=Pacing)
    refresh_interval: float = 2.0  # how often the stream is described again (new shards)


class MappingWorker:
    """Runs one enabled mapping until ``stop``."""

    def __init__(
        self, config: MappingConfig, settings: WorkerSettings, stats: MappingStats
    ) -> None:
        self.config = config
        self.settings = settings
        self.stats = stats
        self.stop_event = threading.Event()
        # Stops the current generation of shard workers: all of them at mapping stop, or
        # when the stream is gone (a later generation gets a fresh event).
        self._shards_stop = threading.Event()
        self.shards: dict[str, ShardWorker] = {}
        self.invoker: Invoker | None = None
        self.destination: OnFailureDestination | None = None
        self._pipeline: MappingPipeline | None = None
        self.thread = threading.Thread(
            target=self._supervise, name=f"mapping-{config.uuid[:8]}", daemon=True
        )

    def start(self) -> None:
        self.stats.function_arn = self.config.function_arn
        self.stats.event_source_arn = self.config.event_source_arn
        self.stats.set_state(MappingState.STARTING)
        self.thread.start()

    def stop(self) -> None:
        """Stop polling; give in-flight invokes ``_STOP_GRACE_S`` to finish, then abandon them
        (their batches are not checkpointed and will be read again)."""
        self.stop_event.set()
        self._shards_stop.set()
        deadline = time.monotonic() + _STOP_GRACE_S
        for worker in list(self.shards.values()):
            worker.thread.join(max(0.0, deadline - time.monotonic()))
        # The supervisor finishes its current step (it may be loading the function) before
        # the invoker is closed, so no invoker outlives the mapping.
        self.thread.join(30.0)
        self._close_invoker()
        for worker in list(self.shards.values()):
            worker.thread.join(5.0)

    def _close_invoker(self) -> None:
        invoker, self.invoker = self.invoker, None
        close = getattr(invoker, "close", None)
        if close is not None:
            close()

    def _supervise(self) -> None:
        refresh = self.settings.refresh_interval
        # Backing off grows the refresh interval up to 32 times (and at most 60 s / 30 s).
        reload_code = Backoff(refresh, min(60.0, refresh * 32))
        recheck_stream = Backoff(refresh, min(30.0, refresh * 32))
        code_failures = gone_checks = 0
        while not self.stop_event.is_set():
            delay = refresh
            try:
                self._step()
                code_failures = gone_checks = 0
            except FunctionCodeError as exc:
                # Broken code stays broken until redeployed (which restarts the mapping), so
                # loading it again backs off: every attempt starts a Python process.
                code_failures += 1
                delay = reload_code.delay(code_failures)
                self._close_invoker()
                self.stats.set_state(
                    MappingState.ERROR, f"cannot run the function's deployed code: {exc}"
                )
            except StreamNotFoundError as exc:
                # A deleted table's stream never comes back (a new table has a new label):
                # look again now and then, in case it was only briefly unreadable.
                gone_checks += 1
                delay = recheck_stream.delay(gone_checks)
                self._stop_shards_for_gone_stream(exc)
            except Exception as exc:
                LOG.debug("mapping %s supervisor error", self.config.uuid, exc_info=True)
                self.stats.set_state(MappingState.ERROR, f"{type(exc).__name__}: {exc}")
            self.stop_event.wait(delay)

    def _stop_shards_for_gone_stream(self, exc: StreamNotFoundError) -> None:
        """Stop every shard worker and the function's workers; report the missing stream."""
        self.stats.set_state(MappingState.ERROR, str(exc))
        if not self.shards and self.invoker is None:
            return
        self._shards_stop.set()
        deadline = time.monotonic() + _STOP_GRACE_S
        for worker in list(self.shards.values()):
            worker.thread.join(max(0.0, deadline - time.monotonic()))
        self._close_invoker()  # in-flight invokes end now; their batches are not checkpointed
        for worker in list(self.shards.values()):
            worker.thread.join(5.0)
        self.shards.clear()
        self._shards_stop = threading.Event()
        LOG.info("mapping %s: stopped reading %s", self.config.uuid[:8], exc.stream_arn)

    def _step(self) -> None:
        config = self.config
        if any(worker.stream_gone for worker in self.shards.values()):
            raise StreamNotFoundError(config.event_source_arn)
        description = describe_stream(
            self.settings.streams.client,
            config.event_source_arn,
            backoff=self.settings.streams.backoff,
            stop=self.stop_event,
        )
        if self.invoker is None and not self.stop_event.is_set():
            open_shards = sum(1 for s in description.shards if not s.is_closed)
            concurrency = max(1, open_shards) * config.parallelization_factor
            self.invoker = self.settings.invoker_factory(
                config.function_arn, max_concurrency=min(concurrency, 32)
            )
        if self.destination is None and config.on_failure_destination:
            self.destination = destination_for(
                config.on_failure_destination,
                client_for=self.settings.client_for,
                mapping_uuid=config.uuid,
            )
        if self.invoker is None:
            return
        for shard_id, worker in list(self.shards.items()):
            if not worker.thread.is_alive() and not worker.finished:
                del self.shards[shard_id]  # it gave up, but the stream is there: start it again
        finished = {shard_id for shard_id, worker in self.shards.items() if worker.finished}
        for shard in description.shards:
            if shard.shard_id in self.shards or self.stop_event.is_set():
                continue
            if not self._parent_done(shard, description.shards, finished, description.stream_label):
                continue
            if self._already_finished(shard, description.stream_label):
                continue
            worker = ShardWorker(
                self._wired(self.invoker), shard, description.stream_label,
                self.settings, self.stats, self._shards_stop,
            )  # fmt: skip
            self.shards[shard.shard_id] = worker
            worker.start()
            worker.ready.wait(10.0)
        running = [w for w in self.shards.values() if not w.finished]
        if all(w.ready.is_set() for w in running):
            self.stats.set_state(MappingState.POLLING)

    def _wired(self, invoker: Invoker) -> MappingPipeline:
        """The mapping's pipeline, wired once per invoker (a stream that went away closes
        the invoker; the next one gets a pipeline of its own)."""
        if self._pipeline is None or self._pipeline.invoker is not invoker:
            self._pipeline = wire_mapping(
                self.config,
                invoker=invoker,
                stats=self.stats,
                destination=self.destination,
                pacing=self.settings.pacing,
            )
        return self._pipeline

    def _parent_done(
        self, shard: Shard, shards: tuple[Shard, ...], finished: set[str], label: str
    ) -> bool:
        parent = shard.parent_shard_id
        if parent is None or parent in finished:
            return True
        if all(s.shard_id != parent for s in shards):
            return True  # the parent was trimmed away (older than 24 h)
        return self.settings.checkpoints.is_shard_finished(
            self.config.uuid, self.config.event_source_arn, parent, stream_label=label
        )

    def _already_finished(self, shard: Shard, label: str) -> bool:
        return shard.is_closed and self.settings.checkpoints.is_shard_finished(
            self.config.uuid, self.config.event_source_arn, shard.shard_id, stream_label=label
        )
