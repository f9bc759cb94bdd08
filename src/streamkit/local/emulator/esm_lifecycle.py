"""Event source mappings answer with Lambda's states, result field and conflict checks.

What Lambda answers (recorded against real AWS in LocalStack's snapshot
tests/aws/services/lambda_/event_source_mapping/test_lambda_integration_dynamodbstreams.snapshot.json,
and https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html):

- CreateEventSourceMapping answers HTTP 202 with ``State: "Creating"``,
  ``StateTransitionReason: "User action"``, ``LastProcessingResult: "No records processed"``
  and, for a stream source without one, ``DestinationConfig: {"OnFailure": {}}``. The mapping
  then settles to ``Enabled`` (or ``Disabled`` when created with ``Enabled: false``).
- UpdateEventSourceMapping answers ``Disabling`` / ``Enabling`` when it turns the mapping off or
  on, ``Updating`` otherwise, and settles to ``Disabled`` / ``Enabled``.
- DeleteEventSourceMapping answers ``Deleting``; the mapping stays listed in that state until
  Lambda has removed it (Terraform's provider waits for GetEventSourceMapping to answer 404).
- ``LastProcessingResult`` becomes ``"OK"`` once a batch was processed (the same snapshot's
  update answer after a delivery). ``streamkit run`` reports it through the emulator's admin
  route (:data:`PROCESSING_RESULT_PATH`), since the runner, not moto, runs the function.
- A second mapping of the same function and event source is refused with HTTP 409
  ResourceConflictException naming the existing mapping (LocalStack's validation, written
  against AWS; the same wording appears in CloudFormation errors users report).

A transition lasts :func:`transition_seconds` (``STREAMKIT_EMULATOR_ESM_TRANSITION_SECONDS``,
default 0.5 s; AWS takes seconds to minutes). States are computed when read, so nothing runs in
the background. The runner treats ``Creating``/``Enabling``/``Updating`` as running and
``Disabling``/``Deleting`` as stopped, as Lambda does.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_TRANSITION_SECONDS",
    "NO_RECORDS_PROCESSED",
    "PROCESSING_RESULT_PATH",
    "TRANSITION_SECONDS_ENV",
    "Lifecycle",
    "conflict_message",
    "lifecycle_of",
    "purge_deleted",
    "record_processing_result",
    "transition_seconds",
]

TRANSITION_SECONDS_ENV = "STREAMKIT_EMULATOR_ESM_TRANSITION_SECONDS"
DEFAULT_TRANSITION_SECONDS = 0.5
NO_RECORDS_PROCESSED = "No records processed"
USER_ACTION = "User action"
# POST <endpoint>/_streamkit/event-source-mappings/<uuid>/processing-result
#   {"LastProcessingResult": "OK"}  -> 204; unknown UUID -> 404.
PROCESSING_RESULT_PATH = "/_streamkit/event-source-mappings/"
PROCESSING_RESULT_SUFFIX = "/processing-result"

_ATTRIBUTE = "_streamkit_lifecycle"
_lock = threading.Lock()


def transition_seconds() -> float:
    """How long a Creating/Enabling/Disabling/Updating/Deleting state lasts."""
    raw = os.environ.get(TRANSITION_SECONDS_ENV)
    if raw is None:
        return DEFAULT_TRANSITION_SECONDS
    try:
        return max(0.0, float(raw))
    except ValueError:
        return DEFAULT_TRANSITION_SECONDS


@dataclass
class Lifecycle:
    """One mapping's state machine: a transitional state until ``settles_at``, then the
    stable state its ``Enabled`` flag says (or gone, after ``Deleting``)."""

    transitional: str
    settles_at: float
    last_processing_result: str = NO_RECORDS_PROCESSED

    @property
    def deleting(self) -> bool:
        return self.transitional == "Deleting"

    def state(self, enabled: bool, now: float | None = None) -> str:
        if self.deleting or (now if now is not None else time.monotonic()) < self.settles_at:
            return self.transitional
        return "Enabled" if enabled else "Disabled"

    def begin(self, transitional: str) -> None:
        if self.deleting:  # a mapping being deleted stays so
            return
        self.transitional = transitional
        self.settles_at = time.monotonic() + transition_seconds()

    def deleted(self, now: float | None = None) -> bool:
        """True once a Deleting mapping's transition is over: it is no longer listed."""
        return self.deleting and (now if now is not None else time.monotonic()) >= self.settles_at


def lifecycle_of(esm: Any) -> Lifecycle:
    """The mapping's lifecycle; a mapping created before the patch counts as settled."""
    life: Lifecycle | None = getattr(esm, _ATTRIBUTE, None)
    if life is None:
        with _lock:
            life = getattr(esm, _ATTRIBUTE, None)
            if life is None:
                life = Lifecycle(transitional="Creating", settles_at=0.0)
                setattr(esm, _ATTRIBUTE, life)
    return life


def start_lifecycle(esm: Any) -> Lifecycle:
    life = Lifecycle(transitional="Creating", settles_at=time.monotonic() + transition_seconds())
    setattr(esm, _ATTRIBUTE, life)
    return life


def update_transition(was_enabled: bool, spec: dict[str, Any]) -> str:
    """The state UpdateEventSourceMapping answers with."""
    enabled = spec.get("Enabled")
    if isinstance(enabled, bool) and enabled != was_enabled:
        return "Enabling" if enabled else "Disabling"
    return "Updating"


def conflict_message(event_source_arn: str, function_name: str, uuid: str) -> str:
    return (
        f'The event source arn (" {event_source_arn} ") and function (" {function_name} ") '
        f"provided mapping already exists. Please update or delete the existing mapping "
        f"with UUID {uuid}"
    )


def purge_deleted(backend: Any) -> None:
    """Remove the mappings whose Deleting state is over (called before every lookup)."""
    mappings: dict[str, Any] = backend._event_source_mappings
    now = time.monotonic()
    for uuid in [u for u, esm in list(mappings.items()) if lifecycle_of(esm).deleted(now)]:
        mappings.pop(uuid, None)


def _all_mappings() -> Iterator[Any]:
    from moto.awslambda.models import lambda_backends

    for account_id in list(lambda_backends.keys()):
        for region in list(lambda_backends[account_id].keys()):
            backend = lambda_backends[account_id][region]
            yield from list(backend._event_source_mappings.values())


def record_processing_result(uuid: str, result: str) -> bool:
    """Set a mapping's LastProcessingResult (the runner reports each batch's outcome).
    False when no mapping has that UUID."""
    for esm in _all_mappings():
        if esm.uuid == uuid:
            lifecycle_of(esm).last_processing_result = result
            return True
    return False
