"""``ObservedConsumer``: the logs, metrics and traces of ``observed_batch_handler`` for a
consumer that runs its own batches: a ``Router``, a ``Workflow``, a ``CounterAggregator``.

::

    router = Router("cache", idempotency=store)
    ...
    handler = ObservedConsumer(router, namespace="Orders", service="cache")

A consumer is observable when it implements ``ObservableConsumer``: ``run_wrapped(event,
context, wrap)`` runs one batch exactly as its own ``handle`` does, except that it calls
each record's own work (a Router's dispatch, a Workflow's stage, an aggregator's deltas
function) through ``wrap``, and returns the batch's ``BatchResult``. The observer adds the
rest, the same for every kind of consumer: metric names and dimensions, log fields, the
``## streamkit.batch`` and ``## streamkit.record`` subsegments, one ``HandlerDuration`` per
wrapped call. The response is ``BatchResult.response()``, the one ``handle`` returns.
"""

from __future__ import annotations

from typing import Any, Protocol, Unpack, runtime_checkable

from streamkit.batch import BatchResult
from streamkit.observability._observer import BatchObserver, ObserverOptions, RecordWrapper

__all__ = ["ObservableConsumer", "ObservedConsumer", "RecordWrapper"]


@runtime_checkable
class ObservableConsumer(Protocol):
    """What ``ObservedConsumer`` needs of a consumer (``Router``, ``Workflow`` and
    ``CounterAggregator`` have it)."""

    def run_wrapped(self, event: Any, context: Any | None, wrap: RecordWrapper) -> BatchResult:
        """Run one batch as ``handle`` would, calling each record's own work through
        ``wrap``; return its accounting (``response()`` is ``handle``'s answer)."""
        ...


class ObservedConsumer(BatchObserver):
    """The Lambda handler ``handler(event, context)`` of an observed ``consumer``.

    ``service``: the ``Service`` dimension and log field (default: the consumer's ``name``).
    The other options (``namespace``, ``dimensions``, ``log_images``, ``logger``, ``tracer``,
    ``metrics_sink``, ``trace_records``, ``clock``) are those of ``observed_batch_handler``,
    with the same defaults. ``last_result`` is the ``BatchResult`` of the latest invocation.
    """

    def __init__(
        self,
        consumer: ObservableConsumer,
        *,
        service: str | None = None,
        **options: Unpack[ObserverOptions],
    ) -> None:
        if not isinstance(consumer, ObservableConsumer):
            raise TypeError(
                f"{type(consumer).__name__} has no run_wrapped(event, context, wrap); observe a "
                "record function with observed_batch_handler instead"
            )
        self.consumer = consumer
        super().__init__(service=service or _name_of(consumer), **options)

    def run_wrapped(self, event: Any, context: Any | None, wrap: RecordWrapper) -> BatchResult:
        return self.consumer.run_wrapped(event, context, wrap)


def _name_of(consumer: object) -> str:
    name = getattr(consumer, "name", None)
    return name if isinstance(name, str) and name else type(consumer).__name__
