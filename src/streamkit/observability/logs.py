"""Structured JSON logs with Lambda and stream-record correlation.

Every line is one JSON object on stdout (CloudWatch Logs stores it as one event and Logs
Insights discovers its fields). Besides the message it carries:

- the invocation: ``function_name``, ``function_request_id``, ``cold_start``, ... and
  ``xray_trace_id``;
- inside a record handler run by ``observed_batch_handler``: ``event_id``, ``event_name``,
  ``sequence_number``, ``table_name``, ``item_key`` (the decoded ``Keys``);
- any fields passed as keyword arguments: ``log.info("shipped", order_id=7)``.

Images policy: item images (``NewImage``/``OldImage``) are personal or business data and
are **never** logged unless asked for, with ``log_images=True`` or the environment variable
``STREAMKIT_LOG_IMAGES=true``. Without that, any field named ``NewImage``, ``OldImage``,
``new_image`` or ``old_image`` (at any depth of a logged value, e.g. ``record.raw``) is
replaced by a redaction marker, and a ``StreamRecord`` logged as a field shows only its
correlation fields. The message text itself is not inspected: pass data as fields, not
formatted into the message.

PII policy: fields named in ``redact_fields=`` (or the comma-separated environment variable
``STREAMKIT_LOG_REDACT_FIELDS``, e.g. ``email,phone,address``) are replaced by ``[redacted]``
at any depth of every logged value, whatever it is called, and even when images are logged:
an image logged under another name, or a customer record passed as a field, keeps its shape
but loses those values.

Level: ``STREAMKIT_LOG_LEVEL``, else ``AWS_LAMBDA_LOG_LEVEL`` (Lambda's advanced logging
controls, https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-advanced.html),
else INFO.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
import threading
from collections.abc import Iterable, Mapping, MutableMapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import IO, TYPE_CHECKING, Any, Final

from streamkit.observability._context import (
    current_invocation,
    current_record,
    record_fields,
    xray_trace_id,
)
from streamkit.records import StreamRecord

__all__ = [
    "IMAGE_FIELD_NAMES",
    "PII_REDACTED",
    "REDACTED",
    "JsonFormatter",
    "JsonLogHandler",
    "StructuredLogger",
    "get_logger",
    "images_allowed",
    "level_from_env",
    "redacted_fields",
]

IMAGE_FIELD_NAMES: Final = frozenset({"NewImage", "OldImage", "new_image", "old_image"})
REDACTED: Final = "[redacted: item images are not logged; set STREAMKIT_LOG_IMAGES=true]"
PII_REDACTED: Final = "[redacted]"
# LogRecord attributes that carry our fields and the per-logger images decision. The leading
# underscore keeps them out of the "extra attributes" the formatter copies into the line.
_FIELDS_ATTR: Final = "_streamkit_fields"
_IMAGES_ATTR: Final = "_streamkit_log_images"
_MAX_DEPTH: Final = 12
# Keyword arguments the stdlib logging calls take themselves; any other is a log field.
_LOGGING_KWARGS: Final = frozenset({"exc_info", "stack_info", "stacklevel", "extra"})
_STANDARD_ATTRS: Final = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
}
_LEVEL_ALIASES: Final = {"TRACE": "DEBUG", "WARN": "WARNING", "FATAL": "CRITICAL"}
_TRUE: Final = frozenset({"1", "true", "yes", "on"})


def images_allowed(explicit: bool | None = None) -> bool:
    """Whether item images may be logged: ``explicit`` if given, else
    ``STREAMKIT_LOG_IMAGES`` (``true``/``1``/``yes``/``on``), else no."""
    if explicit is not None:
        return explicit
    return os.environ.get("STREAMKIT_LOG_IMAGES", "").strip().lower() in _TRUE


def redacted_fields(explicit: Iterable[str] | None = None) -> frozenset[str]:
    """Field names whose values are never logged: ``explicit`` if given, else the
    comma-separated ``STREAMKIT_LOG_REDACT_FIELDS`` (blanks ignored), else none."""
    if explicit is not None:
        return frozenset(explicit)
    setting = os.environ.get("STREAMKIT_LOG_REDACT_FIELDS", "")
    return frozenset(name.strip() for name in setting.split(",") if name.strip())


def level_from_env(default: int = logging.INFO) -> int:
    """The log level from ``STREAMKIT_LOG_LEVEL``, else ``AWS_LAMBDA_LOG_LEVEL`` (whose
    TRACE/WARN/FATAL map to DEBUG/WARNING/CRITICAL), else ``default``. An unknown name is
    ignored rather than breaking the function at import."""
    for variable in ("STREAMKIT_LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL"):
        name = os.environ.get(variable, "").strip().upper()
        if not name:
            continue
        level = logging.getLevelName(_LEVEL_ALIASES.get(name, name))
        if isinstance(level, int):
            return level
    return default


class JsonFormatter(logging.Formatter):
    """Formats a ``LogRecord`` as one JSON line with invocation and record correlation.

    ``log_images`` is the default images decision for records that did not come through a
    ``StructuredLogger`` with its own decision (``None``: ``STREAMKIT_LOG_IMAGES``).
    ``redact_fields``: names whose values are always redacted (``None``:
    ``STREAMKIT_LOG_REDACT_FIELDS``).
    """

    def __init__(
        self, *, log_images: bool | None = None, redact_fields: Iterable[str] | None = None
    ) -> None:
        super().__init__()
        self.log_images = log_images
        self.redact_fields = None if redact_fields is None else frozenset(redact_fields)

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "timestamp": _iso_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        invocation = current_invocation()
        if invocation is not None:
            payload.update(invocation.log_fields())
        trace_id = xray_trace_id()
        if trace_id is not None:
            payload["xray_trace_id"] = trace_id
        redact = redacted_fields(self.redact_fields)
        stream_record = current_record()
        if stream_record is not None:
            # item_key is the decoded key: a table keyed by e-mail must not log it either.
            payload.update(render(record_fields(stream_record), allow_images=True, redact=redact))

        allowed: bool | None = getattr(record, _IMAGES_ATTR, None)
        if allowed is None:
            allowed = images_allowed(self.log_images)
        fields: dict[str, Any] = {
            name: value
            for name, value in vars(record).items()
            if name not in _STANDARD_ATTRS and not name.startswith("_")
        }
        fields.update(getattr(record, _FIELDS_ATTR, None) or {})
        for name, value in fields.items():
            # The correlation fields above win: a caller cannot fake the request id.
            if name in payload:
                continue
            if name in redact:
                payload[name] = PII_REDACTED
            elif not allowed and name in IMAGE_FIELD_NAMES:
                payload[name] = REDACTED
            else:
                payload[name] = render(value, allow_images=allowed, redact=redact)

        if record.exc_info and record.exc_info[1] is not None:
            payload["exception_name"] = type(record.exc_info[1]).__name__
            payload["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            payload["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(payload, default=_json_default, ensure_ascii=False)


def render(
    value: Any, *, allow_images: bool, redact: frozenset[str] = frozenset(), _depth: int = 0
) -> Any:
    """``value`` made safe to log: images redacted unless ``allow_images``, fields named in
    ``redact`` always; a ``StreamRecord`` shown as its correlation fields (plus decoded
    images if allowed, with ``redact`` applied inside them too)."""
    if _depth > _MAX_DEPTH:
        return "[truncated]"  # also where a cycle would end
    if isinstance(value, StreamRecord):
        shown: dict[str, Any] = record_fields(value)
        if allow_images:
            for name in ("new_image", "old_image"):
                try:
                    image = getattr(value, name)
                except Exception:
                    continue
                if image is not None:
                    shown[name] = image
        # Correlation fields (item_key included) go through the same policy as any value.
        return render(shown, allow_images=allow_images, redact=redact, _depth=_depth + 1)
    if isinstance(value, Mapping):
        return {
            str(key): (
                PII_REDACTED
                if key in redact
                else REDACTED
                if not allow_images and key in IMAGE_FIELD_NAMES
                else render(item, allow_images=allow_images, redact=redact, _depth=_depth + 1)
            )
            for key, item in value.items()
        }
    if isinstance(value, list | tuple):
        return [
            render(item, allow_images=allow_images, redact=redact, _depth=_depth + 1)
            for item in value
        ]
    return value


if TYPE_CHECKING:
    _LoggerAdapter = logging.LoggerAdapter[logging.Logger]
else:
    _LoggerAdapter = logging.LoggerAdapter


class StructuredLogger(_LoggerAdapter):
    """A ``logging.Logger`` adapter whose keyword arguments become JSON fields::

        log = get_logger(__name__, service="audit")
        log.info("order shipped", order_id=order["id"])

    ``append_keys`` adds fields to every later line of this adapter. ``log_images`` is this
    logger's images decision (``None``: the formatter's, i.e. ``STREAMKIT_LOG_IMAGES``).
    """

    def __init__(
        self, logger: logging.Logger, *, log_images: bool | None = None, **keys: Any
    ) -> None:
        super().__init__(logger, {})
        self.log_images = log_images
        self._keys: dict[str, Any] = dict(keys)

    def append_keys(self, **keys: Any) -> None:
        self._keys.update(keys)

    def remove_keys(self, *names: str) -> None:
        for name in names:
            self._keys.pop(name, None)

    @property
    def keys(self) -> dict[str, Any]:
        """The fields added to every line (a copy)."""
        return dict(self._keys)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        fields = dict(self._keys)
        for name in [name for name in kwargs if name not in _LOGGING_KWARGS]:
            fields[name] = kwargs.pop(name)
        extra = dict(kwargs.get("extra") or {})
        extra[_FIELDS_ATTR] = fields
        if self.log_images is not None:
            extra.setdefault(_IMAGES_ATTR, self.log_images)  # a per-call decision wins
        kwargs["extra"] = extra
        return msg, kwargs


class JsonLogHandler(logging.Handler):
    """Writes formatted lines to ``stream``, or to whatever ``sys.stdout`` is at the time
    (Lambda sends stdout to CloudWatch Logs; test harnesses replace ``sys.stdout``)."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        log_images: bool | None = None,
        redact_fields: Iterable[str] | None = None,
    ) -> None:
        super().__init__()
        self._stream = stream
        self._write_lock = threading.Lock()
        self.setFormatter(JsonFormatter(log_images=log_images, redact_fields=redact_fields))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
            stream = self._stream if self._stream is not None else sys.stdout
            with self._write_lock:
                stream.write(line + "\n")
                stream.flush()
        except Exception:
            self.handleError(record)  # logging must never break the caller


def get_logger(
    name: str,
    *,
    service: str | None = None,
    log_images: bool | None = None,
    level: int | str | None = None,
    stream: IO[str] | None = None,
    redact_fields: Iterable[str] | None = None,
) -> StructuredLogger:
    """A ``StructuredLogger`` over ``logging.getLogger(name)``, which is given one
    ``JsonLogHandler`` (added once, however often this is called) and stops propagating to
    the root logger (the Lambda runtime's own handler would print every line twice).

    ``level``: a level or its name; ``None`` reads the environment (``level_from_env``).
    ``service`` becomes a field of every line. ``stream``: where lines go (default stdout).
    ``redact_fields``: names whose values this logger's lines never carry (``None``:
    ``STREAMKIT_LOG_REDACT_FIELDS``).
    """
    logger = logging.getLogger(name)
    handler = next((h for h in logger.handlers if isinstance(h, JsonLogHandler)), None)
    if handler is None or (stream is not None and handler._stream is not stream):
        if handler is not None:
            logger.removeHandler(handler)
        handler = JsonLogHandler(stream)
        logger.addHandler(handler)
    if redact_fields is not None and isinstance(handler.formatter, JsonFormatter):
        handler.formatter.redact_fields = frozenset(redact_fields)
    if level is None:
        logger.setLevel(level_from_env())
    else:
        logger.setLevel(level.upper() if isinstance(level, str) else level)
    logger.propagate = False
    keys: dict[str, Any] = {} if service is None else {"service": service}
    return StructuredLogger(logger, log_images=log_images, **keys)


def _iso_timestamp(created: float) -> str:
    moment = datetime.fromtimestamp(created, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        if not value.is_finite():
            return str(value)
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:
            return list(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return repr(value) if isinstance(value, StreamRecord) else str(value)
