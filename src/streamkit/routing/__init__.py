"""The pattern registry: routing, fan-out, pipelines and aggregation over DynamoDB streams.

- ``Router``: declarative routes (table, event name, TTL delete, key prefix, patterns over the
  deserialized images, attribute predicates) and fan-out with per-target idempotency.
- ``predicates``: ``changed``, ``transition``, ``became``, ``key_prefix``, ``is_ttl_delete``,
  ``where``, ``matches``, composable with ``&``, ``|``, ``~``.
- ``Workflow``: stages as fenced state transitions on an item attribute.
- ``CounterAggregator``: exactly-once ADD counters in a DynamoDB table.
- ``TumblingWindowAggregator``: Lambda's tumbling-window state protocol.
- ``Consumer``: what the four have in common (``name``, ``handle``, ``run``).

Guarantees per pattern and the mapping settings they assume: docs/patterns.md.
"""

from __future__ import annotations

from streamkit.routing.consumer import Consumer
from streamkit.routing.counters import AggregationResult, CounterAggregator
from streamkit.routing.deltas import Aggregate, Delta
from streamkit.routing.exceptions import (
    AggregateWriteError,
    AggregationError,
    InvalidDeltaError,
    InvalidRouteError,
    InvalidTransitionError,
    InvalidWindowEventError,
    InvalidWorkflowError,
    RetryStage,
    RoutingError,
    TargetsFailedError,
    UnmatchedRecordError,
)
from streamkit.routing.image_pattern import ImagePattern, matches, record_view
from streamkit.routing.predicates import (
    ANY,
    MISSING,
    Predicate,
    became,
    changed,
    is_ttl_delete,
    key_prefix,
    transition,
    where,
)
from streamkit.routing.results import (
    DispatchStats,
    RecordOutcome,
    RoutedBatch,
    TargetOutcome,
    TargetStats,
)
from streamkit.routing.router import FanOut, MatchOptions, Route, RouteOptions, Router, Target
from streamkit.routing.windows import TumblingWindowAggregator, Window, WindowResult
from streamkit.routing.workflow import Next, StageContext, StageOutcome, Workflow

__all__ = [
    "ANY",
    "MISSING",
    "Aggregate",
    "AggregateWriteError",
    "AggregationError",
    "AggregationResult",
    "Consumer",
    "CounterAggregator",
    "Delta",
    "DispatchStats",
    "FanOut",
    "ImagePattern",
    "InvalidDeltaError",
    "InvalidRouteError",
    "InvalidTransitionError",
    "InvalidWindowEventError",
    "InvalidWorkflowError",
    "MatchOptions",
    "Next",
    "Predicate",
    "RecordOutcome",
    "RetryStage",
    "Route",
    "RouteOptions",
    "RoutedBatch",
    "Router",
    "RoutingError",
    "StageContext",
    "StageOutcome",
    "Target",
    "TargetOutcome",
    "TargetStats",
    "TargetsFailedError",
    "TumblingWindowAggregator",
    "UnmatchedRecordError",
    "Window",
    "WindowResult",
    "Workflow",
    "became",
    "changed",
    "is_ttl_delete",
    "key_prefix",
    "matches",
    "record_view",
    "transition",
    "where",
]
