"""What a batch run is told and what it answers: ordering modes, the idempotency hook it
calls, and the ``BatchResult`` it returns (see ``streamkit.batch`` for the semantics)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol

from streamkit.records import StreamRecord
from streamkit.wire import BatchResponse as BatchResponse
from streamkit.wire import batch_item_failures

Ordering = Literal["fail_fast", "per_key"]
ORDERINGS: Final = ("fail_fast", "per_key")


def check_ordering(ordering: str) -> None:
    if ordering not in ORDERINGS:
        raise ValueError(f"ordering must be 'fail_fast' or 'per_key', not {ordering!r}")


class IdempotencySession(Protocol):
    """One invocation's view of an idempotency store (see ``IdempotencyProvider``)."""

    def is_completed(self, record: StreamRecord) -> bool:
        """Whether ``record`` already ran to completion. May raise: the record then fails
        (it never runs unprotected)."""
        ...

    def record_success(self, record: StreamRecord, result: Any) -> None:
        """Buffer a completion marker for ``record``; ``result`` is what the handler
        returned."""
        ...

    def flush(self) -> None:
        """Write the buffered markers. Called before the response is returned (and when a
        BaseException stops the batch)."""
        ...


class IdempotencyProvider(Protocol):
    """A store that remembers which records completed, e.g. ``MemoryIdempotencyStore``."""

    def open_batch(
        self, records: Sequence[StreamRecord], *, namespace: str, context: Any | None
    ) -> IdempotencySession:
        """Start an invocation over ``records`` (all of the batch, in stream order; each
        has a SequenceNumber, but other fields are only checked when read, so one odd
        record must not make this raise). ``namespace`` separates handlers sharing a store.
        Raising fails every record."""
        ...


@dataclass(slots=True)
class BatchResult:
    """What happened to a batch. ``process_batch`` returns ``response()``; the counters are
    for observability. ``total == succeeded + already_completed + failed + skipped``."""

    ordering: Ordering
    total: int = 0
    succeeded: int = 0
    already_completed: int = 0
    failed: int = 0
    skipped: int = 0
    # itemIdentifiers to report (failed and skipped records), in stream order.
    failed_identifiers: list[str] = field(default_factory=list)
    # (itemIdentifier, error) for each record that failed, in stream order.
    errors: list[tuple[str, BaseException]] = field(default_factory=list)
    flush_error: BaseException | None = None

    def response(self) -> BatchResponse:
        """The Lambda ReportBatchItemFailures response."""
        return batch_item_failures(self.failed_identifiers)
