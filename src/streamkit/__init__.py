"""streamkit: turn a DynamoDB table into a reactive, event-driven system.

The library runs inside the Lambda function that consumes a DynamoDB stream:

- ``deserialize`` / ``serialize``: exact, fast DynamoDB JSON <-> Python.
- ``parse_event`` / ``StreamRecord``: typed records, images decoded lazily and once.
- ``process_batch`` / ``batch_handler``: ReportBatchItemFailures with per-item order kept.
- ``DynamoDBIdempotencyStore`` / ``MemoryIdempotencyStore``: effectively-once handlers for
  5 DynamoDB requests per 100 records.
- ``FilterPattern`` / ``FilterCriteria``: Lambda's event filtering, exactly.

The local runtime (emulator and event source mapping runner) is in ``streamkit.local`` and the
routing patterns (``Router``, ``Workflow``, aggregators) in ``streamkit.routing``,
re-exported here. Nothing here imports boto3 at load time.
"""

from __future__ import annotations

from streamkit.batch import (
    BatchResult,
    IdempotencyProvider,
    IdempotencySession,
    batch_handler,
    process_batch,
    process_batch_async,
    run_batch,
    run_batch_async,
)
from streamkit.codec import deserialize, deserialize_value, serialize, serialize_value
from streamkit.exceptions import (
    DeserializationError,
    DestinationDeliveryError,
    EmulatorError,
    FunctionCodeError,
    ImageNotAvailableError,
    InvalidEventError,
    InvalidFilterPatternError,
    InvalidParameterValueError,
    InvalidRecordError,
    PortInUseError,
    QueueNotFoundError,
    RecordsUnavailableError,
    SerializationError,
    StreamkitError,
    StreamNotEnabledError,
    StreamNotFoundError,
    TableNotFoundError,
)
from streamkit.filters import FilterCriteria, FilterPattern, validate_pattern
from streamkit.idempotency import (
    DynamoDBIdempotencyStore,
    IdempotencyAlreadyInProgressError,
    IdempotencyError,
    IdempotencyKeyError,
    IdempotencyPayloadMismatchError,
    IdempotencyResultNotSerializableError,
    IdempotencyResultTooLargeError,
    IdempotencyStore,
    IdempotencyStoreUnavailableError,
    IdempotentFunction,
    LocalCache,
    MemoryIdempotencyStore,
    idempotent,
)
from streamkit.records import MISSING, StreamRecord, parse_event
from streamkit.routing import (
    ANY,
    Aggregate,
    AggregateWriteError,
    CounterAggregator,
    Delta,
    FanOut,
    InvalidRouteError,
    InvalidWorkflowError,
    Next,
    RetryStage,
    Router,
    TargetsFailedError,
    TumblingWindowAggregator,
    UnmatchedRecordError,
    WindowResult,
    Workflow,
    became,
    changed,
    is_ttl_delete,
    key_prefix,
    transition,
    where,
)

__version__ = "0.1.0"

__all__ = [
    "ANY",
    "MISSING",
    "Aggregate",
    "AggregateWriteError",
    "BatchResult",
    "CounterAggregator",
    "Delta",
    "DeserializationError",
    "DestinationDeliveryError",
    "DynamoDBIdempotencyStore",
    "EmulatorError",
    "FanOut",
    "FilterCriteria",
    "FilterPattern",
    "FunctionCodeError",
    "IdempotencyAlreadyInProgressError",
    "IdempotencyError",
    "IdempotencyKeyError",
    "IdempotencyPayloadMismatchError",
    "IdempotencyProvider",
    "IdempotencyResultNotSerializableError",
    "IdempotencyResultTooLargeError",
    "IdempotencySession",
    "IdempotencyStore",
    "IdempotencyStoreUnavailableError",
    "IdempotentFunction",
    "ImageNotAvailableError",
    "InvalidEventError",
    "InvalidFilterPatternError",
    "InvalidParameterValueError",
    "InvalidRecordError",
    "InvalidRouteError",
    "InvalidWorkflowError",
    "LocalCache",
    "MemoryIdempotencyStore",
    "Next",
    "PortInUseError",
    "QueueNotFoundError",
    "RecordsUnavailableError",
    "RetryStage",
    "Router",
    "SerializationError",
    "StreamNotEnabledError",
    "StreamNotFoundError",
    "StreamRecord",
    "StreamkitError",
    "TableNotFoundError",
    "TargetsFailedError",
    "TumblingWindowAggregator",
    "UnmatchedRecordError",
    "WindowResult",
    "Workflow",
    "__version__",
    "batch_handler",
    "became",
    "changed",
    "deserialize",
    "deserialize_value",
    "idempotent",
    "is_ttl_delete",
    "key_prefix",
    "parse_event",
    "process_batch",
    "process_batch_async",
    "run_batch",
    "run_batch_async",
    "serialize",
    "serialize_value",
    "transition",
    "validate_pattern",
    "where",
]
