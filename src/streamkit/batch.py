"""Partial batch processing for DynamoDB stream events, with precise ordering guarantees.

``process_batch(event, handler)`` runs ``handler`` once per record and returns the Lambda
response ``{"batchItemFailures": [{"itemIdentifier": <SequenceNumber>}, ...]}`` for an event
source mapping with ``FunctionResponseTypes=["ReportBatchItemFailures"]``. Lambda moves the
shard checkpoint to the lowest reported SequenceNumber and redelivers everything from there:
https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html

Ordering guarantees
-------------------
Records always run one at a time, in stream (SequenceNumber) order, also with async handlers.
A record *fails* when the handler raises an ``Exception`` (reading a malformed field of the
record raises ``InvalidRecordError``, so a malformed record fails when its handler reads it),
or when the idempotency store cannot say whether it already ran.

``ordering="fail_fast"`` (default)
    At the first failure the batch stops. The failed record and every record after it are
    reported; no record after a failure runs in this invocation. Lambda redelivers from the
    failed record, so each record's side effects happen once and in stream order, for every
    item, without needing idempotency (as long as a handler that raises did not half-apply
    its effects).

``ordering="per_key"``
    After a record fails, the later records *of the same item* (same ``item_key``, from
    ``Keys``) are skipped; other items go on. The failed and skipped records are reported.
    Per item, effects still happen in stream order and never after a failure of that item.
    But Lambda redelivers *everything* from the lowest reported SequenceNumber, including
    records of other items that succeeded after it, so those run again: use per_key with
    ``idempotency=`` (completed records are then skipped) or with handlers that are
    idempotent themselves. A record whose ``Keys`` cannot be read has no known item: if it
    fails, or comes after a failure (it might be the failed item), it fails and stops the
    batch as in fail_fast.

In both modes the reported records are exactly the records that are not durably done (did
not succeed and were not already completed), listed in stream order; when every record
fails, every record is reported.

What is never lost, and the deliberate exceptions
-------------------------------------------------
- A handler ``Exception`` and a failing idempotency store become record failures: the
  response is always returned (unlike Powertools' BatchProcessor, which raised when every
  record failed, aws-powertools/powertools-lambda-python#3716).
- A record that cannot even name its SequenceNumber (``record.error``) is reported, if it
  fails or is skipped, with ``itemIdentifier: ""``. Lambda treats an empty identifier as a
  failure of the whole batch and redelivers all of it: the only way not to skip a record
  nobody can name. The records that succeeded before it then run again (at-least-once;
  idempotency skips them). Such a record is not looked for up front: that would mean
  reading every record's SequenceNumber, which is most of a no-op batch's cost, to guard
  against an event Lambda does not produce; every field of such a record raises, so any
  handler that reads it fails it.
- An event that is not a stream event (not a mapping, no ``Records`` list) raises
  ``InvalidEventError``: no itemIdentifier can be reported, and a loud failure (the whole
  batch is retried) beats a response that would claim success. ``{"Records": []}`` is an
  empty batch and returns no failures.
- A handler raising a ``BaseException`` that is not an ``Exception`` (``SystemExit``,
  ``KeyboardInterrupt``, ``asyncio.CancelledError``) is a request to stop the process or
  task, not a record failure: no further record runs, buffered idempotency markers are
  flushed, and the exception propagates. Lambda then fails the whole batch and redelivers
  it; already completed records are skipped if idempotency is on, otherwise they repeat.

Idempotency hook
----------------
``idempotency=`` takes an ``IdempotencyProvider``. ``open_batch`` is called once per
invocation with the batch's records; ``is_completed(record)`` is asked before each
record (a completed record is counted as success and its handler is not called);
``record_success`` buffers a marker after each success; ``flush`` writes the buffered
markers once, before the response is returned (at the first failure in fail_fast mode,
since nothing runs after it). If ``open_batch`` fails, every record is reported. If
``flush`` fails, the error is logged and the response is still returned: the records' side
effects already happened, and reporting them would certainly run them again; without their
markers a later redelivery may run them again instead (at-least-once).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, overload

from streamkit.records import NumberMode, StreamRecord, parse_event

__all__ = [
    "BatchResponse",
    "BatchResult",
    "IdempotencyProvider",
    "IdempotencySession",
    "Ordering",
    "batch_handler",
    "process_batch",
    "process_batch_async",
    "run_batch",
    "run_batch_async",
]

logger = logging.getLogger("streamkit.batch")

Ordering = Literal["fail_fast", "per_key"]
BatchResponse = dict[str, list[dict[str, str]]]
_ORDERINGS: Final = ("fail_fast", "per_key")


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
        return {"batchItemFailures": [{"itemIdentifier": i} for i in self.failed_identifiers]}


# --- public entry points ----------------------------------------------------------------------


def process_batch(
    event: Any,
    handler: Callable[..., Any],
    *,
    ordering: Ordering = "fail_fast",
    context: Any | None = None,
    idempotency: IdempotencyProvider | None = None,
    idempotency_namespace: str | None = None,
    numbers: NumberMode = "decimal",
) -> BatchResponse:
    """Run ``handler`` over the event's records; return the ReportBatchItemFailures response.

    ``handler`` takes ``(record)`` or ``(record, context)``; if it is ``async``, it runs on
    an event loop kept per thread (see ``process_batch_async`` inside a running loop).
    ``numbers`` selects how images decode (``"decimal"`` or ``"native"``). Ordering and
    failure semantics: see the module docstring.
    """
    return run_batch(
        event,
        handler,
        ordering=ordering,
        context=context,
        idempotency=idempotency,
        idempotency_namespace=idempotency_namespace,
        numbers=numbers,
    ).response()


async def process_batch_async(
    event: Any,
    handler: Callable[..., Any],
    *,
    ordering: Ordering = "fail_fast",
    context: Any | None = None,
    idempotency: IdempotencyProvider | None = None,
    idempotency_namespace: str | None = None,
    numbers: NumberMode = "decimal",
) -> BatchResponse:
    """``process_batch`` for callers already inside an event loop. ``handler`` may be sync
    or async; records still run one at a time, in order."""
    result = await run_batch_async(
        event,
        handler,
        ordering=ordering,
        context=context,
        idempotency=idempotency,
        idempotency_namespace=idempotency_namespace,
        numbers=numbers,
    )
    return result.response()


def run_batch(
    event: Any,
    handler: Callable[..., Any],
    *,
    ordering: Ordering = "fail_fast",
    context: Any | None = None,
    idempotency: IdempotencyProvider | None = None,
    idempotency_namespace: str | None = None,
    numbers: NumberMode = "decimal",
) -> BatchResult:
    """``process_batch`` returning the full ``BatchResult`` (counters and errors)."""
    if _is_async_callable(handler):
        return _run_on_thread_loop(
            run_batch_async(
                event,
                handler,
                ordering=ordering,
                context=context,
                idempotency=idempotency,
                idempotency_namespace=idempotency_namespace,
                numbers=numbers,
            )
        )
    run = _BatchRun.start(
        event, handler, ordering, context, idempotency, idempotency_namespace, numbers
    )
    call = _bind_context(handler, context)
    tracks_success = run.tracks_success
    try:
        for record in run.pending():
            try:
                outcome = call(record)
            except Exception as exc:
                run.fail(record, exc)
                continue
            if outcome is not None and inspect.isawaitable(outcome):
                _discard(outcome)
                run.fail(record, TypeError("handler returned an awaitable; declare it `async def`"))
            elif tracks_success:
                run.succeed(record, outcome)
    except Exception as exc:  # a bug in this loop: still answer, never lose the response
        run.salvage(exc)
    except BaseException:
        run.abort()
        raise
    return run.finish()


async def run_batch_async(
    event: Any,
    handler: Callable[..., Any],
    *,
    ordering: Ordering = "fail_fast",
    context: Any | None = None,
    idempotency: IdempotencyProvider | None = None,
    idempotency_namespace: str | None = None,
    numbers: NumberMode = "decimal",
) -> BatchResult:
    """``process_batch_async`` returning the full ``BatchResult``."""
    run = _BatchRun.start(
        event, handler, ordering, context, idempotency, idempotency_namespace, numbers
    )
    call = _bind_context(handler, context)
    tracks_success = run.tracks_success
    try:
        for record in run.pending():
            try:
                outcome = call(record)
                if inspect.isawaitable(outcome):
                    outcome = await outcome
            except Exception as exc:
                run.fail(record, exc)
                continue
            if tracks_success:
                run.succeed(record, outcome)
    except Exception as exc:
        run.salvage(exc)
    except BaseException:  # includes asyncio.CancelledError: let cancellation through
        run.abort()
        raise
    return run.finish()


LambdaHandler = Callable[[Any, Any], BatchResponse]


@overload
def batch_handler(func: Callable[..., Any], /) -> LambdaHandler: ...


@overload
def batch_handler(
    *,
    ordering: Ordering = "fail_fast",
    idempotency: IdempotencyProvider | None = None,
    idempotency_namespace: str | None = None,
    numbers: NumberMode = "decimal",
) -> Callable[[Callable[..., Any]], LambdaHandler]: ...


def batch_handler(
    func: Callable[..., Any] | None = None,
    /,
    *,
    ordering: Ordering = "fail_fast",
    idempotency: IdempotencyProvider | None = None,
    idempotency_namespace: str | None = None,
    numbers: NumberMode = "decimal",
) -> LambdaHandler | Callable[[Callable[..., Any]], LambdaHandler]:
    """Turn a per-record function into a Lambda ``handler(event, context)``::

        @batch_handler(ordering="per_key", idempotency=store)
        def handler(record: StreamRecord) -> None: ...

    The result is a synchronous Lambda handler even for an ``async def`` record function
    (the Lambda Python runtime does not await handlers). The record function stays
    reachable as ``handler.record_handler`` for tests.
    """
    _check_ordering(ordering)

    def decorate(record_handler: Callable[..., Any]) -> LambdaHandler:
        namespace = idempotency_namespace or _default_namespace(record_handler)

        def lambda_handler(event: Any, context: Any) -> BatchResponse:
            return process_batch(
                event,
                record_handler,
                ordering=ordering,
                context=context,
                idempotency=idempotency,
                idempotency_namespace=namespace,
                numbers=numbers,
            )

        # Not functools.wraps: __wrapped__ would make inspect report the record signature.
        for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
            if hasattr(record_handler, attr):
                setattr(lambda_handler, attr, getattr(record_handler, attr))
        lambda_handler.record_handler = record_handler  # type: ignore[attr-defined]
        return lambda_handler

    return decorate if func is None else decorate(func)


# --- the per-invocation state machine, shared by the sync and async loops -----------------------


class _BatchRun:
    """Decides which records run and accounts for every record's outcome.

    ``_outcomes[i]`` is the fate of record ``i``; everything reported or counted is derived
    from it in ``finish``, so an interruption at any point still yields a consistent answer.
    """

    __slots__ = (
        "_blocked_keys",
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
        _check_ordering(ordering)
        records = parse_event(event, numbers=numbers)  # InvalidEventError: see module doc
        if provider is None:
            return cls(records, ordering, None, "")
        store_name = _describe(provider)
        try:
            session = provider.open_batch(
                records,
                namespace=namespace or _default_namespace(handler),
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
        return cls(records, ordering, session, store_name)

    @classmethod
    def _failing_all(
        cls, records: list[StreamRecord], ordering: Ordering, error: BaseException
    ) -> _BatchRun:
        run = cls(records, ordering, None, "")
        run._outcomes = bytearray([_FAILED]) * len(records)
        run._result.errors = [(r.item_identifier, error) for r in records]
        run._position = len(records)  # pending() yields nothing
        return run

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

    def fail(self, record: StreamRecord, error: BaseException) -> None:
        identifier = record.item_identifier
        self._outcomes[self._position] = _FAILED
        self._result.errors.append((identifier, error))
        logger.warning(
            "record %s (position %d of %d) failed: %s: %s",
            identifier or "<no SequenceNumber>",
            self._position + 1,
            len(self._records),
            type(error).__name__,
            error,
            exc_info=error,
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
            logger.warning(
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


# The fate of each record, in _BatchRun._outcomes; reported fates are >= _FAILED.
_PENDING: Final = 0
_SUCCEEDED: Final = 1
_COMPLETED: Final = 2
_FAILED: Final = 3
_SKIPPED: Final = 4


# --- helpers -----------------------------------------------------------------------------------


def _check_ordering(ordering: str) -> None:
    if ordering not in _ORDERINGS:
        raise ValueError(f"ordering must be 'fail_fast' or 'per_key', not {ordering!r}")


def _bind_context(
    handler: Callable[..., Any], context: Any | None
) -> Callable[[StreamRecord], Any]:
    if _accepts_context(handler):
        return functools.partial(_call_with_context, handler, context)
    return handler


def _call_with_context(
    handler: Callable[..., Any], context: Any | None, record: StreamRecord
) -> Any:
    return handler(record, context)


def _accepts_context(handler: Callable[..., Any]) -> bool:
    """True when ``handler`` takes a second positional argument (or ``*args``)."""
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):  # some builtins have no signature: call with the record
        return False
    positional = 0
    for parameter in parameters:
        if parameter.kind is inspect.Parameter.VAR_POSITIONAL:
            return True
        if parameter.kind in (
            inspect.Parameter.POSITIONAL_ONLY,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
        ):
            positional += 1
    return positional >= 2


def _is_async_callable(handler: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(handler, "__call__", None)  # noqa: B004 - instances with async __call__
    return call is not None and inspect.iscoroutinefunction(call)


def _discard(awaitable: Awaitable[Any]) -> None:
    close = getattr(awaitable, "close", None)
    if callable(close):
        close()  # avoid "coroutine was never awaited" noise


def _default_namespace(handler: Callable[..., Any]) -> str:
    target = handler.func if isinstance(handler, functools.partial) else handler
    module = getattr(target, "__module__", None) or type(target).__module__
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    return f"{module}.{name}"


def _describe(provider: object) -> str:
    table = getattr(provider, "table_name", None)
    kind = type(provider).__name__
    return f"{kind}(table_name={table!r})" if isinstance(table, str) else repr(provider)


# The Lambda Python runtime freezes and thaws the process between invokes; closing the loop
# after each batch (asyncio.run) breaks async clients created at init time and reused later
# ("Event loop is closed"). Keep one loop per thread instead, as Powertools and Mangum do.
_thread_loops = threading.local()


def _run_on_thread_loop(coro: Awaitable[BatchResult]) -> BatchResult:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        _discard(coro)
        raise RuntimeError(
            "process_batch() with an async handler was called from a running event loop; "
            "use `await process_batch_async(...)` there"
        )
    loop: asyncio.AbstractEventLoop | None = getattr(_thread_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _thread_loops.loop = loop
    return loop.run_until_complete(coro)
