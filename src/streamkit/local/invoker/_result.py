"""What an invoke returns (``InvokeResult``, for each way an invoke ends) and reports (Lambda's
REPORT line)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from streamkit.local.invoker._worker import Worker
from streamkit.local.invoker.functions import FunctionSpec

# The package's one logger, named for the public module users configure.
logger = logging.getLogger("streamkit.local.invoker")


@dataclass(frozen=True)
class InvokeResult:
    """The outcome of one invoke, as Lambda's Invoke API reports it (plus local details).

    ``payload`` is the decoded JSON response; for a function error it is Lambda's error shape
    ``{"errorMessage", "errorType", "stackTrace", "requestId"}``. A handler that returns
    ``bytes`` gets them back as is (``payload`` is then those bytes unless they are JSON).
    """

    request_id: str
    ok: bool
    function_error: str | None
    """None, or "Unhandled" as in Invoke's X-Amz-Function-Error."""
    payload: Any
    raw_payload: bytes
    duration_ms: float
    init_duration_ms: float | None
    """Set on a cold start: how long the new worker took to start and import the handler."""
    log_tail: str
    """The last lines (up to 100) the worker wrote during this invoke, and during its init on a
    cold start."""
    timed_out: bool = False
    init_error: bool = False
    """The handler could not be loaded (import error, missing handler, exception in init code):
    the code is broken, as opposed to the handler failing on this event."""
    max_memory_used_mb: int | None = None
    executed_version: str = "$LATEST"
    status_code: int = 200

    @property
    def error_type(self) -> str | None:
        return self._error_field("errorType")

    @property
    def error_message(self) -> str | None:
        return self._error_field("errorMessage")

    @property
    def cold_start(self) -> bool:
        return self.init_duration_ms is not None

    def _error_field(self, name: str) -> str | None:
        if self.ok or not isinstance(self.payload, Mapping):
            return None
        value = self.payload.get(name)
        return str(value) if value is not None else None


def platform_error(error_type: str, message: str, request_id: str) -> dict[str, Any]:
    """Lambda's error payload for a failure of the environment (timeout, crash), which has
    no stack trace, unlike the handler's own errors."""
    return {"errorMessage": message, "errorType": error_type, "requestId": request_id}


def answered_invoke(
    spec: FunctionSpec,
    request_id: str,
    header: Mapping[str, Any],
    body: bytes,
    *,
    duration_ms: float,
    init_duration_ms: float | None,
    max_memory_used_mb: int,
    log_tail: str,
) -> InvokeResult:
    """The result of an invoke the worker answered (its ``result`` message): the handler's
    response, or the error it raised."""
    error: dict[str, Any] | None = header.get("error")
    if error is not None:
        logger.info(
            "function error: function %s, request %s: %s: %s (%.1f ms)",
            spec.name,
            request_id,
            error.get("errorType"),
            error.get("errorMessage"),
            duration_ms,
        )
        payload: Any = error
        body = json.dumps(error).encode()
    else:
        try:
            payload = json.loads(body)
        except ValueError:  # the handler returned bytes that are not JSON
            payload = body
    return InvokeResult(
        request_id=request_id,
        ok=error is None,
        function_error=None if error is None else "Unhandled",
        payload=payload,
        raw_payload=body,
        duration_ms=duration_ms,
        init_duration_ms=init_duration_ms,
        log_tail=log_tail,
        max_memory_used_mb=max_memory_used_mb,
        executed_version=spec.version,
    )


def failed_invoke(
    request_id: str,
    error: dict[str, Any],
    *,
    duration_ms: float,
    init_duration_ms: float | None,
    log_tail: str,
    executed_version: str,
    timed_out: bool = False,
    init_error: bool = False,
) -> InvokeResult:
    """The result of an invoke that produced no response: a failed init, a timeout, a crash."""
    return InvokeResult(
        request_id=request_id,
        ok=False,
        function_error="Unhandled",
        payload=error,
        raw_payload=json.dumps(error).encode(),
        duration_ms=duration_ms,
        init_duration_ms=init_duration_ms,
        log_tail=log_tail,
        timed_out=timed_out,
        init_error=init_error,
        executed_version=executed_version,
    )


def log_report(
    spec: FunctionSpec,
    worker: Worker,
    request_id: str,
    duration_ms: float,
    max_memory_used_mb: int,
    init_duration_ms: float | None,
) -> None:
    """Log Lambda's REPORT line for one invoke, and warn (once per worker) when it used more
    memory than the function's MemorySize (see the package docstring)."""
    init = f"\tInit Duration: {init_duration_ms:.2f} ms" if init_duration_ms else ""
    logger.debug(
        "REPORT %s RequestId: %s\tDuration: %.2f ms\tMemory Size: %d MB\tMax Memory Used: %d MB%s",
        spec.name,
        request_id,
        duration_ms,
        spec.memory_mb,
        max_memory_used_mb,
        init,
    )
    if max_memory_used_mb > spec.memory_mb and not worker.warned_memory:
        worker.warned_memory = True
        logger.warning(
            "function %s used %d MB, more than its MemorySize of %d MB: Lambda would stop it "
            "(Runtime.OutOfMemory); the local runtime does not enforce MemorySize",
            spec.name,
            max_memory_used_mb,
            spec.memory_mb,
        )
