"""AWS X-Ray subsegments, when aws-xray-sdk is installed and enabled; no-ops otherwise.

``Tracer.begin(name, annotations)`` opens a subsegment under whatever is current: in Lambda
with active tracing, the function's facade segment (built by the SDK from
``_X_AMZN_TRACE_ID``); elsewhere, a segment the caller began. With no segment at all the
SDK logs and returns nothing, and the span is a no-op.

Tracing is off (and aws-xray-sdk is never imported) when ``AWS_XRAY_SDK_ENABLED`` is
``false`` or the SDK is not installed (``pip install streamkit[xray]``). The SDK sends
finished entities over UDP to ``AWS_XRAY_DAEMON_ADDRESS`` (default 127.0.0.1:2000); in
Lambda subsegments are streamed as they close:
https://docs.aws.amazon.com/xray/latest/devguide/xray-sdk-python.html

Nothing here raises: a tracing failure is logged once and the traced code runs on.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["AnnotationValue", "Span", "Tracer"]

logger = logging.getLogger("streamkit.observability")

AnnotationValue = str | int | float | bool
_METADATA_NAMESPACE: Final = "streamkit"
_MAX_STACK_FRAMES: Final = 10


class Span:
    """An open subsegment. This base class is the no-op used when tracing is off."""

    __slots__ = ()

    @property
    def recording(self) -> bool:
        """False for the no-op span (tracing off, or no segment to attach to)."""
        return False

    def annotate(self, key: str, value: AnnotationValue) -> None:
        """An indexed, searchable key (letters, digits, underscore) and value."""

    def add_metadata(self, key: str, value: Any) -> None:
        """Unindexed detail, under the ``streamkit`` metadata namespace."""

    def record_exception(self, error: BaseException) -> None:
        """Mark the subsegment as failed with ``error`` (cause and stack) and put the error
        in metadata under ``error``."""

    def close(self) -> None:
        """End the subsegment (in Lambda this is when it is sent)."""


_NOOP_SPAN: Final = Span()


class _XRaySpan(Span):
    __slots__ = ("_recorder", "_subsegment", "_tracer")

    def __init__(self, tracer: Tracer, recorder: Any, subsegment: Any) -> None:
        self._tracer = tracer
        self._recorder = recorder
        self._subsegment = subsegment

    @property
    def recording(self) -> bool:
        return True

    def annotate(self, key: str, value: AnnotationValue) -> None:
        try:
            self._subsegment.put_annotation(key, value)
        except Exception as exc:
            self._tracer._report(exc)

    def add_metadata(self, key: str, value: Any) -> None:
        try:
            self._subsegment.put_metadata(key, value, _METADATA_NAMESPACE)
        except Exception as exc:
            self._tracer._report(exc)

    def record_exception(self, error: BaseException) -> None:
        try:
            stack = traceback.extract_tb(error.__traceback__, limit=_MAX_STACK_FRAMES)
            self._subsegment.add_exception(error, stack)
            self._subsegment.put_metadata(
                "error",
                {"type": type(error).__name__, "message": str(error)},
                _METADATA_NAMESPACE,
            )
        except Exception as exc:
            self._tracer._report(exc)

    def close(self) -> None:
        try:
            if self._recorder.current_subsegment() is self._subsegment:
                self._recorder.end_subsegment()  # sends it (streams it, in Lambda)
            else:
                # Someone left a subsegment open inside ours: end ours without disturbing
                # theirs (it is then sent with its parent segment, if ever).
                self._subsegment.close()
        except Exception as exc:
            self._tracer._report(exc)


class Tracer:
    """Opens X-Ray subsegments through ``recorder`` (default: the SDK's global
    ``xray_recorder``, imported on first use).

    ``enabled``: ``None`` follows ``AWS_XRAY_SDK_ENABLED`` (read on first use); ``False``
    never traces; ``True`` traces if the SDK can be imported.
    """

    def __init__(self, *, enabled: bool | None = None, recorder: Any | None = None) -> None:
        self._wanted = enabled
        self._recorder = recorder
        self._resolved: bool | None = None
        self._reported = False

    @property
    def enabled(self) -> bool:
        if self._resolved is None:
            self._resolved = self._resolve()
        return self._resolved

    def begin(self, name: str, annotations: Mapping[str, AnnotationValue] | None = None) -> Span:
        """Open subsegment ``name`` under the current entity, with ``annotations``."""
        if not self.enabled:
            return _NOOP_SPAN
        if os.environ.get("LAMBDA_TASK_ROOT") and not os.environ.get("_X_AMZN_TRACE_ID"):
            # A Lambda-like runtime with no trace header (e.g. a local runner): the SDK would
            # discard each subsegment with a warning. Nothing to attach to: no-op.
            return _NOOP_SPAN
        recorder: Any = self._recorder
        try:
            subsegment = recorder.begin_subsegment(name)
        except Exception as exc:
            self._report(exc)
            return _NOOP_SPAN
        if subsegment is None:  # no segment to attach to (SDK context_missing=LOG_ERROR)
            return _NOOP_SPAN
        span = _XRaySpan(self, recorder, subsegment)
        for key, value in (annotations or {}).items():
            span.annotate(key, value)
        return span

    def _resolve(self) -> bool:
        if self._wanted is False:
            return False
        if self._wanted is None and os.environ.get("AWS_XRAY_SDK_ENABLED", "").lower() == "false":
            return False
        if self._recorder is None:
            try:
                from aws_xray_sdk.core import xray_recorder  # optional: streamkit[xray]
            except ImportError:
                logger.debug("aws-xray-sdk is not installed; tracing is off")
                return False
            self._recorder = xray_recorder
        return True

    def _report(self, error: Exception) -> None:
        # Once per tracer: a broken tracer would otherwise log once per record.
        if not self._reported:
            self._reported = True
            logger.warning(
                "X-Ray tracing failed (%s: %s); traces may be incomplete, processing goes on",
                type(error).__name__,
                error,
                exc_info=error,
            )
