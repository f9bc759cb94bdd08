"""``streamkit run``: execute every enabled event source mapping of an endpoint, as Lambda does.

The :class:`Runner` reconciles every ``reconcile_interval`` seconds: it lists the endpoint's
mappings through the Lambda API (ListEventSourceMappings, every page), whatever created them
(boto3, Terraform, the CLI), and starts, restarts or stops a :class:`MappingWorker` per
DynamoDB-stream mapping:

- a new enabled mapping starts (from its checkpoint if it has one);
- a changed mapping (any setting, or the function's deployed code: CodeSha256) restarts
  from its checkpoint, with the new settings and code;
- a disabled or deleted mapping stops (its checkpoints stay: re-enabling resumes);
- a mapping whose settings are out of AWS's ranges is reported ("invalid"), never run.

Every mapping setting is honoured, ParallelizationFactor (:mod:`.lanes`) and
TumblingWindowInSeconds (:mod:`.windows`) included; the mappings of one runner share a gate
that keeps each shard at two concurrent readers (:mod:`.throttling`).

Use it in-process (tests, tools)::

    with Runner(endpoint_url, state_dir=tmp) as runner:      # starts a background thread
        runner.wait_until(lambda stats: stats[uuid]["succeeded"] >= 3, timeout=10)

``Runner(..., console="127.0.0.1:0")`` also serves the web console (:mod:`streamkit.console`)
while it runs, at ``runner.console_url``.

or from the command line: ``streamkit run --endpoint-url URL [--state-dir DIR]``, which runs
until SIGINT/SIGTERM and then stops cleanly (an in-flight batch gets a short grace period to
finish; otherwise it is abandoned without a checkpoint and read again next time).

A running runner holds its state directory (:mod:`.state_lock`): a second runner on the same
directory, or one started while the workers of a killed runner still run, waits a few seconds
and then refuses to start (:class:`~.state_lock.StateDirectoryBusyError`).
"""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from streamkit.exceptions import InvalidParameterValueError
from streamkit.local.esm.checkpoints import CheckpointStore
from streamkit.local.esm.config import MappingConfig, is_dynamodb_stream_arn
from streamkit.local.esm.destinations import DeliveryPolicy
from streamkit.local.esm.mapping import (
    InvokerFactory,
    MappingWorker,
    StreamAccess,
    WorkerSettings,
)
from streamkit.local.esm.pipeline import Pacing
from streamkit.local.esm.processing_results import ProcessingResultReporter
from streamkit.local.esm.processor import Invoker, RetryDelay
from streamkit.local.esm.state_lock import StateDirectoryBusyError, StateDirectoryLock
from streamkit.local.esm.stats import MappingState, MappingStats
from streamkit.local.invoker.log_shipper import LogShipper, logs_client
from streamkit.streams.throttling import IdleBackoff, ThrottleBackoff

__all__ = ["Runner", "cli_main"]

LOG = logging.getLogger(__name__)

_LOCAL_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test"}


class Runner:
    """Runs the event source mappings of one endpoint. Thread-safe; see the module doc."""

    def __init__(
        self,
        endpoint_url: str,
        state_dir: str | os.PathLike[str] = ".streamkit",
        region: str | None = None,
        reconcile_interval: float = 2.0,
        *,
        status_interval: float = 30.0,
        retry_delay: RetryDelay | None = None,
        delivery: DeliveryPolicy | None = None,
        idle_backoff: Callable[[], IdleBackoff] = IdleBackoff,
        invoker_factory: InvokerFactory | None = None,
        client_factory: Callable[[str], Any] | None = None,
        mapping_filter: Callable[[Mapping[str, Any]], bool] | None = None,
        throttle_backoff: ThrottleBackoff | None = None,
        clock: Callable[[], float] = time.time,
        ship_logs: bool = True,
        console: str | None = None,
        lock_timeout: float = 10.0,
    ) -> None:
        self.endpoint_url = endpoint_url
        self.state_dir = Path(state_dir)
        # Taken by start()/run(), held by the function workers too (see state_lock).
        self.state_lock = StateDirectoryLock(self.state_dir)
        self.lock_timeout = lock_timeout
        self.region = (
            region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )
        self.reconcile_interval = reconcile_interval
        self._results = ProcessingResultReporter(endpoint_url)
        self.status_interval = status_interval
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._client_factory = client_factory or self._make_client
        self.checkpoints = CheckpointStore(self.state_dir)
        self.settings = WorkerSettings(
            streams=StreamAccess(
                self.client("dynamodbstreams"), backoff=throttle_backoff or ThrottleBackoff()
            ),
            checkpoints=self.checkpoints,
            invoker_factory=invoker_factory or self._load_function,
            client_for=self.client,
            pacing=Pacing(
                retry_delay=retry_delay or RetryDelay(),
                delivery=delivery or DeliveryPolicy(),
                idle_backoff=idle_backoff,
                clock=clock,  # epoch seconds (record age, tumbling windows); tests may shift it
            ),
            refresh_interval=reconcile_interval,
        )
        # Run only the mappings this accepts (others are treated as absent), e.g. in tests
        # that share an endpoint.
        self.mapping_filter = mapping_filter
        self._workers: dict[str, MappingWorker] = {}
        self._worker_keys: dict[str, tuple[Any, ...]] = {}
        # Separate from _lock, which reconcile holds while restarting workers: stats() never waits.
        self._stats: dict[str, MappingStats] = {}
        self._stats_lock = threading.Lock()
        self._ignored: set[str] = set()
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # Function output to CloudWatch Logs /aws/lambda/<name>, as Lambda ships it.
        logs_factory = (
            functools.partial(client_factory, "logs")
            if client_factory is not None
            else functools.partial(logs_client, endpoint_url, self.region)
        )
        self.log_shipper = LogShipper(logs_factory) if ship_logs else None
        # "[HOST:]PORT" of the web console (streamkit.console), served while the runner runs.
        self.console_bind = console
        self.console: Any = None

    @property
    def console_url(self) -> str | None:
        """The console's address while it runs (``Runner(console=...)``), else None."""
        return None if self.console is None else str(self.console.url)

    def _start_console(self) -> None:
        if self.console_bind is not None and self.console is None:
            from streamkit.console import serve

            self.console = serve(self, self.console_bind)

    # -- clients and functions -------------------------------------------------------------

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` on the endpoint (cached; boto3 clients are thread-safe)."""
        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = self._client_factory(service)
            return self._clients[service]

    def _make_client(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        session = boto3.session.Session(region_name=self.region)
        # A local endpoint takes any credentials; only pass dummies when none are configured.
        credentials = {} if session.get_credentials() is not None else _LOCAL_CREDENTIALS
        config = Config(
            retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60
        )
        return session.client(service, endpoint_url=self.endpoint_url, config=config, **credentials)

    def _load_function(self, function_arn: str, *, max_concurrency: int) -> Invoker:
        """Fetch the deployed code and start one warm worker; FunctionCodeError if the code
        cannot be fetched or imported (the mapping then reports it and does not run)."""
        from streamkit.local.invoker import FunctionInvoker
        from streamkit.local.invoker.functions import fetch_function

        loaded = fetch_function(self.client("lambda"), function_arn, state_dir=self.state_dir)
        invoker = FunctionInvoker(
            loaded,
            endpoint_url=self.endpoint_url,
            region=self.region,
            max_concurrency=max_concurrency,
            log_shipper=self.log_shipper,
            hold_fds=() if self.state_lock.fd is None else (self.state_lock.fd,),
        )
        try:
            invoker.warm()
        except BaseException:
            invoker.close()
            raise
        LOG.info(
            "loaded %s (CodeSha256 %s)", loaded.spec.arn or function_arn, loaded.spec.code_sha256
        )
        return invoker

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Runner:
        """Reconcile once, then keep reconciling on a background thread."""
        if self._thread is not None:
            raise RuntimeError("runner already started")
        self.state_lock.acquire(self.lock_timeout)
        self._start_console()
        self.reconcile()
        self._thread = threading.Thread(target=self._loop, name="streamkit-runner", daemon=True)
        self._thread.start()
        return self

    def run(self) -> None:
        """Reconcile until :meth:`request_stop` / :meth:`stop`; blocking."""
        self.state_lock.acquire(self.lock_timeout)
        self._start_console()
        self.reconcile()
        self._loop()

    def _loop(self) -> None:
        next_status = time.monotonic() + self.status_interval
        while not self._stop.wait(self.reconcile_interval):
            self.reconcile()
            if time.monotonic() >= next_status:
                self.log_status()
                next_status = time.monotonic() + self.status_interval

    def request_stop(self) -> None:
        """Ask :meth:`run` to return (safe from a signal handler); then call :meth:`stop`."""
        self._stop.set()

    def stop(self) -> None:
        """Stop every mapping (see :meth:`MappingWorker.stop`) and the reconcile loop."""
        self._stop.set()
        if self.console is not None:
            self.console.close()
            self.console = None
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.reconcile_interval + 30)
        with self._lock:
            workers = list(self._workers.items())
            self._workers.clear()
        for uuid, worker in workers:
            worker.stop()
            self._stats[uuid].set_state(MappingState.STOPPED)
        if self.log_shipper is not None:
            self.log_shipper.close()
        self.checkpoints.close()
        self.state_lock.release()  # the workers are gone: the directory is free

    def __enter__(self) -> Runner:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- reconciliation ------------------------------------------------------------------

    def list_mappings(self) -> list[dict[str, Any]]:
        lambda_client = self.client("lambda")
        mappings: list[dict[str, Any]] = []
        marker: str | None = None
        while True:
            page = lambda_client.list_event_source_mappings(
                **({"Marker": marker} if marker else {})
            )
            mappings.extend(page.get("EventSourceMappings") or [])
            marker = page.get("NextMarker")
            if not marker:
                return mappings

    def reconcile(self) -> None:
        """One pass: make the running workers match the endpoint's mappings."""
        try:
            mappings = self.list_mappings()
        except Exception as exc:
            LOG.warning("ListEventSourceMappings on %s failed: %s", self.endpoint_url, exc)
            return
        with self._lock:
            if self._stop.is_set():
                return
            seen: set[str] = set()
            for mapping in mappings:
                if self.mapping_filter is not None and not self.mapping_filter(mapping):
                    continue
                uuid = str(mapping.get("UUID"))
                if not is_dynamodb_stream_arn(str(mapping.get("EventSourceArn", ""))):
                    if uuid not in self._ignored:
                        LOG.info(
                            "mapping %s reads %s, not a DynamoDB stream: ignored",
                            uuid,
                            mapping.get("EventSourceArn"),
                        )
                        self._ignored.add(uuid)
                    continue
                seen.add(uuid)
                self._reconcile_mapping(uuid, mapping)
            for uuid in [
                u for u in self._stats if u not in seen and self._stats[u].state != "deleted"
            ]:
                self._stop_worker(uuid)
                self._stats[uuid].set_state(MappingState.DELETED)
        self._results.report(self.stats(), mappings)

    def _reconcile_mapping(self, uuid: str, mapping: Mapping[str, Any]) -> None:
        with self._stats_lock:
            stats = self._stats.setdefault(
                uuid,
                MappingStats(
                    uuid,
                    str(mapping.get("FunctionArn", "")),
                    str(mapping.get("EventSourceArn", "")),
                ),
            )
        try:
            config = MappingConfig.from_api(mapping)
        except InvalidParameterValueError as exc:
            self._stop_worker(uuid)
            stats.set_state(MappingState.INVALID, f"mapping not run: {exc}")
            return
        if not config.enabled:
            self._stop_worker(uuid)
            stats.set_state(MappingState.DISABLED)
            return
        key = (config.restart_key(), self._code_version(config.function_arn))
        current = self._workers.get(uuid)
        if current is not None and self._worker_keys.get(uuid) == key:
            return
        if current is not None:
            LOG.info(
                "mapping %s changed (%s); restarting from its checkpoint",
                uuid,
                ", ".join(_changes(current.config, config, self._worker_keys.get(uuid), key)),
            )
            self._stop_worker(uuid)
        worker = MappingWorker(config, self.settings, stats)
        self._workers[uuid] = worker
        self._worker_keys[uuid] = key
        LOG.info(
            "mapping %s: %s -> %s (BatchSize %d, window %ds, retries %d, %s, %d lane(s)%s)",
            uuid, config.event_source_arn, config.function_arn, config.batch_size,
            config.max_batching_window_s, config.max_retry_attempts, config.starting_position,
            config.parallelization_factor,
            f", tumbling window {config.tumbling_window_s}s" if config.tumbling_window_s else "",
        )  # fmt: skip
        worker.start()

    def _code_version(self, function_arn: str) -> tuple[str, str] | None:
        """The function's CodeSha256 and LastModified: a new deployment restarts the mapping."""
        try:
            configuration = self.client("lambda").get_function_configuration(
                FunctionName=function_arn
            )
        except Exception:
            return None  # the worker reports why the function cannot be loaded
        return str(configuration.get("CodeSha256", "")), str(configuration.get("LastModified", ""))

    def _stop_worker(self, uuid: str) -> None:
        worker = self._workers.pop(uuid, None)
        self._worker_keys.pop(uuid, None)
        if worker is not None:
            worker.stop()

    # -- visibility ----------------------------------------------------------------------

    def stats(self) -> dict[str, dict[str, Any]]:
        """``{mapping UUID: {state, polled, filtered, invoked, succeeded, failed,
        sent_to_destination, discarded, throttled, trimmed_gaps, windows_closed,
        shards_running, iterator_age_ms, last_error, ...}}`` (see :class:`MappingStats`)."""
        with self._stats_lock:
            entries = list(self._stats.items())
        return {uuid: stats.snapshot() for uuid, stats in entries}

    def log_status(self) -> None:
        with self._stats_lock:
            lines = [
                stats.status_line() for stats in self._stats.values() if stats.state != "deleted"
            ]
        for line in lines:
            LOG.info("%s", line)

    def wait_until(
        self,
        predicate: Callable[[dict[str, dict[str, Any]]], bool],
        timeout: float = 10.0,
        interval: float = 0.02,
    ) -> dict[str, dict[str, Any]]:
        """Poll :meth:`stats` until ``predicate(stats)`` holds; returns those stats. Raises
        TimeoutError (with the last stats) otherwise. A predicate raising KeyError (mapping
        not seen yet) counts as False."""
        deadline = time.monotonic() + timeout
        while True:
            snapshot = self.stats()
            try:
                if predicate(snapshot):
                    return snapshot
            except KeyError:
                pass
            if time.monotonic() >= deadline:
                raise TimeoutError(f"condition not met within {timeout}s; stats: {snapshot}")
            time.sleep(interval)


def _changes(
    old: MappingConfig,
    new: MappingConfig,
    old_key: tuple[Any, ...] | None,
    new_key: tuple[Any, ...],
) -> list[str]:
    """Names of what changed between two versions of a mapping, for the log."""
    names = old.changed_fields(new)
    if old_key is None or old_key[1] != new_key[1]:
        names.append("function code")
    return names or ["unknown"]


def cli_main(args: argparse.Namespace) -> int:
    """``streamkit run``: run until SIGINT/SIGTERM."""
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not args.verbose:
        for noisy in ("botocore", "boto3", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    runner = Runner(
        args.endpoint_url,
        state_dir=args.state_dir,
        region=args.region,
        reconcile_interval=args.reconcile_interval,
        console=getattr(args, "console", None),
    )

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        LOG.info("received %s; stopping", signal.Signals(signum).name)
        runner.request_stop()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    LOG.info(
        "streamkit run: watching %s (region %s, state in %s, reconciling every %.1fs)",
        args.endpoint_url, runner.region, runner.state_dir.resolve(), args.reconcile_interval,
    )  # fmt: skip
    if runner.console_bind is not None:
        try:  # before the first reconcile, so the URL is printed at once
            runner._start_console()
        except (ValueError, OSError) as exc:  # a bad [HOST:]PORT, or the port is taken
            print(f"streamkit run: --console {args.console}: {exc}", file=sys.stderr)
            return 2
        LOG.info("streamkit console: %s", runner.console_url)
    try:
        runner.run()
    except StateDirectoryBusyError as exc:
        print(f"streamkit run: {exc}", file=sys.stderr)
        return 2
    finally:
        runner.stop()
        runner.log_status()
    LOG.info("streamkit run: stopped")
    return 0
