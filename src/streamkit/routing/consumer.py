"""One protocol for the routing package's consumers.

``Router``, ``Workflow``, ``CounterAggregator`` and ``TumblingWindowAggregator`` each run a
whole batch of a DynamoDB stream: ``handle(event, context)`` is the Lambda handler body
(its return value is what Lambda gets: the partial batch response, or a window's state) and
``run(event, context)`` does the same work and returns everything the consumer knows about
it (a ``RoutedBatch``, a ``BatchResult``, an ``AggregationResult``; for a window aggregator,
whose response is all there is, the response itself). ``name`` names the consumer in logs,
metrics and idempotency namespaces.

Consumers that also have ``run_wrapped(event, context, wrap)`` can be observed
(``streamkit.observability.ObservableConsumer``).
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["Consumer"]

R_co = TypeVar("R_co", covariant=True)


@runtime_checkable
class Consumer(Protocol[R_co]):
    """A batch consumer: ``handle`` answers Lambda, ``run`` tells everything."""

    @property
    def name(self) -> str: ...

    def handle(self, event: Any, context: Any | None = None) -> Any: ...

    def run(self, event: Any, context: Any | None = None) -> R_co: ...
