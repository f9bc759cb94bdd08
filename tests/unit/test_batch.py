"""process_batch: ordering modes, the ReportBatchItemFailures contract, idempotency hook."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers.stream_data import numbered_record
from tests.helpers.stream_data import sequence_number as seq

import streamkit.batch as batch_module
from streamkit.batch import (
    BatchResult,
    batch_handler,
    process_batch,
    process_batch_async,
    run_batch,
    run_batch_async,
)
from streamkit.exceptions import InvalidEventError, InvalidRecordError
from streamkit.records import StreamRecord

# --- event builders -------------------------------------------------------------------------


def record(i: int, key: str = "", *, secret: str = "") -> dict[str, Any]:
    """Record ``i``: SequenceNumber ``seq(i)`` (increasing), item ``key`` (default own item)."""
    return numbered_record(i, key, image={"secret": {"S": secret}})


def index_of(r: StreamRecord) -> int:
    return int(r.new_image["i"])  # type: ignore[index]


def event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def failures(*indices: int) -> dict[str, list[dict[str, str]]]:
    return {"batchItemFailures": [{"itemIdentifier": seq(i)} for i in indices]}


class Recorder:
    """A handler that logs each call and fails for chosen records."""

    def __init__(self, fail: Callable[[int], bool] = lambda i: False) -> None:
        self.calls: list[int] = []
        self.fail = fail

    def __call__(self, r: StreamRecord) -> int:
        _ = r.event_name  # like any handler that routes on it; raises for a malformed one
        i = index_of(r)
        self.calls.append(i)
        if self.fail(i):
            raise RuntimeError(f"boom {i}")
        return i * 100


# --- response shape and the simple cases ----------------------------------------------------


def test_all_succeed_returns_exactly_an_empty_failure_list() -> None:
    handler = Recorder()
    response = process_batch(event(record(0), record(1), record(2)), handler)
    assert response == {"batchItemFailures": []}
    assert type(response) is dict and list(response) == ["batchItemFailures"]
    assert handler.calls == [0, 1, 2]


def test_failure_entries_have_exactly_the_item_identifier_key() -> None:
    response = process_batch(event(record(0)), Recorder(lambda i: True))
    assert response == {"batchItemFailures": [{"itemIdentifier": seq(0)}]}
    (entry,) = response["batchItemFailures"]
    assert list(entry) == ["itemIdentifier"] and type(entry["itemIdentifier"]) is str


def test_empty_records_is_a_successful_empty_batch() -> None:
    handler = Recorder()
    assert process_batch({"Records": []}, handler) == {"batchItemFailures": []}
    assert handler.calls == []


@pytest.mark.parametrize("bad_event", [None, {}, {"Records": "x"}, [record(0)]], ids=repr)
def test_an_event_that_is_not_a_stream_event_raises_loudly(bad_event: Any) -> None:
    handler = Recorder()
    with pytest.raises(InvalidEventError):
        process_batch(bad_event, handler)
    assert handler.calls == []


def test_unknown_ordering_is_rejected_before_anything_runs() -> None:
    handler = Recorder()
    with pytest.raises(ValueError, match="ordering"):
        process_batch(event(record(0)), handler, ordering="parallel")  # type: ignore[arg-type]
    assert handler.calls == []


# --- fail_fast --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("failing", "expected_calls", "expected_reported"),
    [
        ({0}, [0], [0, 1, 2, 3, 4]),  # first fails: everything reported
        ({2}, [0, 1, 2], [2, 3, 4]),  # middle fails
        ({4}, [0, 1, 2, 3, 4], [4]),  # last fails
        ({1, 3}, [0, 1], [1, 2, 3, 4]),  # only the first failure matters
        ({0, 1, 2, 3, 4}, [0], [0, 1, 2, 3, 4]),  # all fail
    ],
)
def test_fail_fast_stops_at_the_first_failure(
    failing: set[int], expected_calls: list[int], expected_reported: list[int]
) -> None:
    handler = Recorder(lambda i: i in failing)
    response = process_batch(event(*(record(i, "same") for i in range(5))), handler)
    assert handler.calls == expected_calls  # nothing ran after the failure
    assert response == failures(*expected_reported)


def test_fail_fast_stops_across_different_items_too() -> None:
    handler = Recorder(lambda i: i == 1)
    response = process_batch(event(record(0, "a"), record(1, "b"), record(2, "c")), handler)
    assert handler.calls == [0, 1]
    assert response == failures(1, 2)


def test_records_run_in_stream_order() -> None:
    handler = Recorder()
    process_batch(event(*(record(i, f"k{i % 3}") for i in range(30))), handler)
    assert handler.calls == list(range(30))


def test_every_record_failing_still_returns_the_response() -> None:
    """Powertools issue #3716: BatchProcessor raised when all records failed."""
    result = run_batch(event(*(record(i) for i in range(4))), Recorder(lambda i: True))
    assert result.response() == failures(0, 1, 2, 3)
    assert (result.failed, result.skipped, result.succeeded) == (1, 3, 0)


# --- per_key ----------------------------------------------------------------------------------


def test_per_key_skips_only_the_failed_items_later_records() -> None:
    keys = ["a", "b", "a", "c", "b", "a", "c"]
    handler = Recorder(lambda i: i == 0)  # the first "a" fails
    result = run_batch(
        event(*(record(i, k) for i, k in enumerate(keys))), handler, ordering="per_key"
    )
    assert handler.calls == [0, 1, 3, 4, 6]  # other items go on
    assert result.response() == failures(0, 2, 5)  # failed + skipped "a" records, in order
    assert (result.succeeded, result.failed, result.skipped) == (4, 1, 2)


def test_per_key_with_failures_in_several_items() -> None:
    keys = ["a", "b", "a", "b", "c", "a"]
    handler = Recorder(lambda i: i in (2, 3))  # second "a" and second "b" fail
    response = process_batch(
        event(*(record(i, k) for i, k in enumerate(keys))), handler, ordering="per_key"
    )
    assert handler.calls == [0, 1, 2, 3, 4]
    assert response == failures(2, 3, 5)


def test_per_key_all_fail_reports_all() -> None:
    keys = ["a", "b", "a", "c"]
    handler = Recorder(lambda i: True)
    response = process_batch(
        event(*(record(i, k) for i, k in enumerate(keys))), handler, ordering="per_key"
    )
    assert handler.calls == [0, 1, 3]
    assert response == failures(0, 1, 2, 3)


def test_per_key_uses_the_canonical_key_not_its_spelling() -> None:
    first, second = record(0), record(1)
    first["dynamodb"]["Keys"] = {"pk": {"N": "5"}}
    second["dynamodb"]["Keys"] = {"pk": {"N": "5.0"}}  # the same item
    handler = Recorder(lambda i: i == 0)
    assert process_batch(event(first, second), handler, ordering="per_key") == failures(0, 1)
    assert handler.calls == [0]


# --- malformed records ------------------------------------------------------------------------


def broken(i: int, key: str = "") -> dict[str, Any]:
    """A record with a SequenceNumber but an unknown eventName."""
    raw = record(i, key)
    raw["eventName"] = "UPSERT"
    return raw


def test_a_malformed_record_fails_when_its_handler_reads_it_fail_fast() -> None:
    handler = Recorder()
    result = run_batch(event(record(0), broken(1), record(2)), handler)
    assert handler.calls == [0]
    assert result.response() == failures(1, 2)
    ((identifier, error),) = result.errors
    assert identifier == seq(1) and isinstance(error, InvalidRecordError)


def test_a_malformed_record_blocks_only_its_item_per_key() -> None:
    handler = Recorder()
    response = process_batch(
        event(record(0, "a"), broken(1, "b"), record(2, "a"), record(3, "b")),
        handler,
        ordering="per_key",
    )
    assert handler.calls == [0, 2]
    assert response == failures(1, 3)


def unkeyed(i: int) -> dict[str, Any]:
    raw = record(i)
    raw["dynamodb"]["Keys"] = {"pk": {"L": []}}  # no item key can be made of it
    return raw


def test_an_unkeyed_record_after_a_failure_stops_a_per_key_batch() -> None:
    """Its item is unknown: it might be the failed item, and so might any later record."""
    handler = Recorder(lambda i: i == 0)
    response = process_batch(
        event(record(0, "a"), unkeyed(1), record(2, "c")), handler, ordering="per_key"
    )
    assert handler.calls == [0]
    assert response == failures(0, 1, 2)


def test_an_unkeyed_record_that_fails_stops_a_per_key_batch() -> None:
    handler = Recorder(lambda i: i == 1)
    response = process_batch(
        event(record(0, "a"), unkeyed(1), record(2, "c")), handler, ordering="per_key"
    )
    assert handler.calls == [0, 1]
    assert response == failures(1, 2)


def test_an_unkeyed_record_runs_while_no_item_has_failed() -> None:
    """Keys are only needed to compare with a failed item's; a handler that succeeds on it
    is not failed for them."""
    handler = Recorder(lambda i: i == 2)
    response = process_batch(
        event(record(0, "a"), unkeyed(1), record(2, "c"), record(3, "c"), record(4, "d")),
        handler,
        ordering="per_key",
    )
    assert handler.calls == [0, 1, 2, 4]
    assert response == failures(2, 3)


@pytest.mark.parametrize("ordering", ["fail_fast", "per_key"])
def test_a_failing_record_with_no_sequence_number_is_reported_as_empty(
    ordering: str, caplog: pytest.LogCaptureFixture
) -> None:
    """An empty itemIdentifier makes Lambda fail (and redeliver) the whole batch: the only
    way not to skip a record nobody can name."""
    unnamed = record(1, "a")
    del unnamed["dynamodb"]["SequenceNumber"]
    handler = Recorder()
    with caplog.at_level(logging.WARNING, logger="streamkit.batch"):
        result = run_batch(
            event(record(0, "a"), unnamed, record(2, "b")),
            handler,
            ordering=ordering,  # type: ignore[arg-type]
        )
    assert handler.calls == [0]  # the unnamed record fails on its first field read
    assert result.response() == {
        "batchItemFailures": [{"itemIdentifier": ""}, {"itemIdentifier": seq(2)}]
    }
    assert isinstance(result.errors[0][1], InvalidRecordError)
    assert "<no SequenceNumber>" in caplog.text


def test_a_record_that_is_not_an_object_is_reported_as_empty() -> None:
    handler = Recorder()
    response = process_batch({"Records": [record(0), "garbage", record(2)]}, handler)
    assert handler.calls == [0]
    assert response == {"batchItemFailures": [{"itemIdentifier": ""}, {"itemIdentifier": seq(2)}]}


def test_a_record_with_no_sequence_number_that_succeeds_needs_no_name() -> None:
    unnamed = record(1)
    del unnamed["dynamodb"]["SequenceNumber"]
    calls: list[Any] = []
    assert process_batch(event(record(0), unnamed), calls.append) == failures()
    assert len(calls) == 2


def test_a_deserialization_error_in_the_handler_fails_that_record() -> None:
    bad = record(1)
    bad["dynamodb"]["NewImage"]["x"] = {"Q": "?"}
    seen: list[str] = []

    def handler(r: StreamRecord) -> None:
        seen.append(r.sequence_number)
        _ = r.new_image

    assert process_batch(event(record(0), bad, record(2)), handler) == failures(1, 2)
    assert seen == [seq(0), seq(1)]


# --- handler shapes ---------------------------------------------------------------------------


def test_a_two_argument_handler_gets_the_context() -> None:
    context = object()
    seen: list[tuple[int, object]] = []

    def handler(r: StreamRecord, ctx: object) -> None:
        seen.append((index_of(r), ctx))

    process_batch(event(record(0), record(1)), handler, context=context)
    assert seen == [(0, context), (1, context)]


def test_handlers_of_every_shape() -> None:
    context = "ctx"
    seen: list[Any] = []

    class Handler:
        def on_record(self, r: StreamRecord) -> None:
            seen.append(("method", index_of(r)))

        def __call__(self, r: StreamRecord, ctx: Any) -> None:
            seen.append(("callable", ctx))

    def with_default(r: StreamRecord, ctx: Any = None) -> None:
        seen.append(("default", ctx))

    def varargs(*args: Any) -> None:
        seen.append(("varargs", len(args)))

    def keyword_only(r: StreamRecord, *, flag: bool = True) -> None:
        seen.append(("keyword_only", flag))

    def three(r: StreamRecord, ctx: Any, extra: str) -> None:
        seen.append(("partial", ctx, extra))

    for handler in (
        Handler().on_record,
        Handler(),
        with_default,
        varargs,
        keyword_only,
        functools.partial(three, extra="x"),
    ):
        assert process_batch(event(record(0)), handler, context=context) == failures()
    assert seen == [
        ("method", 0),
        ("callable", "ctx"),
        ("default", "ctx"),
        ("varargs", 2),
        ("keyword_only", True),
        ("partial", "ctx", "x"),
    ]


def test_a_builtin_handler_without_signature_gets_the_record() -> None:
    seen: list[Any] = []
    assert process_batch(event(record(0)), seen.append) == failures()
    assert [r.sequence_number for r in seen] == [seq(0)]


# --- async ------------------------------------------------------------------------------------


def test_async_handler_runs_in_order_with_process_batch() -> None:
    calls: list[int] = []

    async def handler(r: StreamRecord) -> None:
        i = index_of(r)
        await asyncio.sleep(0.003 * (5 - i))  # later records would finish first if concurrent
        calls.append(i)
        if i == 3:
            raise ValueError("x")

    assert process_batch(event(*(record(i, "k") for i in range(5))), handler) == failures(3, 4)
    assert calls == [0, 1, 2, 3]


def test_async_handler_reuses_the_thread_loop_across_batches() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def handler(r: StreamRecord) -> None:
        loops.append(asyncio.get_running_loop())

    process_batch(event(record(0)), handler)
    process_batch(event(record(1)), handler)
    assert len(loops) == 2 and loops[0] is loops[1] and not loops[0].is_closed()


def test_async_callable_object_and_context() -> None:
    seen: list[Any] = []

    class Handler:
        async def __call__(self, r: StreamRecord, ctx: Any) -> None:
            seen.append((index_of(r), ctx))

    assert process_batch(event(record(0)), Handler(), context="c") == failures()
    assert seen == [(0, "c")]


def test_process_batch_async_inside_a_loop_with_mixed_handlers() -> None:
    async def main() -> tuple[Any, Any]:
        calls: list[int] = []

        async def async_handler(r: StreamRecord) -> None:
            calls.append(index_of(r))

        def sync_handler(r: StreamRecord) -> None:
            calls.append(index_of(r))
            if index_of(r) == 11:
                raise RuntimeError

        first = await process_batch_async(event(record(0), record(1)), async_handler)
        second = await process_batch_async(event(record(10), record(11), record(12)), sync_handler)
        assert calls == [0, 1, 10, 11]
        return first, second

    first, second = asyncio.run(main())
    assert first == failures()
    assert second == failures(11, 12)


def test_process_batch_with_async_handler_inside_a_running_loop_refuses_before_running() -> None:
    calls: list[int] = []

    async def handler(r: StreamRecord) -> None:
        calls.append(index_of(r))

    async def main() -> None:
        with pytest.raises(RuntimeError, match="process_batch_async"):
            process_batch(event(record(0)), handler)

    asyncio.run(main())
    assert calls == []


def test_a_sync_handler_returning_a_coroutine_fails_that_record() -> None:
    async def work(r: StreamRecord) -> None:
        raise AssertionError("must never run")

    def handler(r: StreamRecord) -> Any:
        return work(r)

    result = run_batch(event(record(0), record(1)), handler)
    assert result.response() == failures(0, 1)
    assert isinstance(result.errors[0][1], TypeError)


def test_cancellation_propagates_from_an_async_handler() -> None:
    calls: list[int] = []

    async def handler(r: StreamRecord) -> None:
        calls.append(index_of(r))
        if index_of(r) == 1:
            raise asyncio.CancelledError

    async def main() -> None:
        await process_batch_async(event(record(0), record(1), record(2)), handler)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(main())
    assert calls == [0, 1]


# --- BaseException ----------------------------------------------------------------------------


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt])
def test_base_exceptions_stop_the_batch_flush_and_propagate(exc_type: type[BaseException]) -> None:
    store = FakeStore()
    calls: list[int] = []

    def handler(r: StreamRecord) -> None:
        calls.append(index_of(r))
        if index_of(r) == 1:
            raise exc_type

    with pytest.raises(exc_type):
        process_batch(event(record(0), record(1), record(2)), handler, idempotency=store)
    assert calls == [0, 1]
    assert store.durable == {seq(0)}  # the completed record's marker was written


# --- idempotency hook -------------------------------------------------------------------------


class FakeSession:
    def __init__(self, store: FakeStore, records: Sequence[StreamRecord], namespace: str) -> None:
        self.store = store
        self.records = list(records)
        self.namespace = namespace
        self.buffer: list[tuple[str, Any]] = []

    def is_completed(self, r: StreamRecord) -> bool:
        self.store.events.append(("is_completed", r.sequence_number))
        if r.sequence_number in self.store.unreadable:
            raise ConnectionError("read timed out")
        return r.sequence_number in self.store.durable

    def record_success(self, r: StreamRecord, result: Any) -> None:
        self.store.events.append(("record_success", r.sequence_number))
        if self.store.fail_record_success:
            raise ValueError("result not serializable")
        self.buffer.append((r.sequence_number, result))

    def flush(self) -> None:
        self.store.events.append(("flush", len(self.buffer)))
        if self.store.fail_flush:
            raise ConnectionError("write throttled")
        self.store.durable.update(s for s, _ in self.buffer)
        self.store.results.update(self.buffer)
        self.buffer.clear()


class FakeStore:
    """An in-memory ``IdempotencyProvider`` (structurally; mypy checks it against the
    protocol where ``process_batch(idempotency=...)`` is called)."""

    table_name = "idem-table"

    def __init__(self) -> None:
        self.durable: set[str] = set()
        self.results: dict[str, Any] = {}
        self.unreadable: set[str] = set()
        self.events: list[tuple[str, Any]] = []
        self.sessions: list[FakeSession] = []
        self.contexts: list[Any] = []
        self.unavailable = False
        self.fail_flush = False
        self.fail_record_success = False

    def open_batch(
        self, records: Sequence[StreamRecord], *, namespace: str, context: Any | None
    ) -> FakeSession:
        if self.unavailable:
            raise ConnectionError("could not connect")
        self.contexts.append(context)
        session = FakeSession(self, records, namespace)
        self.sessions.append(session)
        return session


def test_completed_records_are_skipped_and_counted() -> None:
    store = FakeStore()
    store.durable = {seq(1)}
    handler = Recorder()
    result = run_batch(event(record(0), record(1), record(2)), handler, idempotency=store)
    assert handler.calls == [0, 2]
    assert result.response() == failures()
    assert (result.succeeded, result.already_completed, result.failed) == (2, 1, 0)
    assert store.results == {seq(0): 0, seq(2): 200}  # the handler's results are passed on
    assert store.events[-1] == ("flush", 2)  # one flush, last


def test_idempotency_with_fail_fast_flushes_before_returning() -> None:
    store = FakeStore()
    handler = Recorder(lambda i: i == 1)
    response = process_batch(event(record(0), record(1), record(2)), handler, idempotency=store)
    assert response == failures(1, 2)
    assert store.durable == {seq(0)}
    assert [e for e in store.events if e[0] == "flush"] == [("flush", 1)]
    assert ("is_completed", seq(2)) not in store.events  # nothing after the stop is looked at


def test_redelivery_with_idempotency_runs_each_record_once_per_key() -> None:
    store = FakeStore()
    keys = ["a", "b", "a", "b"]
    attempts: Counter[int] = Counter()

    def handler(r: StreamRecord) -> None:
        i = index_of(r)
        attempts[i] += 1
        if i == 0 and attempts[i] == 1:
            raise RuntimeError("transient")

    records = [record(i, k) for i, k in enumerate(keys)]
    assert process_batch(
        event(*records), handler, ordering="per_key", idempotency=store
    ) == failures(0, 2)
    # Lambda redelivers from the lowest failed record: 0, 1, 2, 3. Record 1 and 3 are skipped.
    assert (
        process_batch(event(*records), handler, ordering="per_key", idempotency=store) == failures()
    )
    assert attempts == {0: 2, 1: 1, 2: 1, 3: 1}


def test_an_unavailable_store_fails_every_record_and_names_the_store(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeStore()
    store.unavailable = True
    handler = Recorder()
    with caplog.at_level(logging.ERROR, logger="streamkit.batch"):
        result = run_batch(event(record(0), record(1)), handler, idempotency=store)
    assert handler.calls == []
    assert result.response() == failures(0, 1)
    assert result.failed == 2
    assert all(isinstance(e, ConnectionError) for _, e in result.errors)
    assert "idem-table" in caplog.text and "could not connect" in caplog.text


def test_a_record_the_store_cannot_check_fails_and_never_runs_unprotected() -> None:
    store = FakeStore()
    store.unreadable = {seq(1)}
    handler = Recorder()
    response = process_batch(
        event(record(0, "a"), record(1, "b"), record(2, "a")),
        handler,
        ordering="per_key",
        idempotency=store,
    )
    assert handler.calls == [0, 2]
    assert response == failures(1)


def test_a_flush_failure_keeps_the_response_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    store = FakeStore()
    store.fail_flush = True
    with caplog.at_level(logging.ERROR, logger="streamkit.batch"):
        result = run_batch(
            event(record(0), record(1)), Recorder(lambda i: i == 1), idempotency=store
        )
    assert result.response() == failures(1)
    assert isinstance(result.flush_error, ConnectionError)
    assert "write throttled" in caplog.text and "idem-table" in caplog.text


def test_a_record_success_failure_keeps_the_record_a_success(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FakeStore()
    store.fail_record_success = True
    handler = Recorder()
    with caplog.at_level(logging.ERROR, logger="streamkit.batch"):
        response = process_batch(event(record(0), record(1)), handler, idempotency=store)
    assert response == failures()
    assert handler.calls == [0, 1]
    assert "not serializable" in caplog.text


def test_open_batch_gets_the_records_namespace_and_context() -> None:
    store = FakeStore()
    process_batch(
        event(record(0), broken(1), record(2)), Recorder(), idempotency=store, context="ctx"
    )
    (session,) = store.sessions
    assert [r.sequence_number for r in session.records] == [seq(0), seq(1), seq(2)]
    assert session.namespace == f"{__name__}.Recorder"
    assert store.contexts == ["ctx"]


def module_level_handler(r: StreamRecord) -> None:
    pass


def test_default_namespace_is_module_and_qualname_and_can_be_overridden() -> None:
    store = FakeStore()
    process_batch(event(record(0)), module_level_handler, idempotency=store)
    process_batch(
        event(record(0)), module_level_handler, idempotency=store, idempotency_namespace="orders-v2"
    )
    process_batch(event(record(0)), functools.partial(module_level_handler), idempotency=store)
    assert [s.namespace for s in store.sessions] == [
        f"{__name__}.module_level_handler",
        "orders-v2",
        f"{__name__}.module_level_handler",
    ]


# --- decorator --------------------------------------------------------------------------------


def test_batch_handler_without_arguments() -> None:
    calls: list[int] = []

    @batch_handler
    def handler(r: StreamRecord) -> None:
        """Handles orders."""
        calls.append(index_of(r))
        if index_of(r) == 1:
            raise RuntimeError

    assert handler(event(record(0), record(1), record(2)), None) == failures(1, 2)
    assert calls == [0, 1]
    assert handler.__name__ == "handler" and handler.__doc__ == "Handles orders."
    assert handler.record_handler.__name__ == "handler"  # type: ignore[attr-defined]


def test_batch_handler_with_options_context_and_idempotency() -> None:
    store = FakeStore()
    store.durable = {seq(0)}
    seen: list[tuple[int, Any]] = []

    @batch_handler(ordering="per_key", idempotency=store)
    def handler(r: StreamRecord, context: Any) -> None:
        seen.append((index_of(r), context))
        if index_of(r) == 1:
            raise RuntimeError

    response = handler(
        event(record(0, "a"), record(1, "a"), record(2, "b"), record(3, "a")), "lambda-ctx"
    )
    assert response == failures(1, 3)
    assert seen == [(1, "lambda-ctx"), (2, "lambda-ctx")]
    assert store.sessions[0].namespace.endswith(
        "test_batch_handler_with_options_context_and_idempotency.<locals>.handler"
    )


def test_batch_handler_of_an_async_function_is_a_sync_lambda_handler() -> None:
    calls: list[int] = []

    @batch_handler
    async def handler(r: StreamRecord) -> None:
        await asyncio.sleep(0)
        calls.append(index_of(r))

    response = handler(event(record(0), record(1)), None)
    assert response == failures()  # a dict, not a coroutine
    assert calls == [0, 1]


def test_batch_handler_rejects_an_unknown_ordering_at_decoration() -> None:
    with pytest.raises(ValueError, match="ordering"):
        batch_handler(ordering="random")  # type: ignore[call-overload]


# --- observability and logging ----------------------------------------------------------------


def test_batch_result_counters_add_up() -> None:
    keys = ["a", "b", "a", "c", "a"]
    store = FakeStore()
    store.durable = {seq(3)}
    result = run_batch(
        event(*(record(i, k) for i, k in enumerate(keys))),
        Recorder(lambda i: i == 0),
        ordering="per_key",
        idempotency=store,
    )
    assert isinstance(result, BatchResult)
    assert (
        result.total,
        result.succeeded,
        result.already_completed,
        result.failed,
        result.skipped,
    ) == (5, 1, 1, 1, 2)
    assert (
        result.total == result.succeeded + result.already_completed + result.failed + result.skipped
    )
    assert result.failed_identifiers == [seq(0), seq(2), seq(4)]
    assert result.ordering == "per_key"


def test_failures_are_logged_without_item_images(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="streamkit.batch"):
        process_batch(
            event(record(0, secret="s3cr3t-value"), record(1, secret="s3cr3t-value")),
            Recorder(lambda i: True),
        )
    assert seq(0) in caplog.text and "boom 0" in caplog.text
    assert "s3cr3t-value" not in caplog.text
    assert all(r.name == "streamkit.batch" for r in caplog.records)


def test_an_internal_error_still_reports_every_unfinished_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The safety net: a bug in the loop itself must not lose the response."""

    def broken_fail(self: Any, r: StreamRecord, error: BaseException) -> None:
        raise RuntimeError("bug in fail()")

    monkeypatch.setattr(batch_module._BatchRun, "fail", broken_fail)
    handler = Recorder(lambda i: i == 1)
    result = run_batch(event(record(0), record(1), record(2)), handler)
    assert handler.calls == [0, 1]
    assert result.response() == failures(1, 2)


def test_an_internal_error_after_a_handler_call_reports_that_record_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whether the handler finished is unknowable then: report it (at-least-once). Its
    marker, buffered before the bug struck, is still flushed, so a redelivery skips it."""
    store = FakeStore()
    original = batch_module._BatchRun.succeed

    def broken_succeed(self: Any, r: StreamRecord, outcome: Any) -> None:
        original(self, r, outcome)
        if r.sequence_number == seq(1):
            raise RuntimeError("bug in succeed()")

    monkeypatch.setattr(batch_module._BatchRun, "succeed", broken_succeed)
    handler = Recorder()
    response = process_batch(event(record(0), record(1), record(2)), handler, idempotency=store)
    assert handler.calls == [0, 1]
    assert response == failures(1, 2)
    assert store.durable == {seq(0), seq(1)}
    assert process_batch(event(record(1), record(2)), handler, idempotency=store) == failures()
    assert handler.calls == [0, 1, 2]


# --- the Lambda contract, simulated -----------------------------------------------------------


class LambdaShard:
    """Lambda's event source mapping for one shard with ReportBatchItemFailures: deliver up
    to ``batch_size`` records from the checkpoint; move the checkpoint to the lowest reported
    SequenceNumber (or past the batch when nothing is reported).
    https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html"""

    def __init__(self, records: list[dict[str, Any]], batch_size: int) -> None:
        self.records = records
        self.batch_size = batch_size
        self.checkpoint = 0

    def next_batch(self) -> list[dict[str, Any]]:
        return self.records[self.checkpoint : self.checkpoint + self.batch_size]

    def apply(self, batch: list[dict[str, Any]], response: dict[str, list[dict[str, str]]]) -> None:
        reported = [int(f["itemIdentifier"]) for f in response["batchItemFailures"]]
        if not reported:
            self.checkpoint += len(batch)
            return
        lowest = str(min(reported))
        self.checkpoint = next(
            i for i, r in enumerate(self.records) if r["dynamodb"]["SequenceNumber"] == lowest
        )


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    plan=st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 2)), min_size=1, max_size=14),
    batch_size=st.integers(1, 8),
    ordering=st.sampled_from(["fail_fast", "per_key"]),
    idempotent=st.booleans(),
)
def test_redelivery_until_done_keeps_each_items_order(
    plan: list[tuple[str, int]], batch_size: int, ordering: str, idempotent: bool
) -> None:
    """For any failure pattern (record i fails its first plan[i][1] attempts), redelivering as
    Lambda does until the shard is drained: every record's effect happens, each item's effects
    happen in stream order, fail_fast never runs a record after a failure in a batch, and the
    response reports exactly the records of the batch that are not durably done."""
    keys = [k for k, _ in plan]
    fails_left = {i: n for i, (_, n) in enumerate(plan)}
    shard = LambdaShard([record(i, k) for i, k in enumerate(keys)], batch_size)
    store = FakeStore() if idempotent else None
    effects: list[int] = []  # successful side effects, in the order they happened
    attempted: list[tuple[int, bool]] = []  # (record, succeeded) in the current invocation

    def handler(r: StreamRecord) -> None:
        i = index_of(r)
        if fails_left[i] > 0:
            fails_left[i] -= 1
            attempted.append((i, False))
            raise RuntimeError(f"attempt failed for {i}")
        attempted.append((i, True))
        effects.append(i)

    for _ in range(200):  # every invocation makes progress; this bound is never reached
        batch = shard.next_batch()
        if not batch:
            break
        attempted.clear()
        completed_before = set(store.durable) if store else set()
        result = run_batch(event(*batch), handler, ordering=ordering, idempotency=store)  # type: ignore[arg-type]
        batch_indices = [index_of_raw(r) for r in batch]

        # Within the batch, per item, the attempts are a prefix of that item's records not
        # already completed, and only the last attempt of an item may have failed.
        for key in set(keys):
            mine = [i for i in batch_indices if keys[i] == key and seq(i) not in completed_before]
            tried = [(i, ok) for i, ok in attempted if keys[i] == key]
            assert [i for i, _ in tried] == mine[: len(tried)]
            assert all(ok for _, ok in tried[:-1])
        if ordering == "fail_fast":
            first_failure = next((n for n, (_, ok) in enumerate(attempted) if not ok), None)
            if first_failure is not None:
                assert len(attempted) == first_failure + 1  # nothing ran after the failure

        done_now = {i for i, ok in attempted if ok} | {
            i for i in batch_indices if seq(i) in completed_before
        }
        assert result.failed_identifiers == [seq(i) for i in batch_indices if i not in done_now]
        shard.apply(batch, result.response())
    else:
        pytest.fail("the shard never drained")

    assert set(effects) == set(range(len(plan)))
    for key in set(keys):
        mine = [i for i in effects if keys[i] == key]
        # Each item's effects in stream order; a repeat (no idempotency, per_key) only ever
        # re-runs a suffix that had already run, in order again.
        first_runs = sorted(set(mine), key=mine.index)
        assert first_runs == sorted(set(mine))
    if ordering == "fail_fast":
        assert effects == list(range(len(plan)))  # exactly once, in stream order
    elif idempotent:
        assert sorted(effects) == list(range(len(plan)))  # exactly once


def index_of_raw(raw: dict[str, Any]) -> int:
    return int(raw["dynamodb"]["NewImage"]["i"]["N"])


# --- run_batch_async --------------------------------------------------------------------------


def test_run_batch_async_returns_the_result() -> None:
    async def handler(r: StreamRecord) -> None:
        if index_of(r) == 0:
            raise RuntimeError

    result = asyncio.run(
        run_batch_async(event(record(0, "a"), record(1, "b")), handler, ordering="per_key")
    )
    assert (result.failed, result.succeeded) == (1, 1)
    assert result.response() == failures(0)


def test_a_malformed_field_nobody_reads_does_not_fail_the_record() -> None:
    """Fields are checked when read (see streamkit.records): a handler that never looks at
    eventName is not failed by it; one that does is (above)."""
    seen: list[str] = []
    assert process_batch(event(broken(0)), lambda r: seen.append(r.sequence_number)) == failures()
    assert seen == [seq(0)]


def test_numbers_mode_reaches_the_handler() -> None:
    seen: list[Any] = []

    def handler(r: StreamRecord) -> None:
        seen.append(r.new_image["i"])  # type: ignore[index]

    process_batch(event(record(3)), handler, numbers="native")
    process_batch(event(record(3)), handler)
    assert [type(v).__name__ for v in seen] == ["int", "Decimal"]
