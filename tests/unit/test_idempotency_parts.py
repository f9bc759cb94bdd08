"""The small parts of the idempotency package: hashing, ids, item size, results, cache."""

from __future__ import annotations

from decimal import Decimal

import pytest

from streamkit.idempotency import (
    COMPLETED,
    INPROGRESS,
    IdempotencyItem,
    JsonResultSerializer,
    LocalCache,
    hash_payload,
)
from streamkit.idempotency.items import MAX_ID_BYTES, item_size_bytes, make_id

NOW = 1_700_000_000.0


def completed(item_id: str, expiration: float = NOW + 100) -> IdempotencyItem:
    return IdempotencyItem(id=item_id, status=COMPLETED, expiration=int(expiration))


def test_payload_hash_ignores_key_order_and_sees_values() -> None:
    assert hash_payload({"a": 1, "b": [1, 2]}) == hash_payload({"b": [1, 2], "a": 1})
    assert hash_payload({"a": 1}) != hash_payload({"a": 2})
    assert hash_payload({"n": Decimal("1.50")}) != hash_payload({"n": Decimal("1.5")})
    assert hash_payload({"b": b"\x00"}) == hash_payload({"b": bytearray(b"\x00")})
    assert hash_payload({"s": {"y", "x"}}) == hash_payload({"s": {"x", "y"}})
    assert len(hash_payload(None)) == 32
    with pytest.raises(TypeError):
        hash_payload({"o": object()})


def test_ids_are_namespaced_and_long_keys_hashed() -> None:
    assert make_id("orders.on_paid", "ev-1") == "orders.on_paid#ev-1"
    long_id = make_id("ns", "é" * MAX_ID_BYTES)
    assert long_id.startswith("ns#sha256:")
    assert len(long_id.encode()) <= MAX_ID_BYTES
    assert make_id("ns", "é" * MAX_ID_BYTES) == long_id
    assert make_id("ns", "é" * MAX_ID_BYTES + "x") != long_id


def test_item_size_counts_names_and_utf8_values() -> None:
    small = IdempotencyItem(id="ns#k", status=COMPLETED, expiration=1)
    bigger = IdempotencyItem(id="ns#k", status=COMPLETED, expiration=1, result="é" * 100)
    assert item_size_bytes(bigger) - item_size_bytes(small) == len("result") + 200


def test_item_states() -> None:
    lock = IdempotencyItem(
        id="k",
        status=INPROGRESS,
        expiration=int(NOW) + 100,
        in_progress_expiration=int((NOW + 10) * 1000),
    )
    assert lock.is_locked(NOW) and not lock.is_completed(NOW)
    assert not lock.is_locked(NOW + 10)  # the lock window has passed
    assert completed("k").is_completed(NOW)
    assert not completed("k").is_completed(NOW + 100)  # expired: treat as absent


@pytest.mark.parametrize(
    "value", [None, 0, False, "", [], {}, 0.5, "text", {"nested": [1, None, True]}]
)
def test_json_results_round_trip(value: object) -> None:
    serializer = JsonResultSerializer()
    back = serializer.loads(serializer.dumps(value))
    assert back == value and type(back) is type(value)


def test_json_results_convert_decimals_and_refuse_the_rest() -> None:
    serializer = JsonResultSerializer()
    assert serializer.loads(serializer.dumps({"n": Decimal("3"), "f": Decimal("0.5")})) == {
        "n": 3,
        "f": 0.5,
    }
    with pytest.raises(TypeError):
        serializer.dumps(object())
    with pytest.raises(ValueError):
        serializer.dumps(float("nan"))


def test_cache_evicts_the_least_recently_used() -> None:
    cache = LocalCache(max_items=2)
    cache.put(completed("a"))
    cache.put(completed("b"))
    assert cache.get("a", NOW) is not None  # a is now the most recent
    cache.put(completed("c"))
    assert "b" not in cache and "a" in cache and "c" in cache
    assert len(cache) == 2


def test_cache_forgets_expired_items_and_ignores_locks() -> None:
    cache = LocalCache()
    cache.put(completed("a", expiration=NOW + 1))
    assert cache.get("a", NOW + 2) is None
    assert "a" not in cache
    cache.put(IdempotencyItem(id="l", status=INPROGRESS, expiration=int(NOW) + 100))
    assert "l" not in cache
    assert (cache.hits, cache.misses) == (0, 1)


def test_cache_size_must_be_positive() -> None:
    with pytest.raises(ValueError):
        LocalCache(max_items=0)
