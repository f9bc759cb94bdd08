"""The set-up every fan-out function of the platform shares (order_events, product_events).

``SinkEnvironment`` reads the clients and settings the sinks need from the function's
environment, once per execution environment (module level in ``app.py``: clients and
connections live across warm invocations). ``fan_out_handler`` turns named sinks into the
Lambda handler: one ``Router.fan_out`` with per-target idempotency (a failing target is retried
alone, its siblings' completion markers hold), ``per_key`` ordering (a failing record holds back
only the later changes of the same item), per-target change latency and one EMF document per
invocation.

Env: ``IDEMPOTENCY_TABLE``, ``AUDIT_BUCKET``, ``AUDIT_REDACT_FIELDS`` (comma-separated),
``REDIS_URL``, ``METRICS_NAMESPACE``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from orderplatform.audit import AuditArchive, redact_fields
from orderplatform.cache import CacheInvalidator
from streamkit import DynamoDBIdempotencyStore, Router, StreamRecord
from streamkit.observability import ChangeLatency, ObservedConsumer

__all__ = ["BatchPrepared", "LazyClient", "SinkEnvironment", "fan_out_handler"]

Sink = Callable[[StreamRecord], Any]


class BatchPrepared(Protocol):
    """A sink that does its work for a whole invocation's batch up front (``prepare``), whose
    per-record target call then reports each record's part; ``clear`` forgets the batch."""

    def prepare(self, event: Any) -> None: ...

    def clear(self) -> None: ...


class LazyClient:
    """A boto3 client created on first use, then kept for the execution environment's life.

    Creating a client loads its service model (JSON, parsed in Python): a few hundred ms of CPU
    for the five clients order_events uses, all inside Lambda's 10 s init phase if made at
    import. On a loaded machine the emulated inits ran past that limit (Sandbox.Timedout, and
    the records' retries with it). Made on first use, the cost moves into the first invoke,
    which has the function's whole timeout, and warm invokes reuse the client as before."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = self._factory()
                client = self._client
        return getattr(client, name)


class SinkEnvironment:
    """Clients and sinks from the environment; ``client(service)`` caches one per service."""

    def __init__(self, environ: Mapping[str, str] = os.environ) -> None:
        import boto3  # in the Lambda runtime; imported here so tests can build sinks without it
        import redis

        self.environ = environ
        self._boto3 = boto3
        self._clients: dict[str, Any] = {}
        self.metrics_namespace = environ.get("METRICS_NAMESPACE") or "streamkit"
        # redis-py connects on first use; short timeouts make an outage fail the cache target
        # fast instead of holding the whole invocation.
        self.redis = redis.Redis.from_url(
            environ["REDIS_URL"], socket_timeout=2, socket_connect_timeout=2
        )
        self.store = DynamoDBIdempotencyStore(
            environ["IDEMPOTENCY_TABLE"], client=self.client("dynamodb")
        )

    def client(self, service: str) -> Any:
        """The service's client (one per service, created on first use: ``LazyClient``)."""
        found = self._clients.get(service)
        if found is None:
            boto3 = self._boto3
            found = self._clients[service] = LazyClient(lambda: boto3.client(service))
        return found

    def audit(self) -> AuditArchive:
        return AuditArchive(
            self.environ["AUDIT_BUCKET"],
            client=self.client("s3"),
            redact=redact_fields(self.environ.get("AUDIT_REDACT_FIELDS")),
        )

    def cache(self) -> CacheInvalidator:
        return CacheInvalidator(self.redis)


def fan_out_handler(
    service: str, env: SinkEnvironment, sinks: Iterable[tuple[str, Sink]]
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda handler that fans every record out to ``sinks`` (``(name, sink)`` pairs, run
    in that order), each measured as ``Target=<service>.<name>``. A sink with ``prepare`` and
    ``clear`` (``BatchPrepared``) is prepared with the whole event before the records run."""
    latency = ChangeLatency(namespace=env.metrics_namespace)
    router = Router(service, idempotency=env.store, ordering="per_key")
    changes = router.fan_out("changes")
    pairs = list(sinks)
    for name, sink in pairs:
        changes.add_target(latency.target(f"{service}.{name}")(sink), name=name)
    if not pairs:
        raise ValueError(f"{service}: a fan-out function needs at least one sink")
    router.validate()
    observed: Callable[[dict[str, Any], Any], dict[str, Any]] = latency.observe(
        ObservedConsumer(router, namespace=env.metrics_namespace, service=service)
    )
    prepared = [sink for _, sink in pairs if callable(getattr(sink, "prepare", None))]
    if not prepared:
        return observed

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        for sink in prepared:
            sink.prepare(event)
        try:
            return observed(event, context)
        finally:
            for sink in prepared:
                sink.clear()

    return handler
