"""Errors raised by the routing package. Each carries the details a caller needs to act on it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from streamkit.exceptions import StreamkitError

__all__ = [
    "AggregateWriteError",
    "AggregationError",
    "InvalidDeltaError",
    "InvalidRouteError",
    "InvalidTransitionError",
    "InvalidWindowEventError",
    "InvalidWorkflowError",
    "RetryStage",
    "RoutingError",
    "TargetsFailedError",
    "UnmatchedRecordError",
]


class RoutingError(StreamkitError):
    """Base class of the routing errors."""


class InvalidRouteError(RoutingError, ValueError):
    """A route, predicate or target is invalid. Raised when it is registered (at import
    time), never while records flow. ``route`` names the route when known; ``reason`` says
    what was wrong."""

    def __init__(self, reason: str, *, route: str | None = None) -> None:
        self.route = route
        self.reason = reason
        where = f"route {route!r}: " if route else ""
        super().__init__(f"{where}{reason}")


class UnmatchedRecordError(RoutingError):
    """A record matched no route and the router treats that as a failure
    (``on_unmatched="fail"``)."""

    def __init__(self, router: str, sequence_number: str, event_name: str | None) -> None:
        self.router = router
        self.sequence_number = sequence_number
        self.event_name = event_name
        super().__init__(
            f"router {router!r}: record {sequence_number} ({event_name}) matched no route"
        )


class TargetsFailedError(RoutingError):
    """At least one target of a record failed. Every target still ran: ``failures`` maps each
    failed target to its exception, ``succeeded`` and ``already_completed`` name the others.
    With an idempotency store, a redelivery runs only the failed targets again."""

    def __init__(
        self,
        sequence_number: str,
        failures: Mapping[str, Exception],
        succeeded: Sequence[str],
        already_completed: Sequence[str],
    ) -> None:
        self.sequence_number = sequence_number
        self.failures = dict(failures)
        self.succeeded = tuple(succeeded)
        self.already_completed = tuple(already_completed)
        failed = ", ".join(
            f"{name} ({type(exc).__name__}: {exc})" for name, exc in failures.items()
        )
        super().__init__(
            f"record {sequence_number}: {len(self.failures)} target(s) failed: {failed}; "
            f"succeeded: {list(self.succeeded)}, already completed: {list(self.already_completed)}"
        )


class InvalidWorkflowError(RoutingError, ValueError):
    """A workflow definition is inconsistent (unknown next state, a stage for a terminal state,
    a duplicate stage...). ``workflow`` names it, ``reason`` says what was wrong."""

    def __init__(self, workflow: str, reason: str) -> None:
        self.workflow = workflow
        self.reason = reason
        super().__init__(f"workflow {workflow!r}: {reason}")


class RetryStage(RoutingError):
    """Raise from a stage for a transient problem (a timeout, a throttled dependency): the
    item's state is left untouched and the record fails, so Lambda delivers it again and the
    stage runs again. Any other exception moves the item to the stage's failure state."""


class InvalidTransitionError(RoutingError):
    """A stage returned a state it did not declare in ``next``."""

    def __init__(self, stage: str, returned: object, allowed: Sequence[str]) -> None:
        self.stage = stage
        self.returned = returned
        self.allowed = tuple(allowed)
        super().__init__(
            f"stage {stage!r} returned {returned!r}; it declares next states {list(allowed)}"
        )


class AggregationError(RoutingError):
    """Base class of the aggregation errors."""


class InvalidDeltaError(AggregationError, ValueError):
    """A deltas function returned something that cannot be applied (not a ``Delta``, a
    non-numeric value, a key the aggregate table cannot hold, too many aggregates for one
    record). ``sequence_number`` names the record."""

    def __init__(self, sequence_number: str, reason: str) -> None:
        self.sequence_number = sequence_number
        self.reason = reason
        super().__init__(f"record {sequence_number}: {reason}")


class AggregateWriteError(AggregationError):
    """A fenced aggregate write (one DynamoDB transaction) could not be applied.
    ``sequence_numbers`` are the records it carried; ``reason`` says why."""

    def __init__(self, sequence_numbers: Sequence[str], reason: str) -> None:
        self.sequence_numbers = tuple(sequence_numbers)
        self.reason = reason
        first = self.sequence_numbers[0] if self.sequence_numbers else "?"
        super().__init__(
            f"aggregate write for {len(self.sequence_numbers)} record(s) from {first} failed: "
            f"{reason}"
        )


class InvalidWindowEventError(RoutingError, ValueError):
    """The event is not a tumbling-window invocation (``window`` or ``state`` missing or
    malformed): the mapping has no ``TumblingWindowInSeconds``, or the event was built by
    hand. ``reason`` says what was wrong."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"not a tumbling-window event: {reason}")
