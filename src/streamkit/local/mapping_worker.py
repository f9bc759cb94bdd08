"""Running one event source mapping: its function, its stream, one thread per shard.

:class:`MappingWorker` is what the runner starts for an enabled mapping. Its supervisor thread
loads the function's deployed code (``fetch_function`` + a warm-up, so broken code is reported
at once instead of being retried invoke after invoke), describes the stream, and starts a
:class:`ShardWorker` for every shard whose parent is done (lineage: a parent shard is finished
before its children start). It re-describes the stream every ``refresh_interval`` to pick up
new shards, and reports problems (missing stream, code that cannot be loaded) on the
mapping's :class:`MappingStats` until they go away.

A :class:`ShardWorker` is poller -> processor for one shard: it resumes after the shard's
checkpoint (or at the mapping's StartingPosition), and checkpoints as the processor says.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from streamkit.exceptions import FunctionCodeError, StreamNotFoundError
from streamkit.local.checkpoints import CheckpointStore
from streamkit.local.destinations import DeliveryPolicy, OnFailureDestination, destination_for
from streamkit.local.mapping_config import MappingConfig
from streamkit.local.poller import BatchPoller, IdleBackoff
from streamkit.local.processor import (
    BatchOutcome,
    BatchProcessor,
    BisectPolicy,
    Invoker,
    LambdaRecordConverter,
    RecordAgePolicy,
    RetryDelay,
    RetryPolicy,
    build_record_filter,
)
from streamkit.local.stream_reader import (
    Shard,
    ShardReader,
    StartPosition,
    StreamsClient,
    describe_stream,
)

__all__ = ["InvokerFactory", "MappingStats", "MappingWorker", "ShardWorker", "WorkerSettings"]

LOG = logging.getLogger("streamkit.local.runner")

COUNTERS = (
    "polled",
    "filtered",
    "invoked",
    "succeeded",
    "failed",
    "sent_to_destination",
    "discarded",
)


class MappingStats:
    """Live counters of one mapping, shared by its threads (and kept across restarts).

    ``polled``, ``filtered``, ``succeeded``, ``sent_to_destination`` and ``discarded``
    (exhausted without a destination) count records; ``invoked`` and ``failed`` count invokes.
    ``iterator_age_ms`` is the age of the newest record of the last invoke when it was made
    (Lambda's IteratorAge). ``state`` is one of starting, polling, error, invalid, disabled,
    stopped, deleted.
    """

    def __init__(self, uuid: str, function_arn: str = "", event_source_arn: str = "") -> None:
        self.uuid = uuid
        self.function_arn = function_arn
        self.event_source_arn = event_source_arn
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(COUNTERS, 0)
        self.iterator_age_ms: float | None = None
        self.last_error: str | None = None
        self.state = "starting"
        self.shards_ready = 0

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def note_error(self, message: str | None) -> None:
        if message is not None:
            self.last_error = message

    def note_iterator_age(self, age_ms: float) -> None:
        self.iterator_age_ms = age_ms

    def set_state(self, state: str, error: str | None = None) -> None:
        with self._lock:
            changed = state != self.state or (error is not None and error != self.last_error)
            self.state = state
            if error is not None:
                self.last_error = error
        if changed:
            log = LOG.error if state in ("error", "invalid") else LOG.info
            log("mapping %s: %s%s", self.uuid, state, f" -- {error}" if error else "")

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "uuid": self.uuid,
                "function_arn": self.function_arn,
                "event_source_arn": self.event_source_arn,
                "state": self.state,
                **self._counts,
                "iterator_age_ms": self.iterator_age_ms,
                "last_error": self.last_error,
            }

    def status_line(self) -> str:
        s = self.snapshot()
        age = "-" if s["iterator_age_ms"] is None else f"{s['iterator_age_ms']:.0f}ms"
        function = s["function_arn"].rsplit(":", 1)[-1]
        table = s["event_source_arn"].split("/")[1] if "/" in s["event_source_arn"] else "?"
        line = (
            f"mapping {self.uuid[:8]} {table} -> {function}: {s['state']} polled={s['polled']} "
            f"filtered={s['filtered']} invoked={s['invoked']} succeeded={s['succeeded']} "
            f"failed={s['failed']} to_destination={s['sent_to_destination']} "
            f"discarded={s['discarded']} iterator_age={age}"
        )
        if s["last_error"]:
            line += f" last_error={s['last_error']!r}"
        return line


class InvokerFactory(Protocol):
    """Loads a function's deployed code and returns something to invoke it with (and close)."""

    def __call__(self, function_arn: str, *, max_concurrency: int) -> Invoker: ...


@dataclass
class WorkerSettings:
    """What every mapping worker shares: clients, state, policies."""

    streams_client: StreamsClient
    client_for: Callable[[str], Any]  # boto3 client by service name (destinations)
    checkpoints: CheckpointStore
    invoker_factory: InvokerFactory
    state_dir: Path
    refresh_interval: float = 2.0
    retry_delay: RetryDelay = field(default_factory=RetryDelay)
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    idle_backoff: Callable[[], IdleBackoff] = IdleBackoff
    stop_grace_s: float = 2.0


class ShardWorker:
    """Poll -> process -> checkpoint for one shard, on its own thread."""

    def __init__(
        self,
        config: MappingConfig,
        shard: Shard,
        stream_label: str,
        invoker: Invoker,
        destination: OnFailureDestination | None,
        settings: WorkerSettings,
        stats: MappingStats,
        stop: threading.Event,
    ) -> None:
        self.config = config
        self.shard = shard
        self.stream_label = stream_label
        self.invoker = invoker
        self.destination = destination
        self.settings = settings
        self.stats = stats
        self.stop = stop
        self.ready = threading.Event()  # the shard iterator is acquired (LATEST is anchored)
        self.finished = False  # a closed shard read to its end
        self.thread = threading.Thread(
            target=self._run, name=f"shard-{config.uuid[:8]}-{shard.shard_id[-8:]}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            try:
                self._process_from_checkpoint()
                return
            except StreamNotFoundError as exc:
                self.stats.set_state("error", str(exc))
                return
            except Exception as exc:
                # The endpoint went away, throttled us, or a bug: start over from the
                # checkpoint (records held in memory are read again: at-least-once).
                failures += 1
                delay = min(30.0, 0.2 * 2 ** min(failures, 8)) * random.uniform(0.5, 1.0)
                LOG.warning(
                    "mapping %s shard %s: %s: %s; resuming from the checkpoint in %.1fs",
                    self.config.uuid[:8], self.shard.shard_id, type(exc).__name__, exc, delay,
                    exc_info=LOG.isEnabledFor(logging.DEBUG),
                )  # fmt: skip
                self.stats.note_error(f"{type(exc).__name__}: {exc}")
                self.stop.wait(delay)

    def _start_position(self) -> StartPosition:
        store = self.settings.checkpoints
        checkpoint = store.load(self.config.uuid, self.config.event_source_arn, self.shard.shard_id)
        if checkpoint is not None and checkpoint.stream_label == self.stream_label:
            return StartPosition.after(checkpoint.sequence_number)
        if checkpoint is not None:
            LOG.warning(
                "mapping %s shard %s: ignoring a checkpoint of stream generation %s (now %s)",
                self.config.uuid[:8], self.shard.shard_id, checkpoint.stream_label, self.stream_label,
            )  # fmt: skip
        if self.shard.parent_shard_id is not None:
            return StartPosition("TRIM_HORIZON")  # a child continues where its parent ended
        return StartPosition(self.config.starting_position)

    def _commit(self, sequence_number: str) -> None:
        self.settings.checkpoints.save(
            self.config.uuid,
            self.config.event_source_arn,
            self.shard.shard_id,
            stream_label=self.stream_label,
            sequence_number=sequence_number,
        )

    def _process_from_checkpoint(self) -> None:
        config = self.config
        start = self._start_position()
        reader = ShardReader(
            self.settings.streams_client, config.event_source_arn, self.shard.shard_id, start
        )
        reader.acquire()
        poller = BatchPoller(
            reader,
            batch_size=config.batch_size,
            batching_window_s=config.max_batching_window_s,
            convert=LambdaRecordConverter(config.event_source_arn),
            record_filter=build_record_filter(config.filter_patterns),
            backoff=self.settings.idle_backoff(),
            on_poll=self._count_polled,
        )
        processor = BatchProcessor(
            function_arn=config.function_arn,
            stream_arn=config.event_source_arn,
            invoker=self.invoker,
            commit=self._commit,
            stats=self.stats,
            report_batch_item_failures=config.report_batch_item_failures,
            retry=RetryPolicy(config.max_retry_attempts),
            retry_delay=self.settings.retry_delay,
            record_age=RecordAgePolicy(config.max_record_age_s),
            bisect=BisectPolicy(config.bisect),
            destination=self.destination,
            delivery=self.settings.delivery,
            label=f"mapping {config.uuid[:8]}",
        )
        LOG.info(
            "mapping %s shard %s: reading from %s",
            config.uuid[:8],
            self.shard.shard_id,
            start.describe(),
        )
        self.ready.set()
        while not self.stop.is_set():
            batch = poller.next_batch(self.stop)
            if batch is None:
                if poller.exhausted:
                    self._finish()
                    return
                continue
            if processor.process(batch, self.stop) is BatchOutcome.ABANDONED:
                LOG.info(
                    "mapping %s shard %s: stopped mid-batch; its records will be read again",
                    config.uuid[:8], self.shard.shard_id,
                )  # fmt: skip
                return

    def _count_polled(self, polled: int, filtered: int) -> None:
        self.stats.count("polled", polled)
        if filtered:
            self.stats.count("filtered", filtered)

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


class MappingWorker:
    """Runs one enabled mapping until ``stop``."""

    def __init__(
        self, config: MappingConfig, settings: WorkerSettings, stats: MappingStats
    ) -> None:
        self.config = config
        self.settings = settings
        self.stats = stats
        self.stop_event = threading.Event()
        self.shards: dict[str, ShardWorker] = {}
        self.invoker: Invoker | None = None
        self.destination: OnFailureDestination | None = None
        self.thread = threading.Thread(
            target=self._supervise, name=f"mapping-{config.uuid[:8]}", daemon=True
        )

    def start(self) -> None:
        self.stats.function_arn = self.config.function_arn
        self.stats.event_source_arn = self.config.event_source_arn
        self.stats.set_state("starting")
        self.thread.start()

    def stop(self) -> None:
        """Stop polling; give in-flight invokes ``stop_grace_s`` to finish, then abandon them
        (their batches are not checkpointed and will be read again)."""
        self.stop_event.set()
        deadline = time.monotonic() + self.settings.stop_grace_s
        for worker in list(self.shards.values()):
            worker.thread.join(max(0.0, deadline - time.monotonic()))
        # The supervisor finishes its current step (it may be loading the function) before
        # the invoker is closed, so no invoker outlives the mapping.
        self.thread.join(30.0)
        self._close_invoker()
        for worker in list(self.shards.values()):
            worker.thread.join(5.0)

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def _close_invoker(self) -> None:
        invoker, self.invoker = self.invoker, None
        close = getattr(invoker, "close", None)
        if close is not None:
            close()

    def _supervise(self) -> None:
        code_failures = 0
        while not self.stop_event.is_set():
            delay = self.settings.refresh_interval
            try:
                self._step()
                code_failures = 0
            except FunctionCodeError as exc:
                # Broken code stays broken until redeployed (which restarts the mapping), so
                # loading it again backs off: every attempt starts a Python process.
                code_failures += 1
                delay = min(60.0, delay * 2 ** min(code_failures - 1, 5))
                self._close_invoker()
                self.stats.set_state("error", f"cannot run the function's deployed code: {exc}")
            except StreamNotFoundError as exc:
                self.stats.set_state("error", str(exc))
            except Exception as exc:
                LOG.debug("mapping %s supervisor error", self.config.uuid, exc_info=True)
                self.stats.set_state("error", f"{type(exc).__name__}: {exc}")
            self.stop_event.wait(delay)

    def _step(self) -> None:
        config = self.config
        description = describe_stream(self.settings.streams_client, config.event_source_arn)
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
                config, shard, description.stream_label, self.invoker, self.destination,
                self.settings, self.stats, self.stop_event,
            )  # fmt: skip
            self.shards[shard.shard_id] = worker
            worker.start()
            worker.ready.wait(10.0)
        running = [w for w in self.shards.values() if not w.finished]
        if all(w.ready.is_set() for w in running):
            self.stats.set_state("polling")

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
