"""Idempotency against DynamoDB over real HTTP (the embedded emulator or STREAMKIT_ENDPOINT_URL).

Requests are counted at the HTTP layer (botocore's ``before-send``), so retries would count
too: the figures are what DynamoDB would bill.
"""

from __future__ import annotations

import socket
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import boto3
import pytest
from botocore.config import Config

from streamkit.batch import process_batch, run_batch
from streamkit.idempotency import (
    COMPLETED,
    INPROGRESS,
    DynamoDBIdempotencyStore,
    IdempotencyAlreadyInProgressError,
    IdempotencyItem,
    IdempotencyPayloadMismatchError,
    IdempotencyResultTooLargeError,
    IdempotencyStoreUnavailableError,
    LocalCache,
    idempotent,
)
from streamkit.idempotency.items import MAX_ITEM_BYTES
from tests.helpers import AwsClients
from tests.helpers.request_counter import RequestCounter
from tests.helpers.stream_data import lambda_record

NAMESPACE = "orders.on_change"


def new_client(endpoint_url: str, region: str = "us-east-1") -> Any:
    """A client of its own, so the event hooks a test registers do not leak into others."""
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint_url,
        region_name=region,
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2),
    )


@pytest.fixture
def table(aws: AwsClients, unique_name: Callable[[str], str]) -> Iterator[str]:
    name = unique_name("idempotency")
    aws.dynamodb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    aws.dynamodb.get_waiter("table_exists").wait(TableName=name)
    aws.dynamodb.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"Enabled": True, "AttributeName": "expiration"},
    )
    yield name
    aws.dynamodb.delete_table(TableName=name)


@pytest.fixture
def client(endpoint_url: str) -> Any:
    return new_client(endpoint_url)


@pytest.fixture
def counter(client: Any) -> RequestCounter:
    return RequestCounter(client)


@pytest.fixture
def closed_port_url() -> str:
    """An endpoint where nothing listens: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def stream_record(i: int, pk: str | None = None, *, value: int | None = None) -> dict[str, Any]:
    """Record ``i``: SequenceNumber ``5000+i``, order ``pk`` (default ``order-i``)."""
    pk = pk if pk is not None else f"order-{i}"
    return lambda_record(
        5000 + i,
        keys={"pk": {"S": pk}},
        new_image={"pk": {"S": pk}, "total": {"N": str(value if value is not None else i)}},
        created=1_700_000_000 + i,
        event_id=f"{i:032x}",
    )


class Recorder:
    def __init__(self, fail: set[int] | None = None) -> None:
        self.runs: Counter[int] = Counter()
        self.fail = fail or set()

    def __call__(self, record: Any) -> None:
        index = int(record.sequence_number) - 5000
        if index in self.fail:
            raise RuntimeError(f"record {index} fails")
        self.runs[index] += 1


def batch(
    store: DynamoDBIdempotencyStore,
    records: Sequence[dict[str, Any]],
    handler: Recorder,
    ordering: str = "fail_fast",
) -> list[int]:
    response = process_batch(
        {"Records": list(records)},
        handler,
        ordering=ordering,  # type: ignore[arg-type]
        idempotency=store,
        idempotency_namespace=NAMESPACE,
    )
    return [int(f["itemIdentifier"]) - 5000 for f in response["batchItemFailures"]]


# --- batched stream mode -------------------------------------------------------------------


def test_clean_100_record_batch_costs_5_requests_and_redelivery_is_skipped(
    table: str, client: Any, counter: RequestCounter, aws: AwsClients
) -> None:
    store = DynamoDBIdempotencyStore(table, client=client)
    records = [stream_record(i) for i in range(100)]
    handler = Recorder()

    assert batch(store, records, handler) == []
    assert counter.counts == Counter({"BatchGetItem": 1, "BatchWriteItem": 4})

    counter.reset()
    assert batch(store, records, handler) == []  # Lambda redelivers the same batch
    assert counter.counts == Counter({"BatchGetItem": 1})
    assert set(handler.runs.values()) == {1} and len(handler.runs) == 100

    item = aws.dynamodb.get_item(TableName=table, Key={"id": {"S": f"{NAMESPACE}#{7:032x}"}})
    stored = item["Item"]
    assert stored["status"] == {"S": COMPLETED}
    assert int(stored["expiration"]["N"]) > 1_700_000_000
    assert set(stored) == {"id", "status", "expiration"}  # a marker is ~80 bytes
    ttl = aws.dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expiration"


def test_fail_fast_partial_failure_then_retry(table: str, client: Any) -> None:
    store = DynamoDBIdempotencyStore(table, client=client)
    records = [stream_record(i) for i in range(8)]
    handler = Recorder(fail={5})
    assert batch(store, records, handler) == [5, 6, 7]
    handler.fail.clear()
    # A timeout after the partial response makes Lambda send the whole batch again.
    assert batch(store, records, handler) == []
    assert handler.runs == Counter(dict.fromkeys(range(8), 1))


def test_per_key_partial_failure_then_retry_skips_what_succeeded(
    table: str, client: Any, counter: RequestCounter
) -> None:
    store = DynamoDBIdempotencyStore(table, client=client)
    items = ["a", "b", "a", "c", "b", "a", "d"]
    records = [stream_record(i, pk) for i, pk in enumerate(items)]
    handler = Recorder(fail={2})
    assert batch(store, records, handler, "per_key") == [2, 5]
    assert sorted(handler.runs) == [0, 1, 3, 4, 6]
    handler.fail.clear()
    counter.reset()
    # Lambda redelivers from the lowest reported SequenceNumber: 2..6.
    assert batch(store, records[2:], handler, "per_key") == []
    assert handler.runs == Counter(dict.fromkeys(range(7), 1))
    assert counter.counts == Counter({"BatchGetItem": 1, "BatchWriteItem": 1})


def test_store_outage_fails_every_record_and_names_table_and_key(
    closed_port_url: str,
) -> None:
    store = DynamoDBIdempotencyStore("idem-table", client=new_client(closed_port_url))
    handler = Recorder()
    result = run_batch(
        {"Records": [stream_record(i) for i in range(3)]},
        handler,
        idempotency=store,
        idempotency_namespace=NAMESPACE,
    )
    assert result.failed_identifiers == ["5000", "5001", "5002"]
    assert not handler.runs  # never unprotected
    error = result.errors[0][1]
    assert isinstance(error, IdempotencyStoreUnavailableError)
    assert "idem-table" in str(error) and f"{NAMESPACE}#{0:032x}" in str(error)
    assert error.keys == tuple(f"{NAMESPACE}#{i:032x}" for i in range(3))


def test_missing_table_is_an_outage_too(
    endpoint_url: str, unique_name: Callable[[str], str]
) -> None:
    missing = unique_name("no-such-table")
    store = DynamoDBIdempotencyStore(missing, client=new_client(endpoint_url))
    handler = Recorder()
    result = run_batch(
        {"Records": [stream_record(0)]}, handler, idempotency=store, idempotency_namespace="n"
    )
    assert result.failed_identifiers == ["5000"]
    assert not handler.runs
    assert missing in str(result.errors[0][1])
    assert "ResourceNotFoundException" in str(result.errors[0][1])


def test_business_key_payload_mismatch_fails_the_record(table: str, client: Any) -> None:
    store = DynamoDBIdempotencyStore(table, client=client, key=lambda r: r.keys["pk"])
    handler = Recorder()
    assert batch(store, [stream_record(0, "order-9", value=10)], handler) == []
    # Same key, same change through another stream record: a duplicate, skipped.
    assert batch(store, [stream_record(1, "order-9", value=10)], handler) == []
    result = run_batch(
        {"Records": [stream_record(2, "order-9", value=11)]},
        handler,
        idempotency=store,
        idempotency_namespace=NAMESPACE,
    )
    assert result.failed_identifiers == ["5002"]
    assert isinstance(result.errors[0][1], IdempotencyPayloadMismatchError)
    assert handler.runs == Counter({0: 1})


def test_cache_skips_the_read_for_a_fully_cached_batch(
    table: str, client: Any, counter: RequestCounter
) -> None:
    store = DynamoDBIdempotencyStore(table, client=client, cache=LocalCache(max_items=500))
    records = [stream_record(i) for i in range(100)]
    batch(store, records, Recorder())
    counter.reset()
    assert batch(store, records, Recorder()) == []
    assert counter.total == 0


def test_unprocessed_keys_and_items_are_retried(table: str, client: Any) -> None:
    """Throttling, made real: a throttled request really carries only part of the keys/items
    asked for, and its response lists the rest as unprocessed, as DynamoDB does."""
    throttle: set[str] = {"BatchWriteItem"}
    held_back: dict[str, Any] = {}
    sent: Counter[str] = Counter()

    def hold_back(params: dict[str, Any], model: Any, **_: Any) -> None:
        sent[model.name] += 1
        if model.name not in throttle:
            return
        throttle.discard(model.name)
        ((name, request),) = params["RequestItems"].items()
        if model.name == "BatchWriteItem":
            params["RequestItems"][name], rest = request[:10], request[10:]
            held_back[model.name] = {name: rest}
        else:
            keys = request["Keys"]
            request["Keys"], rest_keys = keys[:12], keys[12:]
            held_back[model.name] = {name: {**request, "Keys": rest_keys}}

    def report_unprocessed(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        field = "UnprocessedItems" if model.name == "BatchWriteItem" else "UnprocessedKeys"
        if model.name in held_back:
            parsed[field] = held_back.pop(model.name)

    for operation in ("BatchWriteItem", "BatchGetItem"):
        client.meta.events.register(f"provide-client-params.dynamodb.{operation}", hold_back)
        client.meta.events.register(f"after-call.dynamodb.{operation}", report_unprocessed)

    store = DynamoDBIdempotencyStore(table, client=client)
    records = [stream_record(i) for i in range(25)]
    assert batch(store, records, Recorder()) == []
    assert sent["BatchWriteItem"] == 2  # 10 items, then the 15 unprocessed ones

    throttle.add("BatchGetItem")
    sent.clear()
    found = store.get_many([f"{NAMESPACE}#{i:032x}" for i in range(25)])
    assert sent["BatchGetItem"] == 2  # 12 keys, then the 13 unprocessed ones
    assert len(found) == 25  # every marker was written, and every one is read back
    assert all(item.status == COMPLETED for item in found.values())


# --- per-record mode ----------------------------------------------------------------------


def test_per_record_runs_once_and_replays_the_stored_result(
    table: str, client: Any, counter: RequestCounter
) -> None:
    store = DynamoDBIdempotencyStore(table, client=client)
    calls = 0

    @idempotent(store, key=lambda order: order["id"], namespace="pay")
    def pay(order: dict[str, Any]) -> dict[str, Any] | None:
        nonlocal calls
        calls += 1
        return None if order["id"] == "none" else {"paid": order["amount"]}

    assert pay({"id": "o1", "amount": 3}) == {"paid": 3}
    assert counter.counts == Counter({"PutItem": 2})  # lock, then completion
    counter.reset()
    assert pay({"id": "o1", "amount": 3}) == {"paid": 3}
    assert counter.counts == Counter({"PutItem": 1})  # the failed conditional put returns it
    assert pay({"id": "none", "amount": 0}) is None
    assert pay({"id": "none", "amount": 0}) is None
    assert calls == 2
    with pytest.raises(IdempotencyPayloadMismatchError):
        pay({"id": "o1", "amount": 4})


def test_per_record_lock_refuses_a_concurrent_call_and_expired_locks_are_taken_over(
    table: str, client: Any
) -> None:
    clock_now = [1_900_000_000.0]
    store = DynamoDBIdempotencyStore(table, client=client, clock=lambda: clock_now[0])
    lock = IdempotencyItem(
        id="job#j1",
        status=INPROGRESS,
        expiration=int(clock_now[0]) + 3600,
        in_progress_expiration=int((clock_now[0] + 30) * 1000),
    )
    store.put(lock)

    @idempotent(store, key=lambda job: job["id"], namespace="job")
    def run_job(job: dict[str, Any]) -> str:
        return "done"

    with pytest.raises(IdempotencyAlreadyInProgressError) as raised:
        run_job({"id": "j1"})
    assert raised.value.lock_expires_at == pytest.approx(clock_now[0] + 30)
    clock_now[0] += 31  # the holder timed out
    assert run_job({"id": "j1"}) == "done"
    assert store.get_many(["job#j1"])["job#j1"].status == COMPLETED


def test_per_record_failure_and_too_large_result_release_the_lock(
    table: str, client: Any, aws: AwsClients
) -> None:
    store = DynamoDBIdempotencyStore(table, client=client)

    @idempotent(store, key=lambda e: e["id"], namespace="big")
    def produce(event: dict[str, Any]) -> str:
        if event.get("boom"):
            raise ValueError("boom")
        return "x" * MAX_ITEM_BYTES

    with pytest.raises(IdempotencyResultTooLargeError):
        produce({"id": "a"})
    with pytest.raises(ValueError, match="boom"):
        produce({"id": "b", "boom": True})
    for key in ("big#a", "big#b"):
        assert "Item" not in aws.dynamodb.get_item(TableName=table, Key={"id": {"S": key}})


def test_per_record_store_outage_does_not_run_the_function(closed_port_url: str) -> None:
    store = DynamoDBIdempotencyStore("idem-table", client=new_client(closed_port_url))
    calls = 0

    @idempotent(store, key=lambda e: e["id"], namespace="ns")
    def work(event: dict[str, Any]) -> None:
        nonlocal calls
        calls += 1

    with pytest.raises(IdempotencyStoreUnavailableError) as raised:
        work({"id": "k1"})
    assert calls == 0
    assert raised.value.keys == ("ns#k1",)
    assert "'idem-table'" in str(raised.value)


def test_persistent_throttling_fails_clearly_naming_the_unwritten_keys(
    table: str, client: Any
) -> None:
    """Each BatchWriteItem writes one item and returns the rest as unprocessed, for ever."""
    written: list[str] = []

    def one_at_a_time(params: dict[str, Any], **_: Any) -> None:
        ((name, requests),) = params["RequestItems"].items()
        params["RequestItems"][name] = requests[:1]
        written.append(requests[0]["PutRequest"]["Item"]["id"]["S"])
        held_back[name] = requests[1:]

    def report_unprocessed(parsed: dict[str, Any], **_: Any) -> None:
        parsed["UnprocessedItems"] = dict(held_back)

    held_back: dict[str, Any] = {}
    client.meta.events.register("provide-client-params.dynamodb.BatchWriteItem", one_at_a_time)
    client.meta.events.register("after-call.dynamodb.BatchWriteItem", report_unprocessed)
    store = DynamoDBIdempotencyStore(table, client=client)
    items = [
        IdempotencyItem(id=f"ns#{i}", status=COMPLETED, expiration=2_000_000_000) for i in range(25)
    ]
    with pytest.raises(IdempotencyStoreUnavailableError, match="UnprocessedItems") as raised:
        store.put_many(items)
    assert len(written) == 8  # every attempt made progress, and the store gave up after 8
    assert set(raised.value.keys) == {item.id for item in items} - set(written)
    assert set(store.get_many([item.id for item in items])) == set(written)


def test_per_record_mode_under_process_batch_partial_failure_then_retry(
    table: str, client: Any, counter: RequestCounter
) -> None:
    """Per-record mode as the record handler (e.g. ParallelizationFactor lanes sharing keys)."""
    store = DynamoDBIdempotencyStore(table, client=client)
    recorder = Recorder(fail={1})
    handler = idempotent(store, namespace="lane")(recorder)
    records = [stream_record(i, pk) for i, pk in enumerate(["a", "b", "c", "b"])]
    response = process_batch({"Records": records}, handler, ordering="per_key")
    assert [f["itemIdentifier"] for f in response["batchItemFailures"]] == ["5001", "5003"]
    # The failed record's lock was released: nothing but the two completions is stored.
    assert set(store.get_many([f"lane#{i:032x}" for i in range(4)])) == {
        f"lane#{0:032x}",
        f"lane#{2:032x}",
    }
    recorder.fail.clear()
    counter.reset()
    response = process_batch({"Records": records[1:]}, handler, ordering="per_key")
    assert response == {"batchItemFailures": []}
    assert recorder.runs == Counter(dict.fromkeys(range(4), 1))
    # 1 and 3 ran: lock + completion each; 2 was replayed from the failed conditional put.
    assert counter.counts == Counter({"PutItem": 5})
