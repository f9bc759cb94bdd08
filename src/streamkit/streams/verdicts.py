"""What an invoke's outcome means for the batch: success, partial success, or failure.

:func:`judge_response` applies ReportBatchItemFailures. Success: an empty or null
``batchItemFailures``, an empty or null response. Partial: the checkpoint moves to the lowest
failed ``itemIdentifier`` (a SequenceNumber) and everything from there is retried. Whole batch
failed: a function error or timeout, an empty/null/unknown identifier, an entry without the
``itemIdentifier`` key, or a response that is not such an object.
https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = [
    "InvokeOutcome",
    "Invoker",
    "InvokerCrash",
    "Verdict",
    "VerdictKind",
    "decoded_payload",
    "describe_error",
    "judge_response",
]


class InvokeOutcome(Protocol):
    """What an invoker reports (``streamkit.local.invoker.InvokeResult`` has these fields)."""

    @property
    def request_id(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def status_code(self) -> int: ...
    @property
    def function_error(self) -> str | None: ...
    @property
    def payload(self) -> Any: ...
    @property
    def timed_out(self) -> bool: ...
    @property
    def init_error(self) -> bool: ...


class Invoker(Protocol):
    def invoke(self, payload: Mapping[str, Any]) -> InvokeOutcome: ...


@dataclass(frozen=True)
class InvokerCrash:
    """Stands in for an outcome when the invoker itself raised (counted as a function error)."""

    request_id: str
    error: str
    ok: bool = False
    status_code: int = 500
    function_error: str | None = "Unhandled"
    payload: Any = None
    timed_out: bool = False
    init_error: bool = False


def decoded_payload(payload: Any) -> Any:
    if isinstance(payload, (bytes, bytearray)):
        text = payload.decode("utf-8", "replace").strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text
    return payload


class VerdictKind(enum.Enum):
    SUCCESS = "success"
    PARTIAL = "partial"
    FAILURE = "failure"


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    reason: str = ""
    retry_from: str | None = None  # PARTIAL: the lowest failed sequence number


def judge_response(
    outcome: InvokeOutcome,
    records: Sequence[Mapping[str, Any]],
    *,
    report_batch_item_failures: bool,
) -> Verdict:
    """Did the invoke succeed, partly succeed, or fail as a whole?"""
    if not outcome.ok:
        return Verdict(VerdictKind.FAILURE, describe_error(outcome))
    if not report_batch_item_failures:
        return Verdict(VerdictKind.SUCCESS)
    response = decoded_payload(outcome.payload)
    if not response:  # null, {}, [] and "" are all success
        return Verdict(VerdictKind.SUCCESS)
    if not isinstance(response, Mapping):
        return Verdict(
            VerdictKind.FAILURE, f"response is not a batchItemFailures object: {response!r:.200}"
        )
    failures = response.get("batchItemFailures")
    if not failures:  # missing, null or empty list
        return Verdict(VerdictKind.SUCCESS)
    if not isinstance(failures, list):
        return Verdict(VerdictKind.FAILURE, f"batchItemFailures is not a list: {failures!r:.200}")
    in_batch = {r["dynamodb"]["SequenceNumber"] for r in records}
    failed: list[str] = []
    for entry in failures:
        if not isinstance(entry, Mapping) or "itemIdentifier" not in entry:
            return Verdict(
                VerdictKind.FAILURE,
                f"batchItemFailures entry without itemIdentifier: {entry!r:.200}",
            )
        identifier = entry["itemIdentifier"]
        if not isinstance(identifier, str) or not identifier:
            return Verdict(VerdictKind.FAILURE, f"empty or null itemIdentifier: {identifier!r}")
        if identifier not in in_batch:
            return Verdict(
                VerdictKind.FAILURE, f"itemIdentifier {identifier!r} is not in the batch"
            )
        failed.append(identifier)
    lowest = min(failed, key=int)
    return Verdict(
        VerdictKind.PARTIAL, f"{len(failed)} item failure(s), lowest {lowest}", retry_from=lowest
    )


def describe_error(outcome: InvokeOutcome) -> str:
    if isinstance(outcome, InvokerCrash):
        return f"invoker error: {outcome.error}"
    payload = decoded_payload(outcome.payload)
    detail = ""
    if isinstance(payload, Mapping) and payload.get("errorMessage") is not None:
        detail = f"{payload.get('errorType', 'Error')}: {payload['errorMessage']}"
    if outcome.init_error:
        return f"function could not be initialized: {detail or 'init failed'}"
    if outcome.timed_out:
        return f"function timed out{': ' + detail if detail else ''}"
    return (
        detail
        or f"function error ({outcome.function_error or 'status ' + str(outcome.status_code)})"
    )
