"""Running one event source mapping: its function, its stream, one thread per shard.

:class:`MappingWorker` is what the runner starts for an enabled mapping. Its supervisor thread
loads the function's deployed code (``fetch_function`` + a warm-up, so broken code is reported
at once instead of being retried invoke after invoke), describes the stream, and starts a
:class:`ShardWorker` for every shard whose parent is done (lineage: a parent shard is finished
before its children start). It re-describes the stream every ``refresh_interval`` to pick up
new shards, and reports problems (missing stream, code that cannot be loaded) on the
mapping's :class:`MappingStats` until they go away.

A :class:`ShardWorker` runs one shard: it resumes after the shard's checkpoint (or at the
mapping's StartingPosition) and hands the reader to the loop the mapping's settings call for
(:mod:`streamkit.local.esm.pipeline`): one batch at a time, ParallelizationFactor lanes
(:mod:`streamkit.local.esm.lanes`), or tumbling windows (:mod:`streamkit.local.esm.windows`).

When the stream disappears (the table was deleted, or deleted and made again: its stream has a
new label, and the mapping's ARN names the old one), the mapping stops cleanly: its shard
workers end, its function workers are shut down, and it reports "Stream not found: <arn>"
until the stream is back or the mapping is changed or deleted. Checkpoints are keyed by stream
ARN and carry the stream label, so positions of one stream generation are never used for
another.
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
from streamkit.local.esm.batcher import IdleBackoff
from streamkit.local.esm.checkpoints import CheckpointStore
from streamkit.local.esm.config import MappingConfig
from streamkit.local.esm.destinations import DeliveryPolicy, OnFailureDestination, destination_for
from streamkit.local.esm.lanes import LaneScheduler
from streamkit.local.esm.pipeline import ShardParts, run_sequential
from streamkit.local.esm.processor import Invoker, RetryDelay
from streamkit.local.esm.windows import WindowedShard
from streamkit.streams.reader import (
    Shard,
    ShardReader,
    StartPosition,
    StreamsClient,
    describe_stream,
)
from streamkit.streams.throttling import ShardReadGate, ThrottleBackoff

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
    "throttled",
    "trimmed_gaps",
    "windows_closed",
)


class MappingStats:
    """Live counters of one mapping, shared by its threads (and kept across restarts).

    ``polled``, ``filtered``, ``succeeded``, ``sent_to_destination`` and ``discarded``
    (exhausted without a destination) count records; ``invoked`` and ``failed`` count invokes
    (a tumbling window's final invoke included). ``throttled`` counts throttled Streams calls,
    ``trimmed_gaps`` the times records were trimmed before they could be read (reading resumed
    at TRIM_HORIZON), ``windows_closed`` successful final invokes of tumbling windows.
    ``shards_running`` is how many shard workers run now. ``iterator_age_ms`` is the age of the
    newest record of the last invoke when it was made (Lambda's IteratorAge). ``state`` is one
    of starting, polling, error, invalid, disabled, stopped, deleted.
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
        self.shards_running = 0

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] = self._counts.get(name, 0) + n

    def note_error(self, message: str | None) -> None:
        if message is not None:
            self.last_error = message

    def note_iterator_age(self, age_ms: float) -> None:
        self.iterator_age_ms = age_ms

    def shard_started(self) -> None:
        with self._lock:
            self.shards_running += 1

    def shard_ended(self) -> None:
        with self._lock:
            self.shards_running -= 1

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
                "shards_running": self.shards_running,
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
        for extra in ("throttled", "trimmed_gaps", "windows_closed"):
            if s[extra]:
                line += f" {extra}={s[extra]}"
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
    read_gate: ShardReadGate = field(default_factory=ShardReadGate)
    throttle_backoff: ThrottleBackoff = field(default_factory=ThrottleBackoff)
    clock: Callable[[], float] = time.time  # epoch seconds: record age, tumbling windows


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
        self.stream_gone = False
        self.thread = threading.Thread(
            target=self._run, name=f"shard-{config.uuid[:8]}-{shard.shard_id[-8:]}", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        self.stats.shard_started()
        gate = self.settings.read_gate
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
                self.stats.set_state("error", str(exc))
                self.stream_gone = True
                return
            except Exception as exc:
                if self.stop.is_set():
                    return
                # The endpoint went away or a bug: start over from the checkpoint (records
                # held in memory are read again: at-least-once). Throttling is waited out
                # where it happens (ThrottleBackoff) and does not get here.
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
            self.settings.streams_client,
            config.event_source_arn,
            self.shard.shard_id,
            start,
            gate=self.settings.read_gate,
            backoff=self.settings.throttle_backoff,
            stop=self.stop,
            on_throttle=self._count_throttle,
        )
        parts = ShardParts(
            config=config,
            shard_id=self.shard.shard_id,
            invoker=self.invoker,
            stats=self.stats,
            stop=self.stop,
            commit=self._commit,
            destination=self.destination,
            retry_delay=self.settings.retry_delay,
            delivery=self.settings.delivery,
            idle_backoff=self.settings.idle_backoff,
            clock=self.settings.clock,
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
        self.stats.count("throttled")
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
        self._shards_stop.set()
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
        code_failures = gone_checks = 0
        while not self.stop_event.is_set():
            delay = self.settings.refresh_interval
            try:
                self._step()
                code_failures = gone_checks = 0
            except FunctionCodeError as exc:
                # Broken code stays broken until redeployed (which restarts the mapping), so
                # loading it again backs off: every attempt starts a Python process.
                code_failures += 1
                delay = min(60.0, delay * 2 ** min(code_failures - 1, 5))
                self._close_invoker()
                self.stats.set_state("error", f"cannot run the function's deployed code: {exc}")
            except StreamNotFoundError as exc:
                # A deleted table's stream never comes back (a new table has a new label):
                # look again now and then, in case it was only briefly unreadable.
                gone_checks += 1
                delay = min(30.0, delay * 2 ** min(gone_checks - 1, 5))
                self._stop_shards_for_gone_stream(exc)
            except Exception as exc:
                LOG.debug("mapping %s supervisor error", self.config.uuid, exc_info=True)
                self.stats.set_state("error", f"{type(exc).__name__}: {exc}")
            self.stop_event.wait(delay)

    def _stop_shards_for_gone_stream(self, exc: StreamNotFoundError) -> None:
        """Stop every shard worker and the function's workers; report the missing stream."""
        self.stats.set_state("error", str(exc))
        if not self.shards and self.invoker is None:
            return
        self._shards_stop.set()
        deadline = time.monotonic() + self.settings.stop_grace_s
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
            self.settings.streams_client,
            config.event_source_arn,
            backoff=self.settings.throttle_backoff,
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
                config, shard, description.stream_label, self.invoker, self.destination,
                self.settings, self.stats, self._shards_stop,
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
