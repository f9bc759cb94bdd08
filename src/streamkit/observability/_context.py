"""What a log line, metric or trace says about *where* it happened: the Lambda invocation
and the stream record being processed.

Both are kept in context variables, so they follow the code into async record handlers
(``asyncio`` tasks copy the context they were created in) and never leak between
invocations: the observed handler sets them on entry and resets them on exit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextvars import ContextVar, Token
from datetime import datetime
from decimal import Decimal
from typing import Any

from streamkit.records import StreamRecord

_invocation: ContextVar[InvocationInfo | None] = ContextVar(
    "streamkit_observability_invocation", default=None
)
_record: ContextVar[StreamRecord | None] = ContextVar(
    "streamkit_observability_record", default=None
)


class InvocationInfo:
    """The Lambda invocation being served, read from the handler's ``context`` object
    (https://docs.aws.amazon.com/lambda/latest/dg/python-context.html). Read-only.

    A plain class, not a dataclass: building a slotted dataclass costs milliseconds at
    import, which every cold start would pay.
    """

    __slots__ = (
        "cold_start",
        "function_arn",
        "function_name",
        "function_version",
        "memory_limit_mb",
        "request_id",
    )

    def __init__(
        self,
        *,
        function_name: str | None,
        function_version: str | None,
        function_arn: str | None,
        memory_limit_mb: int | None,
        request_id: str | None,
        cold_start: bool,
    ) -> None:
        self.function_name = function_name
        self.function_version = function_version
        self.function_arn = function_arn
        self.memory_limit_mb = memory_limit_mb
        self.request_id = request_id
        self.cold_start = cold_start

    def __repr__(self) -> str:
        return (
            f"InvocationInfo(function_name={self.function_name!r}, "
            f"request_id={self.request_id!r}, cold_start={self.cold_start!r})"
        )

    @classmethod
    def from_context(cls, context: Any | None, *, cold_start: bool) -> InvocationInfo:
        """Read what ``context`` carries; fall back to the runtime's environment variables
        (the local runner's context has the same attributes)."""
        memory = _attribute(context, "memory_limit_in_mb") or os.environ.get(
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE"
        )
        try:
            memory_mb = int(memory) if memory is not None else None
        except (TypeError, ValueError):
            memory_mb = None
        return cls(
            function_name=_attribute(context, "function_name")
            or os.environ.get("AWS_LAMBDA_FUNCTION_NAME"),
            function_version=_attribute(context, "function_version")
            or os.environ.get("AWS_LAMBDA_FUNCTION_VERSION"),
            function_arn=_attribute(context, "invoked_function_arn"),
            memory_limit_mb=memory_mb,
            request_id=_attribute(context, "aws_request_id"),
            cold_start=cold_start,
        )

    def log_fields(self) -> dict[str, Any]:
        """The invocation's fields for a log line (the names Powertools uses, so existing
        CloudWatch Logs Insights queries keep working)."""
        fields: dict[str, Any] = {"cold_start": self.cold_start}
        for name, value in (
            ("function_name", self.function_name),
            ("function_version", self.function_version),
            ("function_arn", self.function_arn),
            ("function_memory_size", self.memory_limit_mb),
            ("function_request_id", self.request_id),
        ):
            if value is not None:
                fields[name] = value
        return fields


class ColdStart:
    """Answers "is this the first invocation of this handler in this process?" once per
    invocation. A Lambda process runs one handler, so this is the cold-start flag.

    Provisioned concurrency initializes ahead of traffic, so its first invocation pays no
    init latency and is not counted as cold (AWS_LAMBDA_INITIALIZATION_TYPE:
    https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).
    """

    __slots__ = ("_first",)

    def __init__(self) -> None:
        self._first = True

    def consume(self) -> bool:
        first, self._first = self._first, False
        if not first:
            return False
        return os.environ.get("AWS_LAMBDA_INITIALIZATION_TYPE") != "provisioned-concurrency"


def current_invocation() -> InvocationInfo | None:
    return _invocation.get()


def set_invocation(info: InvocationInfo | None) -> Token[InvocationInfo | None]:
    return _invocation.set(info)


def reset_invocation(token: Token[InvocationInfo | None]) -> None:
    _invocation.reset(token)


def current_record() -> StreamRecord | None:
    """The stream record whose handler is running, or ``None`` outside one."""
    return _record.get()


def set_record(record: StreamRecord | None) -> Token[StreamRecord | None]:
    return _record.set(record)


def reset_record(token: Token[StreamRecord | None]) -> None:
    _record.reset(token)


def record_fields(record: StreamRecord) -> dict[str, Any]:
    """Correlation fields for ``record``: never its images.

    Each field is read on its own: a malformed record still yields what can be read (its
    fields raise ``InvalidRecordError`` when read, and a log line must not).
    ``item_key`` is the decoded ``Keys`` map: keys identify the item, images describe it.
    """
    fields: dict[str, Any] = {}
    for name, read in _RECORD_FIELDS:
        try:
            value = read(record)
        except Exception:
            continue
        if value is not None:
            fields[name] = value
    return fields


_RECORD_FIELDS: tuple[tuple[str, Any], ...] = (
    ("event_id", lambda r: r.event_id),
    ("event_name", lambda r: r.event_name),
    ("sequence_number", lambda r: r.item_identifier or None),
    ("table_name", lambda r: r.table_name),
    ("item_key", lambda r: r.keys),
)


def xray_trace_id() -> str | None:
    """The X-Ray trace id of this invocation (``Root=`` of ``_X_AMZN_TRACE_ID``)."""
    header = os.environ.get("_X_AMZN_TRACE_ID")
    if not header:
        return None
    for part in header.split(";"):
        name, _, value = part.partition("=")
        if name.strip() == "Root" and value:
            return value.strip()
    return None


def batch_source(event: Any) -> tuple[str | None, float | None]:
    """``(table name, newest ApproximateCreationDateTime in epoch seconds)`` of a raw stream
    event, reading only what is needed; unreadable records are passed over (the batch
    itself reports them)."""
    table: str | None = None
    newest: float | None = None
    for raw in _raw_records(event):
        try:
            body = raw["dynamodb"]
            created = body["ApproximateCreationDateTime"]
        except Exception:
            created = None
        seconds = _epoch_seconds(created)
        if seconds is not None and (newest is None or seconds > newest):
            newest = seconds
        if table is None:
            table = _table_from_arn(raw)
    return table, newest


def _raw_records(event: Any) -> Iterator[Any]:
    try:
        records = event["Records"]
    except Exception:
        return iter(())
    return iter(records) if isinstance(records, list) else iter(())


def _epoch_seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, datetime):  # already decoded, e.g. by botocore
        return value.timestamp()
    return None


def _table_from_arn(raw: Any) -> str | None:
    try:
        arn = raw["eventSourceARN"]
    except Exception:
        return None
    if not isinstance(arn, str):
        return None
    _, sep, rest = arn.partition(":table/")
    name = rest.split("/", 1)[0]
    return name if sep and name else None


def _attribute(context: Any | None, name: str) -> Any:
    value = getattr(context, name, None)
    return value if value not in ("", None) else None
