"""The analytics target aggregates a whole batch per invoke (handlers/orderplatform/analytics.py)
against the embedded emulator's DynamoDB: each record counted exactly once however the batch is
re-cut, a record the batch run failed fails the target, and an unprepared record runs alone."""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from orderplatform.analytics import AnalyticsTarget

from streamkit import parse_event
from tests.helpers import create_plain_table
from tests.helpers.stream_data import make_event, stream_record


@pytest.fixture
def target(aws: Any, unique_name: Callable[[str], str]) -> AnalyticsTarget:
    return AnalyticsTarget(
        table=create_plain_table(aws.dynamodb, unique_name("aggregates"), "pk"),
        fence_table=create_plain_table(aws.dynamodb, unique_name("fences"), "id"),
        client=aws.dynamodb,
    )


def _changes(orders: int) -> list[dict[str, Any]]:
    """Each order PLACED (INSERT), then SHIPPED (MODIFY): two status changes per order."""
    rng = random.Random(7)
    records = []
    for n in range(orders):
        placed = {"pk": f"ORDER#o{n}", "status": "PLACED", "total": Decimal(10 + n)}
        shipped = {**placed, "status": "SHIPPED"}
        keys = {"pk": placed["pk"]}
        records.append(
            stream_record(
                event_name="INSERT", keys=keys, new_item=placed, old_item=None,
                index=2 * n, rng=rng,
            )
        )  # fmt: skip
        records.append(
            stream_record(
                event_name="MODIFY", keys=keys, new_item=shipped, old_item=placed,
                index=2 * n + 1, rng=rng,
            )
        )  # fmt: skip
    return records


def _invoke(target: AnalyticsTarget, raw: list[dict[str, Any]]) -> list[Any]:
    """One invocation as the fan-out function runs it: prepare, each record's target call."""
    event = make_event(raw)
    target.prepare(event)
    try:
        outcomes: list[Any] = []
        for record in parse_event(event):
            try:
                outcomes.append(target(record))
            except RuntimeError as exc:
                outcomes.append(exc)
        return outcomes
    finally:
        target.clear()


def _counters(aws: Any, target: AnalyticsTarget) -> dict[str, Any]:
    items = aws.dynamodb.scan(TableName=target.counters.table, ConsistentRead=True)["Items"]
    return {
        i["pk"]["S"]: {k: v["N"] for k, v in i.items() if k != "pk" and "N" in v} for i in items
    }


def _count(counters: dict[str, Any], status: str) -> int:
    # Deltas that cancel within one transaction (PLACED +1 then -1) write nothing.
    return int(counters.get(f"STATUS#{status}", {}).get("count", 0))


def test_a_batch_counts_once_however_it_is_redelivered_and_recut(
    aws: Any, target: AnalyticsTarget
) -> None:
    records = _changes(6)
    assert _invoke(target, records[:8]) == [1] * 8
    once = _counters(aws, target)
    assert _count(once, "SHIPPED") == 4
    assert _count(once, "PLACED") == 0
    # A timeout's redelivery (the whole batch again), then a re-cut that reaches further.
    assert _invoke(target, records[:8]) == [1] * 8
    assert _invoke(target, records[5:]) == [1] * 7
    counted = _counters(aws, target)
    assert _count(counted, "SHIPPED") == 6
    assert _count(counted, "PLACED") == 0
    revenue = sum(Decimal(v["revenue"]) for k, v in counted.items() if k.startswith("REVENUE#"))
    assert revenue == sum(Decimal(10 + n) for n in range(6))


def test_a_record_the_batch_run_failed_fails_the_target(aws: Any, target: AnalyticsTarget) -> None:
    records = _changes(2)
    records[1]["dynamodb"]["NewImage"].pop("total")  # SHIPPED without a total: deltas raise
    outcomes = _invoke(target, records)
    # fail_fast inside the aggregator: the bad record and every one after it are retried.
    assert outcomes[0] == 1
    assert all(isinstance(o, RuntimeError) for o in outcomes[1:])
    assert _count(_counters(aws, target), "PLACED") == 1


def test_a_record_outside_the_prepared_batch_runs_alone(aws: Any, target: AnalyticsTarget) -> None:
    (record,) = parse_event(make_event(_changes(1)[:1]))
    assert target(record) == 1
    assert target(record) == 1  # its marker exists: counted once
    assert _count(_counters(aws, target), "PLACED") == 1


def test_a_store_outage_fails_every_record_of_the_batch(aws: Any, target: AnalyticsTarget) -> None:
    aws.dynamodb.delete_table(TableName=target.counters.fence_table)
    outcomes = _invoke(target, _changes(2))
    assert len(outcomes) == 4 and all(isinstance(o, RuntimeError) for o in outcomes)
