"""CounterAggregator on the embedded emulator: real order writes, the real stream, real fenced
transactions, then the aggregate table's contents. Redeliveries of every shape (the same batch,
overlapping batches, a failure in the middle, interleaved lanes) must never count a record
twice or drop one."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import ClientError

from streamkit.records import StreamRecord
from streamkit.routing import AggregateWriteError, CounterAggregator, Delta, became, transition
from tests.helpers import AwsClients, create_stream_table, lambda_records

PRICES = [Decimal("19.99"), Decimal("5.01"), Decimal("100.00"), Decimal("0.10"), Decimal("42.42")]


def revenue_per_minute(record: StreamRecord) -> Iterator[Delta]:
    """Revenue and order count of the orders that became PAID, per minute of the change."""
    if became("status", "PAID")(record):
        minute = record.approximate_creation_time.strftime("%Y-%m-%dT%H:%M")
        total = record.new_image["total"]  # type: ignore[index]
        yield Delta({"pk": f"REVENUE#{minute}", "sk": "TOTAL"}, {"revenue": total, "orders": 1})


def status_counts(record: StreamRecord) -> Iterator[Delta]:
    """How many orders are in each status right now."""
    if transition("status")(record):
        before = (record.old_image or {}).get("status")
        after = (record.new_image or {}).get("status")
        if before is not None:
            yield Delta({"pk": f"STATUS#{before}", "sk": "COUNT"}, {"count": -1})
        if after is not None:
            yield Delta({"pk": f"STATUS#{after}", "sk": "COUNT"}, {"count": 1})


def order_metrics(record: StreamRecord) -> Iterator[Delta]:
    yield from revenue_per_minute(record)
    yield from status_counts(record)


@dataclass
class Platform:
    aws: AwsClients
    orders: str
    stream_arn: str
    aggregates: str
    fence: str

    def aggregator(self, **kwargs: Any) -> CounterAggregator:
        kwargs.setdefault("client", self.aws.dynamodb)
        kwargs.setdefault("deltas", order_metrics)
        return CounterAggregator(
            "order-metrics", table=self.aggregates, fence_table=self.fence, **kwargs
        )

    def write_orders(self, count: int) -> None:
        """INSERT PLACED, then most become PAID, some SHIPPED, one is deleted."""
        ddb = self.aws.dynamodb
        for n in range(count):
            item = {
                "pk": {"S": f"ORDER#{n}"},
                "status": {"S": "PLACED"},
                "total": {"N": str(PRICES[n % 5])},
            }
            ddb.put_item(TableName=self.orders, Item=item)
        for n in range(count):
            if n % 4 != 3:
                self._set_status(n, "PAID")
        for n in range(0, count, 3):
            if n % 4 != 3:
                self._set_status(n, "SHIPPED")
        ddb.delete_item(TableName=self.orders, Key={"pk": {"S": "ORDER#1"}})

    def _set_status(self, n: int, status: str) -> None:
        self.aws.dynamodb.update_item(
            TableName=self.orders,
            Key={"pk": {"S": f"ORDER#{n}"}},
            UpdateExpression="SET #s = :s",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": status}},
        )

    def records(self) -> list[dict[str, Any]]:
        """The stream as Lambda would deliver it."""
        return lambda_records(self.aws.dynamodbstreams, self.stream_arn)

    def aggregates_table(self) -> dict[str, dict[str, Decimal]]:
        items = self.aws.dynamodb.scan(TableName=self.aggregates, ConsistentRead=True)["Items"]
        return {
            item["pk"]["S"]: {k: Decimal(v["N"]) for k, v in item.items() if "N" in v}
            for item in items
        }


def expected_aggregates(records: list[dict[str, Any]]) -> dict[str, dict[str, Decimal]]:
    """Computed from the raw records with plain code, independently of the library."""
    from datetime import UTC, datetime

    out: dict[str, dict[str, Decimal]] = {}

    def add(pk: str, name: str, amount: Decimal) -> None:
        out.setdefault(pk, {}).setdefault(name, Decimal(0))
        out[pk][name] += amount

    for r in records:
        new = r["dynamodb"].get("NewImage", {})
        old = r["dynamodb"].get("OldImage", {})
        before = old.get("status", {}).get("S")
        after = new.get("status", {}).get("S")
        if after == "PAID" and before != "PAID":
            when = datetime.fromtimestamp(r["dynamodb"]["ApproximateCreationDateTime"], UTC)
            pk = f"REVENUE#{when:%Y-%m-%dT%H:%M}"
            add(pk, "revenue", Decimal(new["total"]["N"]))
            add(pk, "orders", Decimal(1))
        if before != after:
            if before is not None:
                add(f"STATUS#{before}", "count", Decimal(-1))
            if after is not None:
                add(f"STATUS#{after}", "count", Decimal(1))
    return out


@pytest.fixture
def platform(aws: AwsClients, unique_name: Callable[[str], str]) -> Platform:
    orders = unique_name("orders")
    stream_arn = create_stream_table(aws.dynamodb, orders)
    aggregates = unique_name("aggregates")
    aws.dynamodb.create_table(
        TableName=aggregates,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    fence = unique_name("idempotency")
    aws.dynamodb.create_table(
        TableName=fence,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return Platform(aws, orders, stream_arn, aggregates, fence)


def event(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": records}


def reported(response: dict[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


def test_aggregates_are_exact_and_redeliveries_of_any_shape_add_nothing(platform: Platform) -> None:
    platform.write_orders(12)
    records = platform.records()
    expected = expected_aggregates(records)
    assert expected["STATUS#PAID"]["count"] > 0 and "STATUS#SHIPPED" in expected

    aggregator = platform.aggregator()
    result = aggregator.run(event(records))
    assert result.response() == {"batchItemFailures": []}
    assert platform.aggregates_table() == expected
    # Every record of write_orders changes a status, so every one contributes.
    contributing = len(records)
    assert (result.applied, result.no_deltas, result.already_applied) == (contributing, 0, 0)

    # The same batch again (a timeout), then two overlapping batches of another cut.
    again = aggregator.run(event(records))
    assert (again.applied, again.already_applied, again.transactions) == (0, contributing, 0)
    aggregator.handle(event(records[5:20]))
    aggregator.handle(event(records[15:]))
    assert platform.aggregates_table() == expected


def test_deltas_are_summed_per_aggregate_within_each_transaction(platform: Platform) -> None:
    platform.write_orders(10)
    records = platform.records()
    aggregator = platform.aggregator(max_transaction_items=6)
    result = aggregator.run(event(records))
    assert result.response() == {"batchItemFailures": []}
    assert result.transactions > 3  # the small limit forced several transactions
    assert platform.aggregates_table() == expected_aggregates(records)


class FailingClient:
    """The real client, but chosen calls fail first: ``fail[operation] = [code, ...]`` raises
    a ClientError with each code in turn; ``hide_markers`` makes BatchGetItem see none."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.fail: dict[str, list[str | None]] = {}
        self.calls: dict[str, int] = {}
        self.hide_markers = False

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._client, name)

        def call(**kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            queue = self.fail.get(name)
            if queue:
                code = queue.pop(0)
                if code is not None:
                    raise ClientError({"Error": {"Code": code, "Message": "injected"}}, name)
            response = real(**kwargs)
            if name == "batch_get_item" and self.hide_markers:
                response = {**response, "Responses": {}}
            return response

        return call


def test_a_failed_transaction_reports_from_its_first_record_and_redelivery_completes(
    platform: Platform,
) -> None:
    platform.write_orders(10)
    records = platform.records()
    client = FailingClient(platform.aws.dynamodb)
    # The first transaction commits; the second fails for good (not retryable).
    client.fail["transact_write_items"] = [None, "ValidationException"]
    aggregator = platform.aggregator(client=client, max_transaction_items=6)
    result = aggregator.run(event(records))
    failed = reported(result.response())
    assert failed, "the second transaction's records must be reported"
    assert isinstance(result.errors[0][1], AggregateWriteError)
    sequence_numbers = [r["dynamodb"]["SequenceNumber"] for r in records]
    start = sequence_numbers.index(failed[0])
    assert failed == sequence_numbers[start:]  # a suffix, from the failed transaction on
    assert result.applied > 0 and platform.aggregates_table() != expected_aggregates(records)

    # Lambda redelivers from the reported record (here with the rest of the stream).
    assert aggregator.handle(event(records[start:])) == {"batchItemFailures": []}
    assert platform.aggregates_table() == expected_aggregates(records)


def test_throttling_and_conflicts_are_retried_inside_the_invocation(platform: Platform) -> None:
    platform.write_orders(6)
    records = platform.records()
    client = FailingClient(platform.aws.dynamodb)
    client.fail["transact_write_items"] = ["ThrottlingException", "TransactionConflictException"]
    aggregator = platform.aggregator(client=client)
    assert aggregator.handle(event(records)) == {"batchItemFailures": []}
    assert client.calls["transact_write_items"] == 3
    assert platform.aggregates_table() == expected_aggregates(records)


def test_the_transaction_condition_catches_what_the_marker_read_missed(platform: Platform) -> None:
    platform.write_orders(8)
    records = platform.records()
    platform.aggregator().handle(event(records[:20]))
    client = FailingClient(platform.aws.dynamodb)
    client.hide_markers = True  # as if the read were stale: only the conditions protect now
    result = platform.aggregator(client=client).run(event(records))
    assert result.response() == {"batchItemFailures": []}
    assert result.already_applied > 0
    assert platform.aggregates_table() == expected_aggregates(records)


def test_a_record_whose_deltas_fail_is_reported_with_the_rest_and_the_earlier_ones_apply(
    platform: Platform,
) -> None:
    platform.write_orders(6)
    records = platform.records()
    poison = records[7]["eventID"]
    seen = {"failed": False}

    def flaky(record: StreamRecord) -> Iterator[Delta]:
        if record.event_id == poison and not seen["failed"]:
            seen["failed"] = True
            raise ConnectionError("price service down")
        return order_metrics(record)

    aggregator = platform.aggregator(deltas=flaky)
    first = aggregator.handle(event(records))
    assert reported(first) == [r["dynamodb"]["SequenceNumber"] for r in records[7:]]
    assert platform.aggregates_table() == expected_aggregates(records[:7])
    assert aggregator.handle(event(records[7:])) == {"batchItemFailures": []}
    assert platform.aggregates_table() == expected_aggregates(records)


def test_interleaved_lanes_updating_the_same_aggregates_lose_nothing(platform: Platform) -> None:
    """ParallelizationFactor > 1: lanes are picked by item key, so two lanes update the same
    per-minute and per-status aggregates at once, with interleaved sequence numbers."""
    platform.write_orders(16)
    records = platform.records()
    lanes: list[list[dict[str, Any]]] = [[], []]
    for record in records:
        lanes[int(record["dynamodb"]["Keys"]["pk"]["S"].split("#")[1]) % 2].append(record)
    errors: list[BaseException] = []

    def run_lane(lane: list[dict[str, Any]]) -> None:
        try:
            aggregator = platform.aggregator(max_transaction_items=8)
            for start in range(0, len(lane), 5):  # batches of 5, each delivered twice
                for _ in range(2):
                    assert aggregator.handle(event(lane[start : start + 5])) == {
                        "batchItemFailures": []
                    }
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run_lane, args=(lane,)) for lane in lanes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert platform.aggregates_table() == expected_aggregates(records)


def test_a_record_touching_too_many_aggregates_fails_instead_of_splitting(
    platform: Platform,
) -> None:
    platform.write_orders(2)
    records = platform.records()

    def fan(record: StreamRecord) -> Iterator[Delta]:
        for i in range(10):
            yield Delta({"pk": f"X#{i}", "sk": "N"}, {"n": 1})

    aggregator = platform.aggregator(deltas=fan, max_transaction_items=5)
    result = aggregator.run(event(records))
    assert reported(result.response()) == [r["dynamodb"]["SequenceNumber"] for r in records]
    assert "touches 10 aggregates" in str(result.errors[0][1])
    assert platform.aggregates_table() == {}


# --- through the runner -------------------------------------------------------------------------

COUNTER_APP = r"""
import os

import boto3

from streamkit.routing import CounterAggregator, Delta, became, transition

ddb = boto3.client("dynamodb")


def order_metrics(record):
    if became("status", "PAID")(record):
        minute = record.approximate_creation_time.strftime("%Y-%m-%dT%H:%M")
        yield Delta({"pk": f"REVENUE#{minute}", "sk": "TOTAL"}, {"revenue": record.new_image["total"], "orders": 1})
    if transition("status")(record):
        before = (record.old_image or {}).get("status")
        after = (record.new_image or {}).get("status")
        if before is not None:
            yield Delta({"pk": f"STATUS#{before}", "sk": "COUNT"}, {"count": -1})
        if after is not None:
            yield Delta({"pk": f"STATUS#{after}", "sk": "COUNT"}, {"count": 1})


def poisoned_once(record):
    # ORDER#5's first PAID record fails the first time it is seen (a dependency blip).
    image = record.new_image or {}
    if record.keys["pk"] == "ORDER#5" and image.get("status") == "PAID":
        try:
            ddb.put_item(
                TableName=os.environ["FENCE_TABLE"],
                Item={"id": {"S": "poison-seen"}},
                ConditionExpression="attribute_not_exists(id)",
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            pass
        else:
            raise ConnectionError("price service blip")
    return order_metrics(record)


aggregator = CounterAggregator(
    "order-metrics",
    table=os.environ["AGGREGATES_TABLE"],
    fence_table=os.environ["FENCE_TABLE"],
    deltas=poisoned_once,
    client=ddb,
)


def handler(event, context):
    return aggregator.handle(event, context)
"""


def test_counters_are_exact_through_the_runner_and_a_full_replay(
    platform: Platform, endpoint_url: str, unique_name: Callable[[str], str], tmp_path: Any
) -> None:
    from tests.helpers.streamkit_zip import (
        deploy_streamkit_function,
        running_mapping,
        wait_for,
    )

    function = unique_name("counters")
    env = {"AGGREGATES_TABLE": platform.aggregates, "FENCE_TABLE": platform.fence}
    deploy_streamkit_function(platform.aws, function, COUNTER_APP, env=env)
    platform.write_orders(12)
    records = lambda_records(platform.aws.dynamodbstreams, platform.stream_arn)
    expected = expected_aggregates(records)
    with running_mapping(
        platform.aws, endpoint_url, tmp_path / "state", function=function,
        stream_arn=platform.stream_arn, BatchSize=7, MaximumRetryAttempts=5,
    ) as (runner, uuid):  # fmt: skip
        runner.wait_until(lambda stats: stats[uuid]["succeeded"] >= len(records), timeout=60)
        stats = runner.stats()[uuid]
        wait_for(
            lambda: platform.aggregates_table() == expected, timeout=10, what="exact aggregates"
        )
    assert stats["failed"] >= 1  # the poisoned record was reported and redelivered
    # Lambda may deliver any of it again (a timeout, a recreated mapping): replay it all.
    replay = platform.aggregator()
    for start in (0, 4, 9):
        assert replay.handle(event(records[start:])) == {"batchItemFailures": []}
    assert platform.aggregates_table() == expected
