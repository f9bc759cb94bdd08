"""Errors raised by streamkit. Each carries the details a caller needs to act on it."""

from __future__ import annotations

__all__ = ["DeserializationError", "SerializationError", "StreamkitError"]


class StreamkitError(Exception):
    """Base class for every error streamkit raises on purpose."""


class DeserializationError(StreamkitError, ValueError):
    """A DynamoDB attribute value could not be converted to Python.

    ``path`` names the attribute, e.g. ``order.lines[2].qty``; ``reason`` says what was wrong.
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        where = path or "<root>"
        super().__init__(f"{where}: {reason}")


class SerializationError(StreamkitError, ValueError):
    """A Python value could not be converted to a DynamoDB attribute value."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        where = path or "<root>"
        super().__init__(f"{where}: {reason}")


class EmulatorError(StreamkitError):
    """The embedded AWS emulator could not start, or was used before it started."""


class PortInUseError(EmulatorError, OSError):
    """The emulator's port is already taken by another program.

    ``host`` and ``port`` name the address that could not be bound.
    """

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        super().__init__(
            f"cannot start the emulator on {host}:{port}: the port is already in use; "
            "stop the program using it, choose another --port, or pass --port 0 to pick a free one"
        )


__all__ += ["EmulatorError", "PortInUseError"]


class InvalidEventError(StreamkitError, ValueError):
    """The event is not a DynamoDB stream event at all (no ``Records`` list).

    Raised by ``parse_event`` and ``process_batch``: with no readable records there is no
    ``itemIdentifier`` to report, so failing the invocation loudly is the only honest answer.
    ``reason`` says what was wrong.
    """

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"not a DynamoDB stream event: {reason}")


class InvalidRecordError(StreamkitError, ValueError):
    """One stream record is malformed.

    ``field`` names the offending part (e.g. ``dynamodb.SequenceNumber``), ``reason`` says what
    was wrong, and ``sequence_number`` is the record's SequenceNumber when it could be read.
    """

    def __init__(self, field: str, reason: str, sequence_number: str | None = None) -> None:
        self.field = field
        self.reason = reason
        self.sequence_number = sequence_number
        which = sequence_number or "<unknown SequenceNumber>"
        super().__init__(f"invalid stream record {which}: {field}: {reason}")


class ImageNotAvailableError(StreamkitError, LookupError):
    """A record lacks the image an operation needs (e.g. ``changed_attributes`` on a MODIFY
    from a stream whose StreamViewType is not NEW_AND_OLD_IMAGES).

    ``image`` is ``"NewImage"`` or ``"OldImage"``; ``stream_view_type`` is the record's.
    """

    def __init__(self, image: str, stream_view_type: str | None, sequence_number: str) -> None:
        self.image = image
        self.stream_view_type = stream_view_type
        self.sequence_number = sequence_number
        super().__init__(
            f"record {sequence_number} has no {image} (StreamViewType={stream_view_type}); "
            "changed attributes need NEW_AND_OLD_IMAGES"
        )


__all__ += ["ImageNotAvailableError", "InvalidEventError", "InvalidRecordError"]


class InvalidParameterValueError(StreamkitError, ValueError):
    """An event source mapping parameter is outside what AWS accepts.

    ``message`` is AWS's wording (e.g. ``"Invalid filter pattern definition."``). ``code`` is the
    error code AWS returns for it: ``"InvalidParameterValueException"`` for service-level checks,
    ``"ValidationException"`` for the API model's range/enum constraints. Both are HTTP 400.
    """

    def __init__(self, message: str, *, code: str = "InvalidParameterValueException") -> None:
        self.message = message
        self.code = code
        super().__init__(message)


class StreamNotFoundError(StreamkitError, LookupError):
    """The stream an event source mapping reads does not exist (AWS: "Stream not found: <arn>")."""

    def __init__(self, stream_arn: str) -> None:
        self.stream_arn = stream_arn
        super().__init__(f"Stream not found: {stream_arn}")


class DestinationDeliveryError(StreamkitError):
    """An on-failure record could not be delivered to its destination (SQS, SNS or S3)."""

    def __init__(self, destination_arn: str, reason: str) -> None:
        self.destination_arn = destination_arn
        self.reason = reason
        super().__init__(f"could not deliver on-failure record to {destination_arn}: {reason}")


__all__ += ["DestinationDeliveryError", "InvalidParameterValueError", "StreamNotFoundError"]


class FunctionCodeError(StreamkitError):
    """A Lambda function's deployed code cannot be run by the local runtime.

    Raised when the code cannot be downloaded from ``location`` (GetFunction's
    ``Code.Location``), is corrupt (bad zip, SHA-256 different from ``CodeSha256``, unsafe paths),
    has no handler module, or uses a runtime or package type the local runtime does not support.
    ``function`` names the function, ``cause`` says what was wrong.
    """

    def __init__(self, function: str, location: str | None, cause: str) -> None:
        self.function = function
        self.location = location
        self.cause = cause
        where = f" (code at {location})" if location else ""
        super().__init__(f"function {function!r}{where}: {cause}")


class UnsupportedRuntimeError(FunctionCodeError):
    """The function's runtime (e.g. nodejs20.x) or package type (Image) cannot run locally."""


class InvokerClosedError(StreamkitError, RuntimeError):
    """An invoke was made on, or interrupted by closing, a ``FunctionInvoker``."""

    def __init__(self, function: str) -> None:
        self.function = function
        super().__init__(f"the local invoker of function {function!r} is closed")


__all__ += ["FunctionCodeError", "InvokerClosedError", "UnsupportedRuntimeError"]


class InvalidFilterPatternError(StreamkitError, ValueError):
    """A filter pattern (Lambda ``FilterCriteria`` / EventBridge syntax) is not valid.

    ``str(error)`` is exactly Lambda's message, ``"Invalid filter pattern definition."``, so it
    can be returned as an API error as is. ``detail`` says what was wrong (also shown as a note
    in tracebacks); ``pattern`` is the offending pattern text when known.
    """

    MESSAGE = "Invalid filter pattern definition."

    def __init__(self, detail: str = "", *, pattern: str | None = None) -> None:
        self.detail = detail
        self.pattern = pattern
        super().__init__(self.MESSAGE)
        if detail:
            self.add_note(f"detail: {detail}")

    def __reduce__(self) -> tuple[type[InvalidFilterPatternError], tuple[str], dict[str, object]]:
        return (type(self), (self.detail,), {"pattern": self.pattern})


__all__ += ["InvalidFilterPatternError"]


class TableNotFoundError(StreamkitError, LookupError):
    """A DynamoDB table named on the command line does not exist on the endpoint.

    ``table`` is the name (or ARN) given; ``endpoint`` says where it was looked up.
    """

    def __init__(self, table: str, endpoint: str) -> None:
        self.table = table
        self.endpoint = endpoint
        super().__init__(f"table {table} does not exist (looked up on {endpoint})")


class StreamNotEnabledError(StreamkitError, LookupError):
    """A table exists but has no DynamoDB stream enabled, so there is nothing to read."""

    def __init__(self, table: str) -> None:
        self.table = table
        super().__init__(
            f"table {table} has no stream enabled (enable one with StreamSpecification "
            "StreamEnabled=true, e.g. StreamViewType NEW_AND_OLD_IMAGES)"
        )


class QueueNotFoundError(StreamkitError, LookupError):
    """An SQS queue named on the command line (URL, ARN or name) does not exist."""

    def __init__(self, queue: str, endpoint: str) -> None:
        self.queue = queue
        self.endpoint = endpoint
        super().__init__(f"queue {queue} does not exist (looked up on {endpoint})")


class RecordsUnavailableError(StreamkitError, LookupError):
    """Stream records an on-failure record describes can no longer be read: they were trimmed
    (DynamoDB Streams keeps records 24 hours), or the stream or shard is gone (table deleted or
    recreated, stream disabled long ago). ``reason`` says which."""

    def __init__(self, stream_arn: str, shard_id: str, start_sequence: str, reason: str) -> None:
        self.stream_arn = stream_arn
        self.shard_id = shard_id
        self.start_sequence = start_sequence
        self.reason = reason
        super().__init__(
            f"records from {start_sequence} in {shard_id} of {stream_arn} are no longer in "
            f"the stream: {reason}"
        )


__all__ += [
    "QueueNotFoundError",
    "RecordsUnavailableError",
    "StreamNotEnabledError",
    "TableNotFoundError",
]


class InvalidMetricError(StreamkitError, ValueError):
    """A metric, dimension or namespace breaks a CloudWatch Embedded Metric Format rule
    (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html).
    ``field`` names what was wrong (e.g. ``metric 'Latency'``); ``reason`` says why."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}")


__all__ += ["InvalidMetricError"]


class InvalidFaultRuleError(StreamkitError, ValueError):
    """A fault-injection rule for the embedded emulator is malformed. ``field`` names the rule
    field (``probability``, ``error``, ...), ``reason`` says what is wrong with it."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"invalid fault rule: {field}: {reason}")


class FaultAdminError(StreamkitError):
    """The emulator's fault admin endpoint (``/_streamkit/faults``) refused a request or could
    not be reached. ``endpoint`` is the emulator URL, ``status`` the HTTP status (None when the
    endpoint did not answer)."""

    def __init__(self, endpoint: str, status: int | None, detail: str) -> None:
        self.endpoint = endpoint
        self.status = status
        self.detail = detail
        where = f"HTTP {status}" if status is not None else "no answer"
        super().__init__(f"fault admin at {endpoint}: {where}: {detail}")


__all__ += ["FaultAdminError", "InvalidFaultRuleError"]
