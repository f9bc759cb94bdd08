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

import inspect
from collections.abc import Callable
from typing import Any, overload

from streamkit.batch._calls import bind_context, default_namespace, discard_awaitable, is_async
from streamkit.batch._run import _BatchRun
from streamkit.batch._types import (
    BatchResponse,
    BatchResult,
    IdempotencyProvider,
    IdempotencySession,
    Ordering,
    check_ordering,
)
from streamkit.records import NumberMode

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
    if is_async(handler):
        from streamkit.batch._thread_loop import run_on_thread_loop  # asyncio: only if needed

        return run_on_thread_loop(
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
    call = bind_context(handler, context)
    tracks_success = run.tracks_success
    with run:
        for record in run.pending():
            try:
                outcome = call(record)
            except Exception as exc:
                run.fail(record, exc, raised_by_handler=True)
                continue
            if outcome is not None and inspect.isawaitable(outcome):
                discard_awaitable(outcome)
                run.fail(record, TypeError("handler returned an awaitable; declare it `async def`"))
            elif tracks_success:
                run.succeed(record, outcome)
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
    call = bind_context(handler, context)
    tracks_success = run.tracks_success
    with run:
        for record in run.pending():
            try:
                outcome = call(record)
                if inspect.isawaitable(outcome):
                    outcome = await outcome
            except Exception as exc:
                run.fail(record, exc, raised_by_handler=True)
                continue
            if tracks_success:
                run.succeed(record, outcome)
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
    check_ordering(ordering)

    def decorate(record_handler: Callable[..., Any]) -> LambdaHandler:
        namespace = idempotency_namespace or default_namespace(record_handler)

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
