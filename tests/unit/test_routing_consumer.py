"""One Consumer protocol (name, handle, run) for Router, Workflow and the aggregators."""

from __future__ import annotations

from typing import Any

from streamkit import StreamRecord
from streamkit.batch import BatchResult
from streamkit.routing import (
    Consumer,
    CounterAggregator,
    Router,
    TumblingWindowAggregator,
    Workflow,
)


def noop(record: StreamRecord) -> None:
    return None


def workflow() -> Workflow:
    wf = Workflow("orders", table="orders")
    wf.stage("PLACED", next="DONE")(noop)
    wf.terminal("DONE")
    return wf


def test_every_consumer_has_name_handle_and_run() -> None:
    consumers: list[Any] = [
        Router("cache"),
        workflow(),
        CounterAggregator("totals", table="t", fence_table="f", deltas=lambda r: []),
        TumblingWindowAggregator("window", emit=lambda result: None, fold=lambda s, r: s),
    ]
    for consumer in consumers:
        assert isinstance(consumer, Consumer), type(consumer).__name__
        assert consumer.name
    assert not isinstance(noop, Consumer)


def test_a_workflow_runs_a_batch_as_it_handles_it() -> None:
    wf = workflow()
    result = wf.run({"Records": []})
    assert isinstance(result, BatchResult)
    assert result.total == 0
    assert result.response() == wf.handle({"Records": []}) == {"batchItemFailures": []}


def test_a_window_aggregator_runs_to_its_response() -> None:
    aggregator = TumblingWindowAggregator("window", emit=lambda result: None, fold=lambda s, r: s)
    event = {
        "Records": [],
        "window": {"start": "2024-01-01T00:00:00Z", "end": "2024-01-01T00:01:00Z"},
        "state": {},
        "shardId": "shard-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/L",
        "isFinalInvokeForWindow": False,
        "isWindowTerminatedEarly": False,
    }
    response = aggregator.run(event)
    assert response["batchItemFailures"] == []
    assert "state" in response
