"""What every observed consumer shares: one invocation's logs, metrics and traces.

``BatchObserver`` is the Lambda handler ``handler(event, context)``; a subclass says how a
batch runs (``run_wrapped``): ``ObservedBatchHandler`` runs ``run_batch`` over a record
function, ``ObservedConsumer`` asks a Router, Workflow or aggregator to run its own batch.
Either way the batch runs each record's own work through ``wrap``, which gives it its
correlation fields in log lines, a ``## streamkit.record`` subsegment and a duration.

Per invocation: the Lambda context and cold-start flag go into every log line; a
``## streamkit.batch`` subsegment wraps the batch; then one EMF flush writes the stream
metrics and one INFO line summarizes the batch.

Observability never costs the response: every logging, metrics and tracing step is guarded,
and a failure there is logged and swallowed. The wrapped work is called, not changed: same
sync/async-ness, same ``(record)``/``(record, context)`` call, its exceptions unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, TypedDict

from streamkit.batch import BatchResponse, BatchResult
from streamkit.batch.internal import bind_context, is_async, mark_logs_failures
from streamkit.observability._context import (
    ColdStart,
    InvocationInfo,
    batch_source,
    reset_invocation,
    reset_record,
    set_invocation,
    set_record,
)
from streamkit.observability.logs import (
    _IMAGES_ATTR,
    StructuredLogger,
    get_logger,
    images_allowed,
)
from streamkit.observability.metrics import Metrics, MetricUnit
from streamkit.observability.tracing import AnnotationValue, Span, Tracer
from streamkit.records import StreamRecord

__all__ = [
    "STREAM_METRICS",
    "UNKNOWN",
    "BatchObserver",
    "ObserverOptions",
    "RecordWrapper",
    "record_batch_metrics",
]

# The metric names an observer emits, and their units (docs/observability.md).
STREAM_METRICS: Final[Mapping[str, MetricUnit]] = {
    "BatchSize": MetricUnit.COUNT,
    "RecordsProcessed": MetricUnit.COUNT,
    "RecordsFailed": MetricUnit.COUNT,
    "RecordsSkipped": MetricUnit.COUNT,
    "RecordsAlreadyCompleted": MetricUnit.COUNT,
    "HandlerDuration": MetricUnit.MILLISECONDS,
    "IteratorAge": MetricUnit.MILLISECONDS,
    "ColdStart": MetricUnit.COUNT,
}
BATCH_SUBSEGMENT: Final = "## streamkit.batch"
RECORD_SUBSEGMENT: Final = "## streamkit.record"
UNKNOWN: Final = "unknown"  # a dimension value must be non-empty

# Takes a record's own work, ``(record)`` or ``(record, context)``, sync or async; returns it
# observed, as a ``(record)`` callable of the same kind (the context is bound).
RecordWrapper = Callable[[Callable[..., Any]], Callable[[StreamRecord], Any]]

_internal = logging.getLogger("streamkit.observability")


def record_batch_metrics(
    metrics: Metrics,
    result: BatchResult | None,
    *,
    durations_ms: Sequence[float] = (),
    iterator_age_ms: float | None = None,
    cold_start: bool = False,
) -> None:
    """Add the standard stream metrics of one invocation to ``metrics``.

    ``BatchSize`` = ``RecordsProcessed`` (handler succeeded) + ``RecordsAlreadyCompleted``
    (idempotency skipped it) + ``RecordsFailed`` + ``RecordsSkipped`` (not run: after a
    failure). ``HandlerDuration`` has one value per handler call. ``ColdStart`` is written
    (as 1) only on a cold start. ``result`` is ``None`` when the batch raised.
    """
    if result is not None:
        metrics.add_metric("BatchSize", MetricUnit.COUNT, result.total)
        metrics.add_metric("RecordsProcessed", MetricUnit.COUNT, result.succeeded)
        metrics.add_metric("RecordsFailed", MetricUnit.COUNT, result.failed)
        metrics.add_metric("RecordsSkipped", MetricUnit.COUNT, result.skipped)
        metrics.add_metric("RecordsAlreadyCompleted", MetricUnit.COUNT, result.already_completed)
    if durations_ms:
        metrics.add_metric("HandlerDuration", MetricUnit.MILLISECONDS, durations_ms)
    if iterator_age_ms is not None:
        metrics.add_metric("IteratorAge", MetricUnit.MILLISECONDS, iterator_age_ms)
    if cold_start:
        metrics.add_metric("ColdStart", MetricUnit.COUNT, 1)


class ObserverOptions(TypedDict, total=False):
    """The observer settings besides ``service``; see ``BatchObserver`` for their defaults."""

    namespace: str
    dimensions: Mapping[str, str] | None
    log_images: bool | None
    logger: StructuredLogger | None
    tracer: Tracer | None
    metrics_sink: Callable[[str], None] | None
    trace_records: bool
    clock: Callable[[], float]


class BatchObserver(ABC):
    """A Lambda handler, ``handler(event, context)``, that runs one batch (``run_wrapped``)
    and observes it. ``last_result`` is the ``BatchResult`` of the latest invocation.

    ``service``: the ``Service`` dimension and log field. ``namespace``: the CloudWatch
    namespace. ``dimensions``: extra dimensions of every metric. ``log_images``: log item
    images with failures (default ``STREAMKIT_LOG_IMAGES``). ``logger``, ``tracer``,
    ``metrics_sink`` (one EMF line per call; default stdout), ``clock`` (epoch seconds):
    replaceable parts. ``trace_records=False`` keeps the batch subsegment but drops the
    per-record ones (for batches of thousands of records).
    """

    def __init__(
        self,
        *,
        service: str,
        namespace: str = "streamkit",
        dimensions: Mapping[str, str] | None = None,
        log_images: bool | None = None,
        logger: StructuredLogger | None = None,
        tracer: Tracer | None = None,
        metrics_sink: Callable[[str], None] | None = None,
        trace_records: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.service = service
        self.namespace = namespace
        self.last_result: BatchResult | None = None
        self._dimensions = dict(dimensions or {})
        self._log_images = log_images
        self._log = logger or get_logger("streamkit.observability", service=service)
        self._tracer = tracer if tracer is not None else Tracer()
        self._sink = metrics_sink
        self._trace_records = trace_records
        self._clock = clock
        self._cold_start = ColdStart()
        # Check namespace and dimensions now: at flush time a mistake would only be logged,
        # every invocation, and the metrics silently lost.
        Metrics(namespace, dimensions={"Service": service, **self._dimensions})

    @abstractmethod
    def run_wrapped(self, event: Any, context: Any | None, wrap: RecordWrapper) -> BatchResult:
        """Run one batch, calling each record's own work through ``wrap``."""

    def __call__(self, event: Any, context: Any) -> BatchResponse:
        started = self._clock()
        run = _Invocation(self, event, context, started)
        try:
            result = self.run_wrapped(event, context, run.wrap)
        except BaseException as error:
            run.finish(None, error)
            raise
        self.last_result = result
        response = result.response()
        run.finish(result, None)
        return response


class _Invocation:
    """One invocation's observability state. Every method is guarded: it may log, never
    raise (the wrapped work's own exceptions excepted: they pass through unchanged)."""

    def __init__(self, owner: BatchObserver, event: Any, context: Any, started: float):
        self.owner = owner
        self.context = context
        self.started = started
        self.durations_ms: list[float] = []
        self.table: str | None = None
        self.iterator_age_ms: float | None = None
        self.cold_start = owner._cold_start.consume()
        self.log_images = False
        self.batch_span: Span = Span()
        self.trace_records = False
        self.invocation_token: Any = None
        self.function_name: str | None = None
        self.request_id: str | None = None
        try:
            self.log_images = images_allowed(owner._log_images)
            info = InvocationInfo.from_context(context, cold_start=self.cold_start)
            self.function_name = info.function_name
            self.request_id = info.request_id
            self.invocation_token = set_invocation(info)
            self.table, newest = batch_source(event)
            if newest is not None:
                # IteratorAge as Lambda defines it: now minus the arrival time of the newest
                # record of the batch (https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html)
                self.iterator_age_ms = max(0.0, round((started - newest) * 1000.0, 3))
            annotations: dict[str, AnnotationValue] = {"service": owner.service}
            if self.table is not None:
                annotations["table"] = self.table
            self.batch_span = owner._tracer.begin(BATCH_SUBSEGMENT, annotations)
            # No batch subsegment (tracing off, or no segment to attach to, e.g. outside
            # Lambda): asking the SDK once per record would only log its complaint each time.
            self.trace_records = owner._trace_records and self.batch_span.recording
        except Exception as exc:
            _swallowed("starting the invocation", exc)

    def wrap(self, work: Callable[..., Any]) -> Callable[[StreamRecord], Any]:
        """``work`` observed: sync or async like the original, and called with the record
        only (the context is bound here, as ``run_batch`` would)."""
        call = bind_context(work, self.context)
        # Asked of ``work`` itself: the bound call of an async function is a plain partial.
        if is_async(work):

            async def observed_async(record: StreamRecord) -> Any:
                token, span, t0 = self._before(record)
                try:
                    return await call(record)
                except Exception as error:
                    self._failed(record, span, error)
                    raise
                finally:
                    self._after(token, span, t0)

            return mark_logs_failures(observed_async)

        def observed(record: StreamRecord) -> Any:
            token, span, t0 = self._before(record)
            try:
                return call(record)
            except Exception as error:
                self._failed(record, span, error)
                raise
            finally:
                self._after(token, span, t0)

        return mark_logs_failures(observed)

    def _before(self, record: StreamRecord) -> tuple[Any, Span, float]:
        token: Any = None
        span: Span = _NO_SPAN
        try:
            token = set_record(record)
            if self.trace_records:
                span = self.owner._tracer.begin(RECORD_SUBSEGMENT, _record_annotations(record))
        except Exception as exc:
            _swallowed("starting a record", exc)
        return token, span, time.perf_counter()

    def _after(self, token: Any, span: Span, t0: float) -> None:
        elapsed_ms = (time.perf_counter() - t0) * 1000.0
        try:
            self.durations_ms.append(round(elapsed_ms, 3))
            span.close()
            if token is not None:
                reset_record(token)
        except Exception as exc:
            _swallowed("finishing a record", exc)

    def _failed(self, record: StreamRecord, span: Span, error: Exception) -> None:
        try:
            span.record_exception(error)
            fields: dict[str, Any] = {}
            if self.log_images:
                # Asked for by the observer (or STREAMKIT_LOG_IMAGES): this line may carry
                # images whatever the logger's own default.
                fields["extra"] = {_IMAGES_ATTR: True}
                for name in ("new_image", "old_image"):
                    try:
                        fields[name] = getattr(record, name)
                    except Exception:
                        continue
            self.owner._log.error(
                "record handler failed: %s: %s",
                type(error).__name__,
                error,
                exc_info=error,
                **fields,
            )
        except Exception as exc:
            _swallowed("logging a record failure", exc)

    def finish(self, result: BatchResult | None, error: BaseException | None) -> None:
        owner = self.owner
        try:
            self._emit_metrics(result)
        except Exception as exc:
            _swallowed("emitting metrics", exc)
        try:
            span = self.batch_span
            if result is not None:
                span.annotate("records_failed", result.failed)
                span.annotate("records_processed", result.succeeded)
                if result.errors:
                    span.add_metadata(
                        "errors",
                        [
                            {"sequence_number": i, "type": type(e).__name__, "message": str(e)}
                            for i, e in result.errors[:50]
                        ],
                    )
            if error is not None:
                span.record_exception(error)
            span.close()
        except Exception as exc:
            _swallowed("closing the batch trace", exc)
        try:
            if result is not None:
                level = logging.WARNING if result.failed_identifiers else logging.INFO
                owner._log.log(
                    level,
                    "batch processed",
                    batch_size=result.total,
                    records_processed=result.succeeded,
                    records_failed=result.failed,
                    records_skipped=result.skipped,
                    records_already_completed=result.already_completed,
                    reported=len(result.failed_identifiers),
                    iterator_age_ms=self.iterator_age_ms,
                    duration_ms=round((owner._clock() - self.started) * 1000.0, 3),
                )
            elif isinstance(error, Exception):
                owner._log.error("batch failed: %s: %s", type(error).__name__, error)
        except Exception as exc:
            _swallowed("logging the batch summary", exc)
        try:
            if self.invocation_token is not None:
                reset_invocation(self.invocation_token)
        except Exception as exc:
            _swallowed("resetting the log context", exc)

    def _emit_metrics(self, result: BatchResult | None) -> None:
        owner = self.owner
        metrics = Metrics(owner.namespace, sink=owner._sink, clock=owner._clock)
        metrics.add_dimension("Service", owner.service)
        metrics.add_dimension("FunctionName", self.function_name or UNKNOWN)
        metrics.add_dimension("TableName", self.table or UNKNOWN)
        for name, value in owner._dimensions.items():
            metrics.add_dimension(name, value)
        if self.request_id:
            metrics.add_metadata("function_request_id", self.request_id)
        record_batch_metrics(
            metrics,
            result,
            durations_ms=self.durations_ms,
            iterator_age_ms=self.iterator_age_ms,
            cold_start=self.cold_start,
        )
        metrics.flush()


_NO_SPAN: Final = Span()


def _record_annotations(record: StreamRecord) -> dict[str, AnnotationValue]:
    annotations: dict[str, AnnotationValue] = {}
    readers: tuple[tuple[str, Callable[[], AnnotationValue | None]], ...] = (
        ("table", lambda: record.table_name),
        ("event_name", lambda: record.event_name),
        # A string: SequenceNumbers exceed the 64-bit range of annotation numbers.
        ("sequence_number", lambda: record.item_identifier or None),
    )
    for key, read in readers:
        try:
            value = read()
        except Exception:
            continue
        if value is not None:
            annotations[key] = value
    return annotations


def _swallowed(what: str, error: Exception) -> None:
    with contextlib.suppress(Exception):  # if even this fails, nothing is left to tell it to
        _internal.warning(
            "observability failed while %s (%s: %s); the batch response is unaffected",
            what,
            type(error).__name__,
            error,
            exc_info=error,
        )
