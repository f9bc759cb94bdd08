"""ObservedConsumer: a Router, a Workflow and a CounterAggregator emit the metrics, logs and
traces of observed_batch_handler, and their responses stay exactly what ``handle`` returns.

Workflow and counters run against moto's in-process DynamoDB (``mock_aws``)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from tests.helpers.emf import batch_counts, tally
from tests.helpers.observed_events import (
    NOW,
    LambdaContext,
    Sink,
    event,
    index_of,
    json_lines,
    record,
)
from tests.helpers.stream_data import sequence_number as seq
from tests.helpers.streams import create_plain_table

from streamkit import MemoryIdempotencyStore, StreamRecord
from streamkit.observability import ObservableConsumer, ObservedConsumer, Tracer
from streamkit.routing import CounterAggregator, Delta, RetryStage, Router, Workflow


@pytest.fixture(autouse=True)
def quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STREAMKIT_LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL", "STREAMKIT_LOG_IMAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)


def observed(consumer: ObservableConsumer, sink: Sink, **options: Any) -> ObservedConsumer:
    options.setdefault("tracer", Tracer(enabled=False))
    return ObservedConsumer(
        consumer, namespace="Orders", metrics_sink=sink, clock=lambda: NOW, **options
    )


def counts(sink: Sink, service: str = "orders") -> dict[str, float]:
    """The record counters of the invocation's one (validated) EMF document."""
    [document] = sink.documents()
    return batch_counts(document, namespace="Orders", service=service)


def failures(response: Any) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


# --- Router ---------------------------------------------------------------------------------


def fan_out_router(fail: dict[str, bool], calls: list[tuple[str, int]]) -> Router:
    """A fan-out with two targets; ``email`` fails on record 1 while ``fail["on"]``."""
    router = Router("orders", idempotency=MemoryIdempotencyStore())
    changed = router.fan_out("changed", events="MODIFY")

    @changed.target("email")
    def email(r: StreamRecord) -> None:
        calls.append(("email", index_of(r)))
        if index_of(r) == 1 and fail["on"]:
            raise ConnectionError("mail server down")

    @changed.target("search")
    def search(r: StreamRecord) -> None:
        calls.append(("search", index_of(r)))

    return router


def test_a_router_batch_with_one_failing_target_reports_one_failed_record(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink, calls = Sink(), []
    router = fan_out_router({"on": True}, calls)
    handler = observed(router, sink)
    batch = event(*(record(i) for i in range(3)))

    response = handler(batch, LambdaContext())

    assert failures(response) == [seq(1), seq(2)]  # fail_fast: 2 is held back
    assert counts(sink) == tally(3, processed=1, failed=1, skipped=1)
    assert len(sink.metrics()["HandlerDuration"]) == 2  # one dispatch per record that ran
    [document] = sink.documents()
    assert (document["Service"], document["FunctionName"], document["TableName"]) == (
        "orders",  # the router's name, by default
        "orders-audit",
        "orders",
    )
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Orders"
    # Both targets of record 1 ran: one failure hides no other result.
    assert calls == [("email", 0), ("search", 0), ("email", 1), ("search", 1)]
    assert router.stats.snapshot()["targets"]["changed.email"]["failed"] == 1
    lines = json_lines(capsys.readouterr().out)
    [failure] = [line for line in lines if line["message"].startswith("record handler failed")]
    assert failure["exception_name"] == "TargetsFailedError"
    assert failure["sequence_number"] == seq(1) and failure["service"] == "orders"
    [summary] = [line for line in lines if line["message"] == "batch processed"]
    assert (summary["level"], summary["records_failed"], summary["reported"]) == ("WARNING", 1, 2)


def test_a_router_redelivery_counts_fully_completed_records_as_already_completed() -> None:
    sink, calls, fail = Sink(), [], {"on": True}
    handler = observed(fan_out_router(fail, calls), sink)
    batch = event(*(record(i) for i in range(3)))
    handler(batch, LambdaContext())
    fail["on"] = False
    sink.lines.clear()
    calls.clear()

    assert handler(batch, LambdaContext()) == {"batchItemFailures": []}
    # 0: both targets done before; 1: search done, email runs again; 2: both run.
    assert calls == [("email", 1), ("email", 2), ("search", 2)]
    assert counts(sink) == tally(3, processed=2, already=1)


def test_a_routers_response_is_handles_even_when_the_metrics_sink_raises(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken_sink(line: str) -> None:
        raise OSError("stdout is gone")

    batch = event(*(record(i) for i in range(4)))
    expected = fan_out_router({"on": True}, []).handle(batch, LambdaContext())
    handler = ObservedConsumer(
        fan_out_router({"on": True}, []), metrics_sink=broken_sink, tracer=Tracer(enabled=False)
    )
    assert handler(batch, LambdaContext()) == expected
    assert handler.last_result is not None and handler.last_result.failed == 1
    assert any(
        "observability failed while emitting metrics" in line["message"]
        for line in json_lines(capsys.readouterr().out)
    )


def test_a_record_that_matches_no_route_is_processed() -> None:
    sink = Sink()
    router = Router("inserts")
    router.route(events="INSERT", name="on_insert")(lambda r: None)  # the records are MODIFYs
    assert observed(router, sink)(event(record(0)), LambdaContext()) == {"batchItemFailures": []}
    assert counts(sink, "inserts") == tally(1, processed=1)
    assert router.stats.snapshot()["unmatched"] == 1


# --- traces ---------------------------------------------------------------------------------


class Subsegment:
    def __init__(self, name: str) -> None:
        self.name = name
        self.annotations: dict[str, Any] = {}
        self.error: BaseException | None = None
        self.closed = False

    def put_annotation(self, key: str, value: Any) -> None:
        self.annotations[key] = value

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        pass

    def add_exception(self, error: BaseException, stack: Any) -> None:
        self.error = error

    def close(self) -> None:
        self.closed = True


class Recorder:
    """An X-Ray recorder that keeps every subsegment it was asked for."""

    def __init__(self) -> None:
        self.opened: list[Subsegment] = []
        self._stack: list[Subsegment] = []

    def begin_subsegment(self, name: str) -> Subsegment:
        subsegment = Subsegment(name)
        self.opened.append(subsegment)
        self._stack.append(subsegment)
        return subsegment

    def current_subsegment(self) -> Subsegment | None:
        return self._stack[-1] if self._stack else None

    def end_subsegment(self) -> None:
        self._stack.pop().close()


def test_a_router_batch_is_traced_with_a_subsegment_per_dispatched_record() -> None:
    recorder = Recorder()
    tracer = Tracer(enabled=True, recorder=recorder)
    handler = observed(fan_out_router({"on": True}, []), Sink(), tracer=tracer)
    handler(event(*(record(i) for i in range(3))), LambdaContext())
    names = [s.name for s in recorder.opened]
    assert names == ["## streamkit.batch", "## streamkit.record", "## streamkit.record"]
    batch, first, second = recorder.opened
    assert batch.annotations["service"] == "orders" and batch.annotations["records_failed"] == 1
    assert first.annotations["sequence_number"] == seq(0) and first.error is None
    assert type(second.error).__name__ == "TargetsFailedError"
    assert all(s.closed for s in recorder.opened)


# --- Workflow -------------------------------------------------------------------------------


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb")
        for table, key in (("orders", "pk"), ("aggregates", "pk"), ("fences", "id")):
            create_plain_table(client, table, key)
        yield client


def placed(i: int, order: str) -> dict[str, Any]:
    """The INSERT of a new order ``order`` in state PLACED at version 1."""
    raw = record(i, f"ORDER#{order}")
    raw["eventName"] = "INSERT"
    raw["dynamodb"]["NewImage"] = {
        "pk": {"S": f"ORDER#{order}"},
        "status": {"S": "PLACED"},
        "version": {"N": "1"},
    }
    return raw


def order_workflow(client: Any, retry: dict[str, bool]) -> Workflow:
    """PLACED -> VALIDATED; order ``b`` asks for a retry while ``retry["on"]``."""
    wf = Workflow("orders-pipeline", table="orders", client=client)

    @wf.stage("PLACED", next="VALIDATED")
    def validate(r: StreamRecord) -> None:
        if r.keys["pk"] == "ORDER#b" and retry["on"]:
            raise RetryStage("payment provider busy")

    wf.terminal("VALIDATED")
    for order in "abc":
        wf.start({"pk": f"ORDER#{order}"}, state="PLACED")
    return wf


def test_a_workflow_batch_counts_retries_as_failed_and_stale_redeliveries_as_completed(
    dynamodb: Any,
) -> None:
    sink, retry = Sink(), {"on": True}
    workflow = order_workflow(dynamodb, retry)
    handler = observed(workflow, sink, service="workflow")
    batch = event(placed(0, "a"), placed(1, "b"), placed(2, "c"))

    assert failures(handler(batch, LambdaContext())) == [seq(1)]  # per_key: a and c go on
    assert counts(sink, "workflow") == tally(3, processed=2, failed=1)
    assert len(sink.metrics()["HandlerDuration"]) == 3

    retry["on"] = False
    sink.lines.clear()
    assert handler(batch, LambdaContext()) == {"batchItemFailures": []}
    # a and c moved on (the version fence finds them VALIDATED): already completed.
    assert counts(sink, "workflow") == tally(3, processed=1, already=2)
    assert workflow.counts() == {"advanced": 3, "stale": 2}


def test_a_workflows_response_is_handles(dynamodb: Any) -> None:
    batch = event(placed(0, "a"), placed(1, "b"), placed(2, "c"))
    # Twin workflows over the same table: the first one's writes make the second's stale,
    # so each runs on its own copy of the items.
    expected = order_workflow(dynamodb, {"on": True}).handle(batch, LambdaContext())
    for order in "ac":
        dynamodb.delete_item(TableName="orders", Key={"pk": {"S": f"ORDER#{order}"}})
    handler = observed(order_workflow(dynamodb, {"on": True}), Sink())
    assert (
        handler(batch, LambdaContext())
        == expected
        == {"batchItemFailures": [{"itemIdentifier": seq(1)}]}
    )


# --- CounterAggregator ----------------------------------------------------------------------


def order_counter(client: Any, deltas: Callable[[StreamRecord], Any]) -> CounterAggregator:
    # Three transaction items: two records (two markers) on the one aggregate per chunk.
    return CounterAggregator(
        "orders",
        table="aggregates",
        fence_table="fences",
        deltas=deltas,
        client=client,
        max_transaction_items=3,
    )


def one_unless_odd(r: StreamRecord) -> list[Delta]:
    """Record 1 contributes nothing; every other adds 1 to the total."""
    return [] if index_of(r) == 1 else [Delta({"pk": "TOTAL"}, {"n": 1})]


def total(client: Any) -> int:
    item = client.get_item(TableName="aggregates", Key={"pk": {"S": "TOTAL"}}).get("Item")
    return int(item["n"]["N"]) if item else 0


class FailingTransactions:
    """The DynamoDB client, except that a transaction holding ``marker`` fails for good."""

    def __init__(self, client: Any, marker: str) -> None:
        self.client, self.marker, self.on = client, marker, True

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def transact_write_items(self, **request: Any) -> Any:
        if self.on and self.marker in str(request):
            raise self.client.exceptions.ResourceNotFoundException(
                {"Error": {"Code": "ResourceNotFoundException", "Message": "gone"}}, "Tx"
            )
        return self.client.transact_write_items(**request)


def test_a_failed_transaction_fails_its_records_and_a_redelivery_finds_the_rest_applied(
    dynamodb: Any,
) -> None:
    sink = Sink()
    client = FailingTransactions(dynamodb, marker="orders#ev-3")
    handler = observed(order_counter(client, one_unless_odd), sink, service="analytics")
    batch = event(*(record(i) for i in range(5)))  # chunks: [0, 2], [3, 4]; 1 adds nothing

    assert failures(handler(batch, LambdaContext())) == [seq(3), seq(4)]
    assert counts(sink, "analytics") == tally(5, processed=3, failed=2)
    assert len(sink.metrics()["HandlerDuration"]) == 5  # every record's deltas
    assert total(dynamodb) == 2

    client.on = False
    sink.lines.clear()
    assert handler(batch, LambdaContext()) == {"batchItemFailures": []}
    assert counts(sink, "analytics") == tally(5, processed=3, already=2)
    assert total(dynamodb) == 4


def test_a_failing_deltas_function_is_one_failed_record_logged_once(
    dynamodb: Any, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    def deltas(r: StreamRecord) -> list[Delta]:
        if index_of(r) == 2:
            raise KeyError("total")
        return one_unless_odd(r)

    sink = Sink()
    handler = observed(order_counter(dynamodb, deltas), sink)
    with caplog.at_level(logging.DEBUG, logger="streamkit.routing.counters"):
        response = handler(event(*(record(i) for i in range(5))), LambdaContext())

    assert failures(response) == [seq(2), seq(3), seq(4)]
    assert counts(sink) == tally(5, processed=2, failed=1, skipped=2)
    assert len(sink.metrics()["HandlerDuration"]) == 3  # records 3 and 4 never ran
    assert total(dynamodb) == 1
    [failure] = [
        line
        for line in json_lines(capsys.readouterr().out)
        if line["message"].startswith("record handler failed")
    ]
    assert failure["sequence_number"] == seq(2) and failure["exception_name"] == "KeyError"
    record_lines = [r for r in caplog.records if "record 4900" in r.getMessage()]
    assert record_lines and all(r.levelno == logging.DEBUG for r in record_lines)


def test_without_an_observer_a_deltas_failure_is_still_a_warning(
    dynamodb: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def deltas(r: StreamRecord) -> list[Delta]:
        raise KeyError("total")

    with caplog.at_level(logging.DEBUG, logger="streamkit.routing.counters"):
        order_counter(dynamodb, deltas).handle(event(record(0)), None)
    assert [r.levelno for r in caplog.records if "failed: KeyError" in r.getMessage()] == [
        logging.WARNING
    ]


def test_an_aggregators_response_is_handles_when_every_part_of_observability_breaks(
    dynamodb: Any,
) -> None:
    class BrokenLogger:
        def error(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("log broken")

        def log(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("log broken")

    def broken_sink(line: str) -> None:
        raise OSError("stdout is gone")

    from tests.helpers.observed_events import ExplodingRecorder

    batch = event(*(record(i) for i in range(5)))
    client = FailingTransactions(dynamodb, marker="orders#ev-3")
    expected = order_counter(client, one_unless_odd).handle(batch, LambdaContext())
    dynamodb.delete_item(TableName="aggregates", Key={"pk": {"S": "TOTAL"}})
    for i in (0, 2):
        dynamodb.delete_item(TableName="fences", Key={"id": {"S": f"orders#ev-{i}"}})
    handler = ObservedConsumer(
        order_counter(client, one_unless_odd),
        metrics_sink=broken_sink,
        logger=BrokenLogger(),  # type: ignore[arg-type]
        tracer=Tracer(enabled=True, recorder=ExplodingRecorder(fail_on_begin=False)),
    )
    assert handler(batch, LambdaContext()) == expected
    assert failures(expected) == [seq(3), seq(4)]
    assert total(dynamodb) == 2


# --- what can be observed -------------------------------------------------------------------


def test_a_plain_record_function_is_refused_with_a_pointer_to_observed_batch_handler() -> None:
    with pytest.raises(TypeError, match="observed_batch_handler"):
        ObservedConsumer(lambda r: None)  # type: ignore[arg-type]


def test_the_service_defaults_to_the_consumers_name() -> None:
    assert ObservedConsumer(Router("cache")).service == "cache"
    assert ObservedConsumer(Router("cache"), service="invalidations").service == "invalidations"
