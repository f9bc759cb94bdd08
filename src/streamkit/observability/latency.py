"""Change -> handler latency per consumer target, as CloudWatch EMF.

The stream's own clock (``ApproximateCreationDateTime``) has one-second resolution, too coarse
for a pipeline that reacts in milliseconds. So the writer stamps each item with the time of the
write (``updated_at``, epoch milliseconds) and each consumer measures ``now - updated_at`` when
its work on the record starts::

    latency = ChangeLatency(namespace="Orders")

    changed = router.fan_out("order_events")

    @changed.target("audit")
    @latency.target("order_events.audit")
    def audit(record): ...

    handler = latency.observe(ObservedConsumer(router, namespace="Orders"))

``target(name)`` wraps a per-record function (``(record)`` or ``(record, context)``: the
signature is kept, so routers and workflows call it as before) and notes one value per call
under ``name``. ``observe(handler)`` wraps the Lambda handler and flushes after every
invocation (also a failed one): one EMF document per target, dimension ``Target=<name>``,
metric ``ChangeToHandlerLatency`` (Milliseconds, every value of the invocation, so CloudWatch
and log readers get percentiles). A record without the attribute (a REMOVE, an item written by
someone who does not stamp it) is not measured. A target skipped by idempotency markers is not
called, so it is not measured either: the metric is the latency of work actually done.

Like the rest of ``streamkit.observability`` it never costs the record: a bad stamp is
ignored, a failing sink is logged and swallowed.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Final, TypeVar, cast

from streamkit.observability.metrics import Metrics, MetricUnit
from streamkit.records import StreamRecord

__all__ = ["CHANGE_LATENCY_METRIC", "TARGET_DIMENSION", "ChangeLatency", "change_latency_ms"]

CHANGE_LATENCY_METRIC: Final = "ChangeToHandlerLatency"
TARGET_DIMENSION: Final = "Target"

F = TypeVar("F", bound=Callable[..., Any])
H = TypeVar("H", bound=Callable[[Any, Any], Any])

_internal = logging.getLogger("streamkit.observability")


def change_latency_ms(
    record: StreamRecord, attribute: str = "updated_at", *, now: float | None = None
) -> float | None:
    """``now - image[attribute]`` in milliseconds (``now`` in epoch seconds, default the
    current time), from the NewImage (the OldImage for a REMOVE); ``None`` when the record has
    no such numeric attribute."""
    try:
        image = record.new_image if record.event_name != "REMOVE" else record.old_image
    except Exception:  # an image the view type left out, a malformed record
        return None
    stamp = (image or {}).get(attribute)
    if isinstance(stamp, bool) or not isinstance(stamp, int | float | Decimal):
        return None
    current = time.time() if now is None else now
    return round(current * 1000.0 - float(stamp), 3)


class ChangeLatency:
    """Collects ``ChangeToHandlerLatency`` values per target; see the module docstring.

    ``namespace``: the CloudWatch namespace. ``attribute``: the epoch-milliseconds stamp of
    the change (default ``updated_at``). ``dimensions``: extra dimensions of every document.
    ``sink`` (default stdout, where Lambda's log capture picks EMF up) and ``clock`` (epoch
    seconds) are replaceable. Thread-safe.
    """

    def __init__(
        self,
        *,
        namespace: str = "streamkit",
        attribute: str = "updated_at",
        dimensions: Mapping[str, str] | None = None,
        sink: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.namespace = namespace
        self.attribute = attribute
        self._dimensions = dict(dimensions or {})
        self._sink = sink
        self._clock = clock
        self._lock = threading.Lock()
        self._values: dict[str, list[float]] = {}
        # Check names now: at flush time a mistake would only be logged, every invocation.
        Metrics(namespace, dimensions={TARGET_DIMENSION: "check", **self._dimensions})

    def note(self, target: str, record: StreamRecord) -> float | None:
        """Measure ``record`` for ``target`` now; the value noted (``None``: not measurable)."""
        value = change_latency_ms(record, self.attribute, now=self._clock())
        if value is not None:
            with self._lock:
                self._values.setdefault(target, []).append(value)
        return value

    def target(self, name: str) -> Callable[[F], F]:
        """Decorator: measure every call of a per-record function under ``name``."""
        Metrics(self.namespace, dimensions={TARGET_DIMENSION: name})  # a bad name fails now

        def decorate(function: F) -> F:
            @functools.wraps(function)
            def measured(record: StreamRecord, *args: Any, **kwargs: Any) -> Any:
                try:
                    self.note(name, record)
                except Exception as exc:  # never costs the record
                    _swallowed(exc)
                return function(record, *args, **kwargs)

            return cast(F, measured)

        return decorate

    def pending(self) -> dict[str, list[float]]:
        """The values noted since the last flush, per target (a copy)."""
        with self._lock:
            return {name: list(values) for name, values in self._values.items()}

    def flush(self) -> int:
        """Write one EMF document per target (more past 100 values) and forget the values;
        returns the number of documents written. Never raises."""
        with self._lock:
            values, self._values = self._values, {}
        written = 0
        for name, target_values in values.items():
            try:
                metrics = Metrics(
                    self.namespace,
                    dimensions={TARGET_DIMENSION: name, **self._dimensions},
                    sink=self._sink,
                    clock=self._clock,
                )
                metrics.add_metric(CHANGE_LATENCY_METRIC, MetricUnit.MILLISECONDS, target_values)
                written += metrics.flush()
            except Exception as exc:
                _swallowed(exc)
        return written

    def observe(self, handler: H) -> H:
        """The Lambda handler ``handler`` with a flush after every invocation."""

        @functools.wraps(handler)
        def observed(event: Any, context: Any) -> Any:
            try:
                return handler(event, context)
            finally:
                self.flush()

        return cast(H, observed)


def _swallowed(error: Exception) -> None:
    with contextlib.suppress(Exception):
        _internal.warning(
            "change latency metric failed (%s: %s); the record is unaffected",
            type(error).__name__,
            error,
        )
