"""The storefront's cache-aside reads (handlers/orderplatform/storefront.py) against a real
redis-server and the embedded emulator's DynamoDB, with the cache target's invalidation
(orderplatform/cache.py) run as the platform runs it: after the item's change is written.

The point of the cache target: once the invalidation of a change ran, no reader sees the
value from before that change, neither from Redis nor by putting it back there."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from benchmarks._data import make_event, stream_record
from orderplatform.cache import CacheInvalidator
from orderplatform.storefront import Storefront

from streamkit import parse_event, serialize
from tests.helpers import AwsClients


@pytest.fixture
def shop(aws: AwsClients, unique_name: Callable[[str], str], redis_server: Any) -> Any:
    import redis

    tables = {}
    for kind in ("orders", "products"):
        tables[kind] = unique_name(kind)
        aws.dynamodb.create_table(
            TableName=tables[kind],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    client = redis.Redis.from_url(redis_server.url)
    return tables, client


def write_and_invalidate(
    aws: AwsClients,
    table: str,
    invalidator: CacheInvalidator,
    pk: str,
    old: dict[str, Any],
    new: dict[str, Any],
) -> None:
    """The platform's order of events: the write commits, then the cache target runs."""
    aws.dynamodb.put_item(TableName=table, Item=serialize(new))
    raw = stream_record(event_name="MODIFY", keys={"pk": pk}, new_item=new, old_item=old,
                        index=int(new["version"]), rng=random.Random(pk), table=table)  # fmt: skip
    [record] = parse_event(make_event([raw]))
    assert invalidator(record) == "invalidated"


def test_a_reader_that_read_before_the_change_cannot_put_the_old_value_back(
    aws: AwsClients, shop: Any
) -> None:
    tables, cache = shop
    storefront = Storefront(
        cache, aws.dynamodb, orders_table=tables["orders"], products_table=tables["products"]
    )
    invalidator = CacheInvalidator(cache)
    v1 = {"pk": "ORDER#race", "status": "PLACED", "version": 1}
    v2 = {"pk": "ORDER#race", "status": "VALIDATED", "version": 2}
    aws.dynamodb.put_item(TableName=tables["orders"], Item=serialize(v1))

    # A reader misses, reads v1 from the table, and stalls before filling the cache...
    read_done, change_done = threading.Event(), threading.Event()

    def stall(_key: str) -> None:
        read_done.set()
        assert change_done.wait(10)

    storefront.between_read_and_fill = stall
    seen: list[Any] = []
    reader = threading.Thread(target=lambda: seen.append(storefront.get_order("race")))
    reader.start()
    assert read_done.wait(10)
    # ... while the order changes and the cache target invalidates it.
    write_and_invalidate(aws, tables["orders"], invalidator, "ORDER#race", v1, v2)
    change_done.set()
    reader.join(10)
    assert seen == [{"pk": "ORDER#race", "status": "PLACED", "version": 1}]  # it read before
    assert storefront.stats["fills_skipped"] == 1
    assert cache.get("order:race") is None  # the old value did not go back in
    storefront.between_read_and_fill = None
    assert storefront.get_order("race") == {"pk": "ORDER#race", "status": "VALIDATED", "version": 2}
    assert storefront.get_order("race")["version"] == 2 and storefront.stats["hits"] == 1


def test_under_concurrent_readers_no_read_after_an_invalidation_is_stale(
    aws: AwsClients, shop: Any
) -> None:
    tables, cache = shop
    invalidator = CacheInvalidator(cache)
    pk, sku = "PRODUCT#hot", "hot"
    item = {"pk": pk, "stock": 1000, "version": 0}
    aws.dynamodb.put_item(TableName=tables["products"], Item=serialize(item))
    invalidated_version = [0]  # the newest version whose invalidation completed
    stop = threading.Event()
    stale: list[tuple[int, int]] = []
    reads = [0]

    def reader() -> None:
        storefront = Storefront(
            cache, aws.dynamodb, orders_table=tables["orders"], products_table=tables["products"]
        )
        # Widen the race window on every miss.
        storefront.between_read_and_fill = lambda _key: time.sleep(random.uniform(0, 0.01))
        while not stop.is_set():
            floor = invalidated_version[0]  # invalidated before this read started
            value = storefront.get_product(sku)
            reads[0] += 1
            if value is not None and value["version"] < floor:
                stale.append((value["version"], floor))

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for version in range(1, 41):
            new = {"pk": pk, "stock": 1000 - version, "version": version}
            write_and_invalidate(aws, tables["products"], invalidator, pk, item, new)
            invalidated_version[0] = version
            item = new
            time.sleep(0.005)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert reads[0] > 40
    assert stale == []
    final = Storefront(
        cache, aws.dynamodb, orders_table=tables["orders"], products_table=tables["products"]
    )
    assert final.get_product(sku) == {"pk": pk, "stock": 960, "version": 40}
