"""Per-record mode (@idempotent) with the in-memory store."""

from __future__ import annotations

from typing import Any

import pytest
from tests.helpers.stream_data import lambda_record

from streamkit.idempotency import (
    COMPLETED,
    INPROGRESS,
    IdempotencyAlreadyInProgressError,
    IdempotencyItem,
    IdempotencyKeyError,
    IdempotencyPayloadMismatchError,
    IdempotencyResultNotSerializableError,
    IdempotencyResultTooLargeError,
    IdempotencyStoreUnavailableError,
    LocalCache,
    MemoryIdempotencyStore,
    idempotent,
)
from streamkit.idempotency.items import MAX_ITEM_BYTES
from streamkit.records import parse_event


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeLambdaContext:
    """Only what the lock needs from a Lambda context."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_first_call_runs_and_a_repeat_returns_the_stored_result() -> None:
    store = MemoryIdempotencyStore()
    calls: list[dict[str, Any]] = []

    @idempotent(store, namespace="charge")
    def charge(payment: dict[str, Any]) -> dict[str, Any]:
        calls.append(payment)
        return {"charged": payment["amount"]}

    assert charge({"id": "p1", "amount": 5}) == {"charged": 5}
    assert charge({"id": "p1", "amount": 5}) == {"charged": 5}
    assert len(calls) == 1
    [item] = store.items.values()
    assert item.status == COMPLETED and item.in_progress_expiration is None
    assert item.id.startswith("charge#")


@pytest.mark.parametrize("falsy", [None, 0, False, "", [], {}, 0.0])
def test_none_and_falsy_results_are_stored_and_replayed(falsy: Any) -> None:
    store = MemoryIdempotencyStore()
    calls = 0

    @idempotent(store)
    def work(event: dict[str, Any]) -> Any:
        nonlocal calls
        calls += 1
        return falsy

    first = work({"n": 1})
    second = work({"n": 1})
    assert calls == 1
    assert first == falsy and second == falsy
    assert type(second) is type(falsy)
    [item] = store.items.values()
    assert item.result is not None  # "null" for None: stored, not "no result"


def test_same_key_with_a_different_payload_raises_a_mismatch() -> None:
    store = MemoryIdempotencyStore()

    @idempotent(store, key=lambda order: order["order_id"])
    def ship(order: dict[str, Any]) -> str:
        return "shipped"

    ship({"order_id": "o1", "qty": 1})
    with pytest.raises(IdempotencyPayloadMismatchError) as raised:
        ship({"order_id": "o1", "qty": 2})
    assert raised.value.key.endswith("#o1")
    assert "o1" in str(raised.value)


def test_a_failing_call_releases_the_lock_so_a_retry_runs() -> None:
    store = MemoryIdempotencyStore()
    attempts = 0

    @idempotent(store)
    def flaky(event: dict[str, Any]) -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("downstream timeout")
        return "ok"

    with pytest.raises(ConnectionError):
        flaky({"n": 1})
    assert store.items == {}
    assert flaky({"n": 1}) == "ok"
    assert attempts == 2


def test_a_concurrent_call_with_a_live_lock_is_refused() -> None:
    store = MemoryIdempotencyStore()
    seen: list[BaseException] = []

    @idempotent(store)
    def reentrant(event: dict[str, Any]) -> str:
        # A second caller with the same key while this one holds the lock.
        try:
            reentrant(event)
        except IdempotencyAlreadyInProgressError as exc:
            seen.append(exc)
        return "first"

    assert reentrant({"n": 1}) == "first"
    [error] = seen
    assert isinstance(error, IdempotencyAlreadyInProgressError)
    assert error.lock_expires_at is not None


def test_lock_expiry_follows_the_lambda_remaining_time() -> None:
    clock = Clock()
    store = MemoryIdempotencyStore(clock=clock)
    locks: list[IdempotencyItem] = []

    @idempotent(store)
    def handler(event: dict[str, Any], context: Any) -> str:
        locks.append(store.items[next(iter(store.items))])
        return "ok"

    handler({"n": 1}, FakeLambdaContext(remaining_ms=30_000))
    [lock] = locks
    assert lock.status == INPROGRESS
    # remaining time + 1 s grace (Lambda may stop a function slightly after its deadline)
    assert lock.in_progress_expiration == int((clock.now + 31) * 1000)


def test_lock_window_longer_than_the_invocation_wins() -> None:
    clock = Clock()
    store = MemoryIdempotencyStore(clock=clock)
    locks: list[IdempotencyItem] = []

    @idempotent(store, lock_window=3600)
    def handler(event: dict[str, Any], context: Any) -> str:
        locks.append(next(iter(store.items.values())))
        return "ok"

    handler({"n": 1}, FakeLambdaContext(remaining_ms=30_000))
    assert locks[0].in_progress_expiration == int((clock.now + 3601) * 1000)


def test_lock_never_expires_before_the_invocation_could_end() -> None:
    clock = Clock()
    store = MemoryIdempotencyStore(clock=clock)
    locks: list[IdempotencyItem] = []

    @idempotent(store, lock_window=5)
    def handler(event: dict[str, Any], context: Any) -> str:
        locks.append(next(iter(store.items.values())))
        return "ok"

    handler({"n": 1}, FakeLambdaContext(remaining_ms=60_000))
    assert locks[0].in_progress_expiration == int((clock.now + 61) * 1000)


def test_without_context_the_lock_lasts_the_window_and_can_be_registered() -> None:
    clock = Clock()
    store = MemoryIdempotencyStore(clock=clock)
    locks: list[IdempotencyItem] = []

    def body(event: dict[str, Any]) -> str:
        locks.append(next(i for i in store.items.values() if i.status == INPROGRESS))
        return "ok"

    default = idempotent(store, namespace="a")(body)
    default({"n": 1})
    assert locks[-1].in_progress_expiration == int((clock.now + 15 * 60) * 1000)

    registered = idempotent(store, namespace="b")(body)
    registered.register_context(FakeLambdaContext(remaining_ms=2_000))
    registered({"n": 1})
    assert locks[-1].in_progress_expiration == int((clock.now + 3) * 1000)


def test_an_expired_lock_of_a_crashed_holder_is_taken_over() -> None:
    clock = Clock()
    store = MemoryIdempotencyStore(clock=clock)
    calls = 0

    @idempotent(store, key=lambda event: event["id"])
    def work(event: dict[str, Any]) -> int:
        nonlocal calls
        calls += 1
        return calls

    # A holder that died mid-call (timeout): its lock stays behind.
    lock = IdempotencyItem(
        id=f"{work.namespace}#x",
        status=INPROGRESS,
        expiration=int(clock.now) + 3600,
        in_progress_expiration=int((clock.now + 10) * 1000),
    )
    store.items[lock.id] = lock
    with pytest.raises(IdempotencyAlreadyInProgressError):
        work({"id": "x"})
    clock.now += 11
    assert work({"id": "x"}) == 1


def test_a_result_over_the_item_limit_fails_clearly_and_releases_the_lock() -> None:
    store = MemoryIdempotencyStore()
    calls = 0

    @idempotent(store)
    def big(event: dict[str, Any]) -> str:
        nonlocal calls
        calls += 1
        return "x" * MAX_ITEM_BYTES

    with pytest.raises(IdempotencyResultTooLargeError) as raised:
        big({"n": 1})
    assert raised.value.item_bytes > raised.value.limit_bytes == MAX_ITEM_BYTES
    assert store.items == {}  # nothing written, lock released
    with pytest.raises(IdempotencyResultTooLargeError):
        big({"n": 1})
    assert calls == 2


def test_a_result_just_under_the_limit_is_stored() -> None:
    store = MemoryIdempotencyStore()

    @idempotent(store, namespace="n")
    def sized(event: dict[str, Any]) -> str:
        return "x" * (MAX_ITEM_BYTES - 400)

    assert len(sized({"n": 1})) == MAX_ITEM_BYTES - 400
    assert next(iter(store.items.values())).status == COMPLETED


def test_an_unserializable_result_fails_and_releases_the_lock() -> None:
    store = MemoryIdempotencyStore()

    @idempotent(store)
    def odd(event: dict[str, Any]) -> object:
        return object()

    with pytest.raises(IdempotencyResultNotSerializableError, match="object"):
        odd({"n": 1})
    assert store.items == {}


def test_an_unavailable_store_means_the_function_does_not_run() -> None:
    class DownStore(MemoryIdempotencyStore):
        def try_lock(self, item: IdempotencyItem, now: float) -> IdempotencyItem | None:
            raise IdempotencyStoreUnavailableError(self.name, [item.id], "connection refused")

    calls = 0

    @idempotent(DownStore(), namespace="ns")
    def work(event: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1

    with pytest.raises(IdempotencyStoreUnavailableError) as raised:
        work({"n": 1})
    assert calls == 0
    assert raised.value.keys[0].startswith("ns#")
    assert "in-memory store" in str(raised.value)


def test_a_stream_record_is_keyed_by_its_event_id() -> None:
    store = MemoryIdempotencyStore()
    raw = lambda_record(
        1,
        keys={"pk": {"S": "a"}},
        event_name="INSERT",
        new_image={"pk": {"S": "a"}},
        event_id="abc123",
        view_type="NEW_IMAGE",
    )
    [record] = parse_event({"Records": [raw]})

    @idempotent(store, namespace="ns")
    def handle(record: Any) -> str:
        return record.event_id

    assert handle(record) == "abc123"
    assert set(store.items) == {"ns#abc123"}


def test_key_function_errors_are_reported_with_the_namespace() -> None:
    store = MemoryIdempotencyStore()

    @idempotent(store, key=lambda event: event["missing"], namespace="ns")
    def work(event: dict[str, Any]) -> None:
        return None

    with pytest.raises(IdempotencyKeyError, match=r"'ns'.*missing"):
        work({})


def test_cache_answers_a_repeat_without_any_request() -> None:
    store = MemoryIdempotencyStore(cache=LocalCache(max_items=10))

    @idempotent(store)
    def work(event: dict[str, Any]) -> int:
        return 7

    work({"n": 1})
    store.requests = 0
    assert work({"n": 1}) == 7
    assert store.requests == 0


def test_lock_window_must_be_positive() -> None:
    with pytest.raises(ValueError):
        idempotent(MemoryIdempotencyStore(), lock_window=0)(lambda event: None)
