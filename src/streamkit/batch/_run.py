"""The per-invocation state machine shared by the sync and async record loops.

A loop drives it like this (see ``run_batch``)::

    with run:  # a bug in the loop is salvaged; a BaseException flushes, then propagates
        for record in run.pending():
            ... call the handler; run.fail(record, exc) or run.succeed(record, outcome)
    return run.finish()
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Final

from streamkit.batch._calls import default_namespace
from streamkit.batch._types import (
    BatchResult,
    IdempotencyProvider,
    IdempotencySession,
    Ordering,
    check_ordering,
)
from streamkit.batch.internal import logs_failures
from streamkit.records import NumberMode, StreamRecord, parse_event

# The package's one logger, named for the public module users configure.
logger = logging.getLogger("streamkit.batch")

# The fate of each record, in _BatchRun._outcomes; reported fates are >= _FAILED.
_PENDING: Final = 0
_SUCCEEDED: Final = 1
_COMPLETED: Final = 2
_FAILED: Final = 3
_SKIPPED: Final = 4


class _BatchRun:
    """Decides which records run and accounts for every record's outcome.

    ``_outcomes[i]`` is the fate of record ``i``; everything reported or counted is derived
    from it in ``finish``, so an interruption at any point still yields a consistent answer.
    """

    __slots__ = (
        "_blocked_keys",
        "_handler_logs_failures",
        "_outcomes",
        "_per_key",
        "_position",
        "_records",
        "_result",
        "_session",
        "_stopped",
        "_store_name",
    )

    def __init__(
        self,
        records: list[StreamRecord],
        ordering: Ordering,
        session: IdempotencySession | None,
        store_name: str,
    ) -> None:
        self._records = records
        self._per_key = ordering == "per_key"
        self._session = session
        self._store_name = store_name
        self._result = BatchResult(ordering=ordering, total=len(records))
        self._outcomes = bytearray(len(records))  # all _PENDING
        self._position = -1  # index of the record being decided or run
        self._stopped = False  # a failure ended the batch (fail_fast, or an unkeyed record)
        self._blocked_keys: set[str] = set()
        self._handler_logs_failures = False

    @classmethod
    def start(
        cls,
        event: Any,
        handler: Callable[..., Any],
        ordering: Ordering,
        context: Any | None,
        provider: IdempotencyProvider | None,
        namespace: str | None,
        numbers: NumberMode,
    ) -> _BatchRun:
        check_ordering(ordering)
        records = parse_event(event, numbers=numbers)  # InvalidEventError: see package doc
        if provider is None:
            run = cls(records, ordering, None, "")
            run._handler_logs_failures = logs_failures(handler)
            return run
        store_name = _describe(provider)
        try:
            session = provider.open_batch(
                records,
                namespace=namespace or default_namespace(handler),
                context=context,
            )
        except Exception as exc:
            logger.error(
                "idempotency store %s is unavailable (%s: %s); reporting all %d records",
                store_name,
                type(exc).__name__,
                exc,
                len(records),
                exc_info=exc,
            )
            return cls._failing_all(records, ordering, exc)
        run = cls(records, ordering, session, store_name)
        run._handler_logs_failures = logs_failures(handler)
        return run

    @classmethod
    def _failing_all(
        cls, records: list[StreamRecord], ordering: Ordering, error: BaseException
    ) -> _BatchRun:
        run = cls(records, ordering, None, "")
        run._outcomes = bytearray([_FAILED]) * len(records)
        run._result.errors = [(r.item_identifier, error) for r in records]
        run._position = len(records)  # pending() yields nothing
        return run

    def __enter__(self) -> _BatchRun:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool:
        """Leaving the record loop. An ``Exception`` here is a bug in the loop: it is
        salvaged (swallowed) so the response is still returned, never lost. Any other
        ``BaseException`` (``asyncio.CancelledError`` included: cancellation must get
        through) flushes what completed and propagates."""
        if error is None:
            return False
        if isinstance(error, Exception):
            self.salvage(error)
            return True
        self.abort()
        return False

    def pending(self) -> Iterator[StreamRecord]:
        """Yield, in stream order, each record the handler should run now; account for the
        ones it should not (unkeyed or blocked in per_key mode, already completed).

        A yielded record counts as succeeded when the loop comes back for the next one
        without having called ``fail``; if the loop dies in between (``salvage``), it is
        reported, because nobody can say whether its handler finished.
        """
        records = self._records
        outcomes = self._outcomes
        session = self._session
        per_key = self._per_key
        succeeded = _SUCCEEDED
        for index in range(self._position + 1, len(records)):
            self._position = index
            record = records[index]
            # Item keys are only computed once some item has failed: a clean per_key batch
            # costs what a fail_fast one does.
            if per_key and self._blocked_keys:
                try:
                    key = record.item_key
                except Exception as exc:
                    # No item identity: it may be a blocked item. It fails, and fail()
                    # stops the batch (any later record may be its item too).
                    self.fail(record, exc)
                    return
                if key in self._blocked_keys:
                    outcomes[index] = _SKIPPED
                    continue
            if session is None:
                yield record
                if not outcomes[index]:  # still _PENDING: the handler returned normally
                    outcomes[index] = succeeded
            else:
                try:
                    completed = session.is_completed(record)
                except Exception as exc:
                    self.fail(record, exc)  # never run a record the store cannot vouch for
                else:
                    if completed:
                        outcomes[index] = _COMPLETED
                    else:
                        yield record
                        if not outcomes[index]:
                            outcomes[index] = succeeded
            if self._stopped:
                return

    @property
    def tracks_success(self) -> bool:
        """Whether ``succeed`` must be called after each successful handler call."""
        return self._session is not None

    def succeed(self, record: StreamRecord, outcome: Any) -> None:
        """Buffer the completion marker of the record that just succeeded."""
        if self._session is not None:
            try:
                self._session.record_success(record, outcome)
            except Exception as exc:
                # The side effects happened; failing the record would certainly repeat them.
                logger.error(
                    "idempotency store %s could not record completion of %s (%s: %s); "
                    "a redelivery may run it again",
                    self._store_name,
                    record.item_identifier,
                    type(exc).__name__,
                    exc,
                )

    def fail(
        self, record: StreamRecord, error: BaseException, *, raised_by_handler: bool = False
    ) -> None:
        identifier = record.item_identifier
        self._outcomes[self._position] = _FAILED
        self._result.errors.append((identifier, error))
        logged_by_handler = raised_by_handler and self._handler_logs_failures
        logger.log(
            logging.DEBUG if logged_by_handler else logging.WARNING,
            "record %s (position %d of %d) failed: %s: %s",
            identifier or "<no SequenceNumber>",
            self._position + 1,
            len(self._records),
            type(error).__name__,
            error,
            exc_info=None if logged_by_handler else error,
        )
        if self._per_key:
            try:
                self._blocked_keys.add(record.item_key)
                return
            except Exception:
                pass  # no readable item key: any later record might be the same item
        self._stopped = True

    def salvage(self, error: Exception) -> None:
        """Account for a bug in the processing loop: the record in flight (unless it was
        already done) and every later one are reported, so nothing is skipped."""
        logger.error(
            "batch processing failed internally; reporting unfinished records", exc_info=error
        )
        self._result.errors.append(("", error))
        position = self._position
        if 0 <= position < len(self._outcomes) and self._outcomes[position] == _PENDING:
            self._outcomes[position] = _FAILED
        self._stopped = True

    def abort(self) -> None:
        """A BaseException is leaving the batch: keep what completed, then let it go."""
        logger.warning(
            "batch interrupted at record %d of %d; flushing completion markers",
            self._position + 1,
            len(self._records),
        )
        self._flush()

    def finish(self) -> BatchResult:
        outcomes = self._outcomes
        # After a stop, whatever did not run is skipped; without one, nothing is pending.
        outcomes[:] = outcomes.replace(bytes([_PENDING]), bytes([_SKIPPED]))
        result = self._result
        result.succeeded = outcomes.count(_SUCCEEDED)
        result.already_completed = outcomes.count(_COMPLETED)
        result.failed = outcomes.count(_FAILED)
        result.skipped = outcomes.count(_SKIPPED)
        if result.failed or result.skipped:
            records = self._records
            result.failed_identifiers = [
                records[i].item_identifier for i, fate in enumerate(outcomes) if fate >= _FAILED
            ]
        self._flush()
        if result.failed_identifiers:
            logger.log(
                logging.DEBUG if self._handler_logs_failures else logging.WARNING,
                "batch of %d: %d succeeded, %d already completed, %d failed, %d skipped; "
                "reporting %d records from %s",
                result.total,
                result.succeeded,
                result.already_completed,
                result.failed,
                result.skipped,
                len(result.failed_identifiers),
                result.failed_identifiers[0] or "<unnamed record>",
            )
        return result

    def _flush(self) -> None:
        if self._session is None:
            return
        try:
            self._session.flush()
        except Exception as exc:
            self._result.flush_error = exc
            logger.error(
                "idempotency store %s failed to write completion markers (%s: %s); the "
                "response is unchanged, and a redelivery may run those records again",
                self._store_name,
                type(exc).__name__,
                exc,
                exc_info=exc,
            )


def _describe(provider: object) -> str:
    table = getattr(provider, "table_name", None)
    kind = type(provider).__name__
    return f"{kind}(table_name={table!r})" if isinstance(table, str) else repr(provider)
