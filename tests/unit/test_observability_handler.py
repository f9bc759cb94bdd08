"""observed_batch_handler: run_batch's answer, plus metrics, logs and traces that never cost
the response."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from tests.helpers.observed_events import (
    NOW,
    SECRET,
    ExplodingRecorder,
    LambdaContext,
    Sink,
    event,
    failing_on,
    index_of,
    json_lines,
    observed,
    record,
)
from tests.helpers.stream_data import sequence_number as seq

from streamkit import MemoryIdempotencyStore, StreamRecord, batch_handler, process_batch
from streamkit.exceptions import InvalidEventError
from streamkit.observability import (
    Tracer,
    observed_batch_handler,
)


@pytest.fixture(autouse=True)
def quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("STREAMKIT_LOG_LEVEL", "AWS_LAMBDA_LOG_LEVEL", "STREAMKIT_LOG_IMAGES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_LAMBDA_INITIALIZATION_TYPE", raising=False)


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_of_a_fail_fast_batch_with_a_failure() -> None:
    sink = Sink()
    handler = observed(failing_on(2), sink)
    response = handler(event(*(record(i) for i in range(5))), LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": seq(i)} for i in (2, 3, 4)]}
    metrics = sink.metrics()
    assert metrics["BatchSize"] == [5]
    assert metrics["RecordsProcessed"] == [2]
    assert metrics["RecordsFailed"] == [1]
    assert metrics["RecordsSkipped"] == [2]
    assert metrics["RecordsAlreadyCompleted"] == [0]
    assert len(metrics["HandlerDuration"]) == 3  # records 0, 1 and the failing 2 ran
    assert all(0 <= d < 5_000 for d in metrics["HandlerDuration"])
    # Newest record was created at NOW - 56 s.
    assert metrics["IteratorAge"] == [56_000.0]
    assert metrics["ColdStart"] == [1]
    [document] = sink.documents()
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Orders"
    assert document["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [
        ["Service", "FunctionName", "TableName"]
    ]
    assert (document["Service"], document["FunctionName"], document["TableName"]) == (
        "audit",
        "orders-audit",
        "orders",
    )
    assert document["function_request_id"] == "req-1"
    units = {m["Name"]: m["Unit"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units["HandlerDuration"] == units["IteratorAge"] == "Milliseconds"
    assert units["RecordsFailed"] == "Count"


def test_metrics_count_already_completed_records_per_key() -> None:
    sink = Sink()
    store = MemoryIdempotencyStore()
    keys = ["a", "b", "a", "c"]
    batch = event(*(record(i, k) for i, k in enumerate(keys)))
    fail_first_a = {"on": True}

    def handle(r: StreamRecord) -> None:
        if index_of(r) == 0 and fail_first_a["on"]:
            raise ValueError("a is down")

    handler = observed(handle, sink, ordering="per_key", idempotency=store)
    first = handler(batch, LambdaContext("req-1"))
    assert first == {"batchItemFailures": [{"itemIdentifier": seq(0)}, {"itemIdentifier": seq(2)}]}
    assert sink.metrics()["RecordsSkipped"] == [1]  # the later "a"
    assert sink.metrics()["RecordsProcessed"] == [2]  # b and c

    # Lambda redelivers the whole batch; b and c are already done.
    fail_first_a["on"] = False
    sink.lines.clear()
    assert handler(batch, LambdaContext("req-2")) == {"batchItemFailures": []}
    metrics = sink.metrics()
    assert metrics["RecordsAlreadyCompleted"] == [2]
    assert metrics["RecordsProcessed"] == [2]
    assert metrics["RecordsFailed"] == metrics["RecordsSkipped"] == [0]
    assert len(metrics["HandlerDuration"]) == 2
    assert "ColdStart" not in metrics


def test_a_large_batch_splits_handler_durations_across_valid_documents() -> None:
    sink = Sink()
    handler = observed(lambda r: None, sink)
    handler(event(*(record(i) for i in range(250))), LambdaContext())
    assert len(sink.documents()) == 3
    metrics = sink.metrics()  # validates each document
    assert len(metrics["HandlerDuration"]) == 250
    assert metrics["BatchSize"] == [250]


def test_an_empty_batch_still_reports_its_size() -> None:
    sink = Sink()
    handler = observed(lambda r: None, sink)
    assert handler({"Records": []}, LambdaContext()) == {"batchItemFailures": []}
    metrics = sink.metrics()
    assert metrics["BatchSize"] == [0]
    assert "IteratorAge" not in metrics and "HandlerDuration" not in metrics
    assert sink.documents()[0]["TableName"] == "unknown"


def test_extra_dimensions_are_added() -> None:
    sink = Sink()
    handler = observed(lambda r: None, sink, dimensions={"Environment": "prod"})
    handler(event(record(0)), LambdaContext())
    [document] = sink.documents()
    assert document["Environment"] == "prod"
    assert "Environment" in document["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]


def test_the_iterator_age_is_never_negative() -> None:
    sink = Sink()
    handler = observed(lambda r: None, sink)
    handler(event(record(0, created=NOW + 30)), LambdaContext())  # clock skew
    assert sink.metrics()["IteratorAge"] == [0.0]


# --- cold start ------------------------------------------------------------------------------


def test_cold_start_is_true_only_on_the_first_invocation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink = Sink()
    handler = observed(lambda r: None, sink)
    for request in ("req-1", "req-2", "req-3"):
        handler(event(record(0)), LambdaContext(request))
    documents = sink.documents()
    assert [d.get("ColdStart") for d in documents] == [1, None, None]
    summaries = [
        line for line in json_lines(capsys.readouterr().out) if line["message"] == "batch processed"
    ]
    assert [(s["function_request_id"], s["cold_start"]) for s in summaries] == [
        ("req-1", True),
        ("req-2", False),
        ("req-3", False),
    ]


def test_provisioned_concurrency_is_never_a_cold_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_INITIALIZATION_TYPE", "provisioned-concurrency")
    sink = Sink()
    observed(lambda r: None, sink)(event(record(0)), LambdaContext())
    assert "ColdStart" not in sink.metrics()


# --- the response is never lost --------------------------------------------------------------


def test_the_response_is_run_batchs_response() -> None:
    batch = event(*(record(i, k) for i, k in enumerate(["a", "b", "a", "c", "b"])))
    for ordering in ("fail_fast", "per_key"):
        expected = process_batch(batch, failing_on(1), ordering=ordering)
        handler = observed(failing_on(1), Sink(), ordering=ordering)
        assert handler(batch, LambdaContext()) == expected


def test_a_failing_metrics_sink_does_not_change_the_response(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken_sink(line: str) -> None:
        raise OSError("stdout is gone")

    batch = event(*(record(i) for i in range(4)))
    expected = process_batch(batch, failing_on(2))
    handler = observed_batch_handler(
        namespace="Orders", metrics_sink=broken_sink, tracer=Tracer(enabled=False)
    )(failing_on(2))
    assert handler(batch, LambdaContext()) == expected
    assert handler.last_result is not None and handler.last_result.failed == 1
    warnings = [
        line
        for line in json_lines(capsys.readouterr().out)
        if "observability failed while emitting metrics" in line["message"]
    ]
    assert len(warnings) == 1 and warnings[0]["exception_name"] == "OSError"


@pytest.mark.parametrize("fail_on_begin", [True, False])
def test_a_failing_tracer_does_not_change_the_response_or_fail_records(
    fail_on_begin: bool,
) -> None:
    batch = event(*(record(i) for i in range(4)))
    expected = process_batch(batch, failing_on(3))
    sink = Sink()
    tracer = Tracer(enabled=True, recorder=ExplodingRecorder(fail_on_begin))
    handler = observed(failing_on(3), sink, tracer=tracer)
    assert handler(batch, LambdaContext()) == expected
    assert sink.metrics()["RecordsProcessed"] == [3]


def test_a_failing_logger_does_not_change_the_response() -> None:
    class BrokenLogger:
        def error(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("log broken")

        def log(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("log broken")

    batch = event(*(record(i) for i in range(3)))
    handler = observed(failing_on(1), Sink(), logger=BrokenLogger())
    assert handler(batch, LambdaContext()) == process_batch(batch, failing_on(1))


def test_an_invalid_event_still_raises_and_still_flushes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sink = Sink()
    handler = observed(lambda r: None, sink)
    with pytest.raises(InvalidEventError):
        handler({"not": "a stream event"}, LambdaContext())
    assert sink.metrics() == {"ColdStart": [1]}
    assert any(
        line["message"].startswith("batch failed: InvalidEventError")
        for line in json_lines(capsys.readouterr().out)
    )


# --- logs ------------------------------------------------------------------------------------


def test_record_logs_carry_correlation_fields_and_never_images(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from streamkit.observability import get_logger

    log = get_logger("test.obs.handler.app", service="audit")

    def handle(r: StreamRecord) -> None:
        log.info("handling", record=r, raw=r.raw)
        if index_of(r) == 1:
            raise ValueError("cannot ship")

    handler = observed(handle, Sink())
    handler(event(record(0), record(1)), LambdaContext())
    log.info("after the batch")
    out = capsys.readouterr().out
    assert SECRET not in out
    lines = json_lines(out)
    handling = [line for line in lines if line["message"] == "handling"]
    assert [line["sequence_number"] for line in handling] == [seq(0), seq(1)]
    for line in handling:
        assert line["table_name"] == "orders"
        assert line["event_name"] == "MODIFY"
        assert line["function_request_id"] == "req-1"
        assert line["cold_start"] is True
    assert handling[0]["event_id"] == "ev-0" and handling[0]["item_key"] == {"pk": "item-0"}
    [failure] = [line for line in lines if line["message"].startswith("record handler failed")]
    assert failure["level"] == "ERROR"
    assert failure["sequence_number"] == seq(1) and failure["exception_name"] == "ValueError"
    assert "new_image" not in failure
    [after] = [line for line in lines if line["message"] == "after the batch"]
    assert "sequence_number" not in after and "function_request_id" not in after


def test_failure_logs_include_images_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    handler = observed(failing_on(0), Sink(), log_images=True)
    handler(event(record(0)), LambdaContext())
    [failure] = [
        line
        for line in json_lines(capsys.readouterr().out)
        if line["message"].startswith("record handler failed")
    ]
    assert failure["new_image"]["secret"] == SECRET


def test_failure_logs_include_images_when_the_environment_asks(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("STREAMKIT_LOG_IMAGES", "true")
    handler = observed(failing_on(0), Sink())
    handler(event(record(0)), LambdaContext())
    assert SECRET in capsys.readouterr().out


def test_the_summary_line_counts_the_batch(capsys: pytest.CaptureFixture[str]) -> None:
    observed(failing_on(1), Sink())(event(*(record(i) for i in range(3))), LambdaContext())
    [summary] = [
        line for line in json_lines(capsys.readouterr().out) if line["message"] == "batch processed"
    ]
    assert summary["level"] == "WARNING"  # something is reported
    assert (summary["batch_size"], summary["records_processed"], summary["reported"]) == (3, 1, 2)
    assert summary["iterator_age_ms"] == 58_000.0
    assert summary["service"] == "audit"


@pytest.mark.parametrize("is_async", [False, True])
def test_a_failure_is_logged_with_its_traceback_once(
    is_async: bool, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """The structured ERROR line carries the traceback; streamkit.batch only notes it at DEBUG
    (without the observed wrapper it logs a WARNING with the traceback, as before)."""
    sync_handle = failing_on(1)

    async def async_handle(r: StreamRecord) -> None:
        sync_handle(r)

    handle: Callable[[StreamRecord], Any] = async_handle if is_async else sync_handle
    with caplog.at_level(logging.DEBUG, logger="streamkit.batch"):
        response = observed(handle, Sink())(event(record(0), record(1)), LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": seq(1)}]}
    batch_lines = [r for r in caplog.records if r.name == "streamkit.batch"]
    assert batch_lines and all(r.levelno == logging.DEBUG for r in batch_lines)
    assert not [r for r in batch_lines if r.exc_info]
    failures = [
        line
        for line in json_lines(capsys.readouterr().out)
        if line["message"].startswith("record handler failed")
    ]
    assert len(failures) == 1 and "Traceback" in failures[0]["exception"]

    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger="streamkit.batch"):
        process_batch(event(record(0), record(1)), sync_handle)
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING and r.exc_info]
    assert "failed: ValueError: boom 1" in warning.getMessage()


def test_a_store_failure_the_handler_never_saw_is_still_logged_by_the_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class BrokenStore(MemoryIdempotencyStore):
        def open_batch(self, *args: Any, **kwargs: Any) -> Any:
            session = super().open_batch(*args, **kwargs)

            def is_completed(record: StreamRecord) -> bool:
                raise ConnectionError("store unreachable")

            session.is_completed = is_completed
            return session

    with caplog.at_level(logging.DEBUG, logger="streamkit.batch"):
        response = observed(failing_on(), Sink(), idempotency=BrokenStore())(
            event(record(0)), LambdaContext()
        )
    assert response == {"batchItemFailures": [{"itemIdentifier": seq(0)}]}
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING and r.exc_info]
    assert "ConnectionError: store unreachable" in warning.getMessage()


# --- the record handler is called as batch_handler would ------------------------------------


def test_a_handler_taking_the_context_gets_it() -> None:
    seen: list[Any] = []
    context = LambdaContext()

    def handle(r: StreamRecord, ctx: Any) -> None:
        seen.append(ctx)

    observed(handle, Sink())(event(record(0), record(1)), context)
    assert seen == [context, context]


def test_an_async_handler_is_observed(capsys: pytest.CaptureFixture[str]) -> None:
    from streamkit.observability import get_logger

    log = get_logger("test.obs.handler.async", service="audit")

    async def handle(r: StreamRecord) -> None:
        await asyncio.sleep(0)
        log.info("async handling")
        if index_of(r) == 1:
            raise ValueError("async boom")

    sink = Sink()
    handler = observed(handle, sink)
    response = handler(event(*(record(i) for i in range(3))), LambdaContext())
    assert response == {"batchItemFailures": [{"itemIdentifier": seq(i)} for i in (1, 2)]}
    assert len(sink.metrics()["HandlerDuration"]) == 2
    lines = [
        line for line in json_lines(capsys.readouterr().out) if line["message"] == "async handling"
    ]
    assert [line["sequence_number"] for line in lines] == [seq(0), seq(1)]


def test_the_idempotency_namespace_is_batch_handlers() -> None:
    namespaces: list[str] = []

    class Provider:
        def open_batch(
            self, records: Sequence[StreamRecord], *, namespace: str, context: Any
        ) -> Any:
            namespaces.append(namespace)
            return MemoryIdempotencyStore().open_batch(
                records, namespace=namespace, context=context
            )

    def handle(r: StreamRecord) -> None:
        pass

    batch = event(record(0))
    batch_handler(idempotency=Provider())(handle)(batch, LambdaContext())
    observed(handle, Sink(), idempotency=Provider())(batch, LambdaContext())
    assert namespaces[0] == namespaces[1] == f"{__name__}.{handle.__qualname__}"


def test_the_wrapper_keeps_the_record_handler_and_its_name() -> None:
    def audit_orders(r: StreamRecord) -> None:
        pass

    handler = observed_batch_handler(audit_orders)
    assert handler.record_handler is audit_orders
    assert handler.__name__ == "audit_orders"  # type: ignore[attr-defined]
    assert handler.service == "audit_orders"  # the default Service dimension


def test_an_unknown_ordering_is_rejected_at_decoration() -> None:
    with pytest.raises(ValueError, match="ordering"):
        observed_batch_handler(ordering="random")(lambda r: None)  # type: ignore[call-overload]


# --- tracer switches -------------------------------------------------------------------------


def test_the_tracer_is_off_when_the_sdk_is_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_XRAY_SDK_ENABLED", "false")
    tracer = Tracer()
    assert tracer.enabled is False
    assert tracer.begin("## x").recording is False


def test_the_tracer_is_off_when_the_sdk_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_XRAY_SDK_ENABLED", "true")
    for name in [m for m in sys.modules if m == "aws_xray_sdk" or m.startswith("aws_xray_sdk.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "aws_xray_sdk", None)  # import now raises ImportError
    tracer = Tracer(enabled=True)
    assert tracer.enabled is False
    sink = Sink()
    handler = observed(failing_on(0), sink, tracer=tracer)
    assert handler(event(record(0)), LambdaContext()) == {
        "batchItemFailures": [{"itemIdentifier": seq(0)}]
    }


def test_importing_observability_does_not_import_the_sdk_or_boto3() -> None:
    import subprocess

    code = (
        "import sys, streamkit.observability; "
        "print(sorted(m for m in sys.modules if m.startswith(('aws_xray_sdk', 'boto3'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]"


def test_internal_warnings_use_the_streamkit_observability_logger() -> None:
    assert logging.getLogger("streamkit.observability").name == "streamkit.observability"


@pytest.mark.parametrize(
    "options",
    [{"namespace": ""}, {"dimensions": {"Env": ""}}, {"service": "x" * 1025}],
)
def test_invalid_metric_settings_are_rejected_at_decoration(options: dict[str, Any]) -> None:
    from streamkit.exceptions import InvalidMetricError

    with pytest.raises(InvalidMetricError):
        observed_batch_handler(**options)(lambda r: None)
