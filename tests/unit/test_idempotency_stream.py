"""Batched stream mode with the in-memory store, driven through the real process_batch."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from tests.helpers.stream_data import lambda_record

from streamkit.batch import process_batch, run_batch
from streamkit.idempotency import (
    COMPLETED,
    INPROGRESS,
    IdempotencyAlreadyInProgressError,
    IdempotencyItem,
    IdempotencyKeyError,
    IdempotencyPayloadMismatchError,
    IdempotencyStoreUnavailableError,
    LocalCache,
    MemoryIdempotencyStore,
)
from streamkit.idempotency.stream import StreamSession
from streamkit.records import parse_event

NAMESPACE = "tests.handler"


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def stream_record(i: int, pk: str | None = None, *, value: int | None = None) -> dict[str, Any]:
    """Record ``i`` of a stream: eventID ``ev-i``, SequenceNumber ``1000+i``, item ``pk``."""
    pk = pk if pk is not None else f"item-{i}"
    value = i if value is None else value
    return lambda_record(
        1000 + i,
        keys={"pk": {"S": pk}},
        new_image={"pk": {"S": pk}, "value": {"N": str(value)}},
        created=1_700_000_000 + i,
        event_id=f"ev-{i}",
    )


def event(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": list(records)}


class Recorder:
    """A handler that records each run and fails the records it is told to."""

    def __init__(self, fail: set[int] | None = None) -> None:
        self.runs: Counter[str] = Counter()
        self.fail = fail or set()

    def __call__(self, record: Any) -> str:
        seq = int(record.sequence_number) - 1000
        if seq in self.fail:
            raise RuntimeError(f"record {seq} fails")
        self.runs[record.event_id] += 1
        return f"done-{seq}"


def failures(response: dict[str, Any]) -> list[int]:
    return [int(f["itemIdentifier"]) - 1000 for f in response["batchItemFailures"]]


def run(
    store: MemoryIdempotencyStore,
    records: Sequence[dict[str, Any]],
    handler: Recorder,
    ordering: str = "fail_fast",
) -> list[int]:
    response = process_batch(
        event(records),
        handler,
        ordering=ordering,  # type: ignore[arg-type]
        idempotency=store,
        idempotency_namespace=NAMESPACE,
    )
    return failures(response)


def test_clean_batch_of_100_costs_one_read_and_four_writes() -> None:
    store = MemoryIdempotencyStore()
    handler = Recorder()
    assert run(store, [stream_record(i) for i in range(100)], handler) == []
    assert store.requests == 1 + 4
    assert len(store.items) == 100
    marker = store.items[f"{NAMESPACE}#ev-7"]
    assert marker.status == COMPLETED
    assert marker.result is None  # results are not stored by default: markers stay small
    assert marker.payload_hash is None  # an eventID names one immutable record: nothing to check


def test_payload_hash_is_stored_with_a_business_key_or_when_asked() -> None:
    by_business_key = MemoryIdempotencyStore(key=lambda r: r.keys["pk"])
    run(by_business_key, [stream_record(0, "order-1")], Recorder())
    assert by_business_key.items[f"{NAMESPACE}#order-1"].payload_hash is not None
    by_event_id = MemoryIdempotencyStore(payload=lambda r: r.raw["dynamodb"]["NewImage"])
    run(by_event_id, [stream_record(0)], Recorder())
    assert by_event_id.items[f"{NAMESPACE}#ev-0"].payload_hash is not None


def test_redelivered_batch_is_skipped_entirely() -> None:
    store = MemoryIdempotencyStore()
    records = [stream_record(i) for i in range(10)]
    handler = Recorder()
    run(store, records, handler)
    store.requests = 0
    assert run(store, records, handler) == []
    assert set(handler.runs.values()) == {1}
    assert store.requests == 1  # one read, nothing new to write


def test_fail_fast_partial_failure_then_retry_runs_only_the_rest() -> None:
    store = MemoryIdempotencyStore()
    records = [stream_record(i) for i in range(6)]
    handler = Recorder(fail={3})
    assert run(store, records, handler) == [3, 4, 5]
    assert sorted(handler.runs) == ["ev-0", "ev-1", "ev-2"]
    # Lambda redelivers from the failed record; here the whole batch comes again, as after a
    # timeout, to show that the completed records are skipped too.
    handler.fail.clear()
    assert run(store, records, handler) == []
    assert handler.runs == Counter({f"ev-{i}": 1 for i in range(6)})


def test_per_key_records_that_succeeded_after_a_failure_are_skipped_on_retry() -> None:
    store = MemoryIdempotencyStore()
    # items: a a b c a b; record 1 (item a) fails -> 4 (a) is skipped, 2, 3, 5 run.
    items = ["a", "a", "b", "c", "a", "b"]
    records = [stream_record(i, pk) for i, pk in enumerate(items)]
    handler = Recorder(fail={1})
    assert run(store, records, handler, "per_key") == [1, 4]
    assert sorted(handler.runs) == ["ev-0", "ev-2", "ev-3", "ev-5"]
    handler.fail.clear()
    # Lambda redelivers everything from the lowest reported SequenceNumber.
    assert run(store, records[1:], handler, "per_key") == []
    assert handler.runs == Counter({f"ev-{i}": 1 for i in range(6)})


def test_markers_are_flushed_when_a_failure_stops_the_batch() -> None:
    store = MemoryIdempotencyStore()
    handler = Recorder(fail={2})
    run(store, [stream_record(i) for i in range(4)], handler)
    assert set(store.items) == {f"{NAMESPACE}#ev-0", f"{NAMESPACE}#ev-1"}


def test_namespaces_are_independent() -> None:
    store = MemoryIdempotencyStore()
    records = [stream_record(i) for i in range(3)]
    first, second = Recorder(), Recorder(fail={1})
    process_batch(event(records), first, idempotency=store, idempotency_namespace="target-a")
    response = process_batch(
        event(records), second, idempotency=store, idempotency_namespace="target-b"
    )
    # Completed for target-a does not mean completed for target-b.
    assert failures(response) == [1, 2]
    assert second.runs == Counter({"ev-0": 1})
    assert "target-a#ev-1" in store.items and "target-b#ev-1" not in store.items


def test_default_namespace_is_the_handler_qualname() -> None:
    store = MemoryIdempotencyStore()

    def on_order(record: Any) -> None:
        return None

    process_batch(event([stream_record(0)]), on_order, idempotency=store)
    [item_id] = store.items
    assert item_id == f"{__name__}.{on_order.__qualname__}#ev-0"


def test_business_key_skips_a_duplicate_with_the_same_payload() -> None:
    store = MemoryIdempotencyStore(key=lambda r: r.keys["pk"])
    handler = Recorder()
    # Two different stream records (ev-0, ev-1) carrying the same change of item "order-1".
    records = [stream_record(0, "order-1", value=5), stream_record(1, "order-1", value=5)]
    assert run(store, records, handler) == []
    assert handler.runs == Counter({"ev-0": 1})  # the second is a duplicate in the same batch
    assert run(store, [stream_record(2, "order-1", value=5)], handler) == []
    assert handler.runs == Counter({"ev-0": 1})


def test_business_key_with_a_different_payload_fails_with_a_mismatch() -> None:
    store = MemoryIdempotencyStore(key=lambda r: r.keys["pk"])
    handler = Recorder()
    run(store, [stream_record(0, "order-1", value=5)], handler)
    result = run_batch(
        event([stream_record(1, "order-1", value=6)]),
        handler,
        idempotency=store,
        idempotency_namespace=NAMESPACE,
    )
    assert result.failed_identifiers == ["1001"]
    [(_, error)] = result.errors
    assert isinstance(error, IdempotencyPayloadMismatchError)
    assert error.key == f"{NAMESPACE}#order-1"
    assert handler.runs == Counter({"ev-0": 1})


def test_payload_validation_can_be_turned_off() -> None:
    store = MemoryIdempotencyStore(key=lambda r: r.keys["pk"], payload=None)
    handler = Recorder()
    run(store, [stream_record(0, "order-1", value=5)], handler)
    assert run(store, [stream_record(1, "order-1", value=6)], handler) == []
    assert handler.runs == Counter({"ev-0": 1})
    assert store.items[f"{NAMESPACE}#order-1"].payload_hash is None


def test_a_failing_key_function_fails_only_its_record() -> None:
    def key(record: Any) -> str:
        if record.event_id == "ev-1":
            raise KeyError("order_id")
        return str(record.event_id)

    store = MemoryIdempotencyStore(key=key)
    handler = Recorder()
    result = run_batch(
        event([stream_record(i, "x" if i == 1 else None) for i in range(3)]),
        handler,
        ordering="per_key",
        idempotency=store,
        idempotency_namespace=NAMESPACE,
    )
    assert result.failed_identifiers == ["1001"]
    assert isinstance(result.errors[0][1], IdempotencyKeyError)
    assert "order_id" in str(result.errors[0][1])
    assert sorted(handler.runs) == ["ev-0", "ev-2"]


def test_a_key_that_is_not_a_string_is_an_error() -> None:
    store = MemoryIdempotencyStore(key=lambda r: 42)
    result = run_batch(
        event([stream_record(0)]), Recorder(), idempotency=store, idempotency_namespace=NAMESPACE
    )
    assert isinstance(result.errors[0][1], IdempotencyKeyError)


def test_an_unreadable_store_fails_every_record_and_runs_none() -> None:
    class DownStore(MemoryIdempotencyStore):
        def get_many(self, ids: Sequence[str]) -> dict[str, IdempotencyItem]:
            raise IdempotencyStoreUnavailableError(self.name, ids, "connection refused")

    handler = Recorder()
    assert run(DownStore(), [stream_record(i) for i in range(3)], handler) == [0, 1, 2]
    assert not handler.runs


def test_an_expired_marker_counts_as_absent() -> None:
    clock = Clock()
    store = MemoryIdempotencyStore(clock=clock)
    handler = Recorder()
    run(store, [stream_record(0)], handler)
    clock.now += store.expires_after.total_seconds() + 1  # TTL deletes lazily: still stored
    assert f"{NAMESPACE}#ev-0" in store.items
    run(store, [stream_record(0)], handler)
    assert handler.runs == Counter({"ev-0": 2})


def test_expiration_is_48_hours_by_default_and_short_ones_warn() -> None:
    clock = Clock()
    store = MemoryIdempotencyStore(clock=clock)
    run(store, [stream_record(0)], Recorder())
    assert store.items[f"{NAMESPACE}#ev-0"].expiration == int(clock.now) + 48 * 3600
    with pytest.warns(UserWarning, match="24-hour stream retention"):
        MemoryIdempotencyStore(expires_after=3600)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MemoryIdempotencyStore(expires_after=25 * 3600)
    with pytest.raises(ValueError):
        MemoryIdempotencyStore(expires_after=0)


def test_results_are_stored_when_asked() -> None:
    store = MemoryIdempotencyStore(store_results=True)
    run(store, [stream_record(0)], Recorder())
    assert store.items[f"{NAMESPACE}#ev-0"].result == '"done-0"'


def test_a_live_per_record_lock_on_the_key_fails_the_record() -> None:
    clock = Clock()
    store = MemoryIdempotencyStore(clock=clock)
    lock = IdempotencyItem(
        id=f"{NAMESPACE}#ev-1",
        status=INPROGRESS,
        expiration=int(clock.now) + 3600,
        in_progress_expiration=int((clock.now + 60) * 1000),
    )
    store.items[lock.id] = lock
    handler = Recorder()
    result = run_batch(
        event([stream_record(i) for i in range(2)]),
        handler,
        idempotency=store,
        idempotency_namespace=NAMESPACE,
    )
    assert result.failed_identifiers == ["1001"]
    assert isinstance(result.errors[0][1], IdempotencyAlreadyInProgressError)
    clock.now += 61  # the lock expired: its holder died; the record runs
    assert run(store, [stream_record(1)], handler) == []
    assert handler.runs == Counter({"ev-0": 1, "ev-1": 1})


def test_cache_makes_a_fully_cached_batch_cost_no_read() -> None:
    cache = LocalCache(max_items=1000)
    store = MemoryIdempotencyStore(cache=cache)
    records = [stream_record(i) for i in range(100)]
    handler = Recorder()
    run(store, records, handler)
    store.requests = 0
    assert run(store, records, handler) == []
    assert store.requests == 0
    assert cache.hits == 100
    # Partly cached: only the missing keys are read.
    run(store, [*records[:50], stream_record(100)], handler)
    assert store.requests == 1 + 1  # the read of ev-100, then its marker


def test_cache_learns_completed_keys_from_reads() -> None:
    store = MemoryIdempotencyStore()
    records = [stream_record(i) for i in range(5)]
    run(store, records, Recorder())  # another execution environment completed them
    cached = MemoryIdempotencyStore(cache=LocalCache())
    cached.items = store.items
    run(cached, records, Recorder())
    cached.requests = 0
    run(cached, records, Recorder())
    assert cached.requests == 0


def test_flush_failure_keeps_markers_buffered_for_a_later_flush() -> None:
    class FlakyWrites(MemoryIdempotencyStore):
        down = True

        def put_many(self, items: Sequence[IdempotencyItem]) -> None:
            if self.down:
                raise IdempotencyStoreUnavailableError(self.name, [i.id for i in items], "down")
            super().put_many(items)

    store = FlakyWrites()
    records = parse_event(event([stream_record(0)]))
    session = StreamSession.open(store, records, namespace=NAMESPACE)
    assert session.is_completed(records[0]) is False
    session.record_success(records[0], None)
    with pytest.raises(IdempotencyStoreUnavailableError, match=r"ev-0"):
        session.flush()
    assert session.pending_count == 1
    store.down = False
    session.flush()
    assert session.pending_count == 0 and f"{NAMESPACE}#ev-0" in store.items


def test_long_keys_are_hashed_to_fit_the_partition_key_limit() -> None:
    store = MemoryIdempotencyStore(key=lambda r: "k" * 5000)
    run(store, [stream_record(0)], Recorder())
    [item_id] = store.items
    assert item_id.startswith(f"{NAMESPACE}#sha256:") and len(item_id) < 2048
