"""How ``streamkit dlq replay`` invokes a function: a pluggable :class:`ReplayInvoker`.

- :class:`LocalInvoker` runs the deployed code the way ``streamkit run`` does: GetFunction,
  download ``Code.Location``, check CodeSha256, then a warm worker
  (:class:`~streamkit.local.invoker.FunctionInvoker`) whose AWS calls go to the same endpoint.
  The embedded emulator (moto) cannot execute Invoke (it would start docker), so against an
  emulator this is the only invoker that runs anything; it is what ``--invoke auto`` picks
  when an endpoint URL is set.
- :class:`LambdaApiInvoker` calls Lambda's Invoke API (RequestResponse), for AWS itself and for
  endpoints that really run functions (LocalStack with docker): ``--invoke lambda``, and the
  ``auto`` choice without an endpoint URL.

Both report an outcome with the fields :mod:`streamkit.streams.verdicts` reads (``ok``,
``function_error``, ``payload``...), so replay judges it as the runner judges an invoke.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from streamkit.streams.verdicts import InvokeOutcome, decoded_payload

__all__ = ["ApiInvokeOutcome", "LambdaApiInvoker", "LocalInvoker", "ReplayInvoker"]


class ReplayInvoker(Protocol):
    def invoke(self, function: str, event: Mapping[str, Any]) -> InvokeOutcome:
        """Invoke ``function`` (name or ARN) synchronously with ``event``."""
        ...

    def close(self) -> None: ...


class LocalInvoker:
    """Runs functions with the local runtime (one warm worker per function, reused)."""

    def __init__(
        self,
        lambda_client: Any,
        *,
        endpoint_url: str | None,
        region: str,
        state_dir: str | os.PathLike[str],
    ) -> None:
        self._lambda = lambda_client
        self._endpoint_url = endpoint_url
        self._region = region
        self._state_dir = state_dir
        self._invokers: dict[str, Any] = {}

    def invoke(self, function: str, event: Mapping[str, Any]) -> InvokeOutcome:
        invoker = self._invokers.get(function)
        if invoker is None:
            # Imported here: the local runtime is only needed when replay runs code itself.
            from streamkit.local.invoker import FunctionInvoker
            from streamkit.local.invoker.functions import fetch_function

            loaded = fetch_function(self._lambda, function, state_dir=self._state_dir)
            invoker = FunctionInvoker(
                loaded, endpoint_url=self._endpoint_url, region=self._region, max_concurrency=1
            )
            self._invokers[function] = invoker
        outcome: InvokeOutcome = invoker.invoke(event)
        return outcome

    def close(self) -> None:
        for invoker in self._invokers.values():
            invoker.close()
        self._invokers.clear()


@dataclass(frozen=True)
class ApiInvokeOutcome:
    """Invoke's answer: ``function_error`` is the X-Amz-Function-Error header ("Unhandled"),
    ``payload`` the decoded response (Lambda's error shape after a function error)."""

    request_id: str
    ok: bool
    status_code: int
    function_error: str | None
    payload: Any
    timed_out: bool = False
    init_error: bool = False


class LambdaApiInvoker:
    """Lambda's Invoke API. Give it a client without automatic retries and with a read
    timeout above the function's: a retried Invoke would run the batch twice."""

    def __init__(self, lambda_client: Any) -> None:
        self._lambda = lambda_client

    def invoke(self, function: str, event: Mapping[str, Any]) -> ApiInvokeOutcome:
        response = self._lambda.invoke(
            FunctionName=function,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
        body = response.get("Payload")
        raw = body.read() if body is not None else b""
        function_error = response.get("FunctionError")
        payload = decoded_payload(raw)
        error_type = payload.get("errorType") if isinstance(payload, Mapping) else None
        return ApiInvokeOutcome(
            request_id=str((response.get("ResponseMetadata") or {}).get("RequestId", "")),
            ok=function_error is None,
            status_code=int(response.get("StatusCode", 200)),
            function_error=function_error,
            payload=payload,
            timed_out=error_type == "Sandbox.Timedout",
        )

    def close(self) -> None:
        pass
