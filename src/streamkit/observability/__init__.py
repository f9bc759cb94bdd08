"""Tracing, metrics and logs for stream consumers, built in.

- ``observed_batch_handler``: ``batch_handler`` plus all of the below, in one decorator.
- ``ObservedConsumer``: the same for a consumer that runs its own batches (``Router``,
  ``Workflow``, ``CounterAggregator``: ``ObservableConsumer``).
- ``get_logger`` / ``StructuredLogger`` / ``JsonFormatter``: JSON logs with the Lambda
  context and the stream record's correlation fields; item images are never logged unless
  ``log_images=True`` or ``STREAMKIT_LOG_IMAGES=true``.
- ``Metrics`` / ``MetricUnit``: CloudWatch Embedded Metric Format, split to its limits.
- ``Tracer``: X-Ray subsegments when aws-xray-sdk is installed and enabled, else no-ops.
- ``ChangeLatency``: per-target change -> handler latency (``ChangeToHandlerLatency``, EMF,
  dimension ``Target``) from the items' own ``updated_at`` stamp.

Importing this package imports neither aws-xray-sdk nor boto3. See docs/observability.md.
"""

from __future__ import annotations

from streamkit.exceptions import InvalidMetricError
from streamkit.observability._context import InvocationInfo, current_record, record_fields
from streamkit.observability.consumers import ObservableConsumer, ObservedConsumer, RecordWrapper
from streamkit.observability.handler import (
    STREAM_METRICS,
    ObservedBatchHandler,
    observed_batch_handler,
    record_batch_metrics,
)
from streamkit.observability.latency import (
    CHANGE_LATENCY_METRIC,
    TARGET_DIMENSION,
    ChangeLatency,
    change_latency_ms,
)
from streamkit.observability.logs import (
    PII_REDACTED,
    REDACTED,
    JsonFormatter,
    JsonLogHandler,
    StructuredLogger,
    get_logger,
    images_allowed,
    level_from_env,
    redacted_fields,
)
from streamkit.observability.metrics import Metrics, MetricUnit, stdout_sink
from streamkit.observability.tracing import Span, Tracer

__all__ = [
    "CHANGE_LATENCY_METRIC",
    "PII_REDACTED",
    "REDACTED",
    "STREAM_METRICS",
    "TARGET_DIMENSION",
    "ChangeLatency",
    "InvalidMetricError",
    "InvocationInfo",
    "JsonFormatter",
    "JsonLogHandler",
    "MetricUnit",
    "Metrics",
    "ObservableConsumer",
    "ObservedBatchHandler",
    "ObservedConsumer",
    "RecordWrapper",
    "Span",
    "StructuredLogger",
    "Tracer",
    "change_latency_ms",
    "current_record",
    "get_logger",
    "images_allowed",
    "level_from_env",
    "observed_batch_handler",
    "record_batch_metrics",
    "record_fields",
    "redacted_fields",
    "stdout_sink",
]
