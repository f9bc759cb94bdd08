"""``observed_batch_handler``: ``streamkit.batch.run_batch`` with logs, metrics and traces.

Per invocation: the Lambda context and cold-start flag go into every log line; a
``## streamkit.batch`` subsegment wraps the batch; each record handler runs with the
record's correlation fields in its log lines, inside a ``## streamkit.record`` subsegment,
timed; then one EMF flush writes the stream metrics and one INFO line summarizes the batch
(all of it shared with ``ObservedConsumer``: ``streamkit.observability._observer``).

Observability never costs the response: every logging, metrics and tracing step is guarded,
and a failure there is logged and swallowed. The batch semantics are exactly
``run_batch``'s (the record handler is wrapped, not changed: same sync/async-ness, same
``(record)``/``(record, context)`` call, same idempotency namespace as ``batch_handler``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Unpack, overload

from streamkit.batch import BatchResult, IdempotencyProvider, Ordering, run_batch
from streamkit.batch.internal import check_ordering, default_namespace
from streamkit.observability._observer import (
    STREAM_METRICS,
    UNKNOWN,
    BatchObserver,
    ObserverOptions,
    RecordWrapper,
    record_batch_metrics,
)
from streamkit.records import NumberMode

__all__ = [
    "STREAM_METRICS",
    "ObservedBatchHandler",
    "observed_batch_handler",
    "record_batch_metrics",
]


class ObservedBatchHandler(BatchObserver):
    """The Lambda handler ``observed_batch_handler`` returns: ``handler(event, context)``.

    ``record_handler`` is the wrapped record function (for tests, as with
    ``batch_handler``); ``last_result`` is the ``BatchResult`` of the latest invocation.
    ``ordering``, ``idempotency``, ``idempotency_namespace`` and ``numbers`` are read on
    every invocation (``idempotency`` can be replaced, e.g. by a memory store in tests).
    """

    def __init__(
        self,
        record_handler: Callable[..., Any],
        *,
        ordering: Ordering,
        idempotency: IdempotencyProvider | None,
        idempotency_namespace: str | None,
        numbers: NumberMode,
        service: str | None,
        **options: Unpack[ObserverOptions],
    ) -> None:
        check_ordering(ordering)
        self.record_handler = record_handler
        self.ordering: Ordering = ordering
        self.idempotency = idempotency
        # batch_handler's default: switching decorators keeps the idempotency records valid.
        self.idempotency_namespace = idempotency_namespace or default_namespace(record_handler)
        self.numbers: NumberMode = numbers
        super().__init__(
            service=service or getattr(record_handler, "__name__", None) or UNKNOWN, **options
        )
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
            if hasattr(record_handler, attr):
                setattr(self, attr, getattr(record_handler, attr))

    def run_wrapped(self, event: Any, context: Any | None, wrap: RecordWrapper) -> BatchResult:
        """``run_batch`` over the record handler, observed by ``wrap``."""
        return run_batch(
            event,
            wrap(self.record_handler),
            ordering=self.ordering,
            context=context,
            idempotency=self.idempotency,
            idempotency_namespace=self.idempotency_namespace,
            numbers=self.numbers,
        )


@overload
def observed_batch_handler(func: Callable[..., Any], /) -> ObservedBatchHandler: ...


@overload
def observed_batch_handler(
    *,
    ordering: Ordering = "fail_fast",
    idempotency: IdempotencyProvider | None = None,
    idempotency_namespace: str | None = None,
    numbers: NumberMode = "decimal",
    service: str | None = None,
    **options: Unpack[ObserverOptions],
) -> Callable[[Callable[..., Any]], ObservedBatchHandler]: ...


def observed_batch_handler(
    func: Callable[..., Any] | None = None,
    /,
    *,
    ordering: Ordering = "fail_fast",
    idempotency: IdempotencyProvider | None = None,
    idempotency_namespace: str | None = None,
    numbers: NumberMode = "decimal",
    service: str | None = None,
    **options: Unpack[ObserverOptions],
) -> ObservedBatchHandler | Callable[[Callable[..., Any]], ObservedBatchHandler]:
    """``batch_handler`` with structured logs, EMF metrics and X-Ray traces::

        @observed_batch_handler(ordering="per_key", idempotency=store,
                                namespace="Orders", service="audit")
        def handler(record: StreamRecord) -> None: ...

    ``ordering``, ``idempotency``, ``idempotency_namespace``, ``numbers``: as for
    ``batch_handler``. ``service``: the ``Service`` dimension and log field (default: the
    function's name). The observer ``options`` and their defaults (``BatchObserver`` in
    ``streamkit.observability._observer``): ``namespace`` (the CloudWatch namespace,
    ``"streamkit"``), ``dimensions`` (extra dimensions of every metric), ``log_images`` (log
    item images with failures; default ``STREAMKIT_LOG_IMAGES``), ``logger``, ``tracer``,
    ``metrics_sink`` (one EMF line per call; default stdout), ``clock`` (epoch seconds):
    replaceable parts. ``trace_records=False`` keeps the batch subsegment but drops the
    per-record ones (for batches of thousands of records).
    """

    def decorate(record_handler: Callable[..., Any]) -> ObservedBatchHandler:
        return ObservedBatchHandler(
            record_handler,
            ordering=ordering,
            idempotency=idempotency,
            idempotency_namespace=idempotency_namespace,
            numbers=numbers,
            service=service,
            **options,
        )

    return decorate if func is None else decorate(func)
