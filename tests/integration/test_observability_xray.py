"""X-Ray tracing with the real aws-xray-sdk, sending real UDP datagrams to a socket on the
loopback interface that stands in for the X-Ray daemon (AWS_XRAY_DAEMON_ADDRESS).

Two setups, as in production:
- inside Lambda (LAMBDA_TASK_ROOT and _X_AMZN_TRACE_ID set): the SDK hangs subsegments on
  the function's facade segment and streams each one as it closes;
- outside Lambda: the caller begins a segment, and the SDK sends it whole when it ends.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from streamkit.observability import Tracer, observed_batch_handler
from streamkit.records import StreamRecord
from tests.helpers.stream_data import numbered_record
from tests.helpers.stream_data import sequence_number as seq

pytest.importorskip("aws_xray_sdk")

TRACE_ROOT = "1-5759e988-bd862e3fe1be46a994272793"
FACADE_PARENT = "53995c3f42cd8ad8"
ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024"


def record(i: int) -> dict[str, Any]:
    # Created a second ago: the handler's age metric sees a fresh record.
    return numbered_record(
        i, event_name="INSERT" if i == 0 else "MODIFY", created=time.time() - 1, arn=ARN
    )


def handle(r: StreamRecord) -> None:
    if r.new_image["i"] == 1:  # type: ignore[index]
        raise ValueError("record 1 is poisoned")


class Daemon:
    """A UDP socket on 127.0.0.1 that collects X-Ray entities (header line, then JSON)."""

    def __init__(self) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.socket.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.socket.getsockname()[1]}"
        self.entities: list[dict[str, Any]] = []

    def receive_until(self, done: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while not done(self.entities) and time.monotonic() < deadline:
            self.socket.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.socket.recv(65536)
            except TimeoutError:
                break
            header, _, body = data.decode("utf-8").partition("\n")
            assert json.loads(header) == {"format": "json", "version": 1}
            self.entities.append(json.loads(body))
        return self.entities


@pytest.fixture
def daemon(monkeypatch: pytest.MonkeyPatch) -> Iterator[Daemon]:
    from aws_xray_sdk import global_sdk_config

    listener = Daemon()
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", listener.address)
    monkeypatch.setenv("AWS_XRAY_SDK_ENABLED", "true")  # tests/conftest.py turns it off
    monkeypatch.setenv("AWS_XRAY_CONTEXT_MISSING", "LOG_ERROR")
    global_sdk_config.set_sdk_enabled(True)
    try:
        yield listener
    finally:
        listener.socket.close()
        monkeypatch.undo()
        global_sdk_config.set_sdk_enabled(False)  # re-reads AWS_XRAY_SDK_ENABLED=false


_recorders: list[Any] = []


def new_recorder() -> Any:
    """An X-Ray SDK recorder, built now (it reads the environment when built).

    Each owns a UDP emitter socket that the SDK never closes; ``_close_emitters`` does.
    """
    from aws_xray_sdk.core.recorder import AWSXRayRecorder

    recorder = AWSXRayRecorder()
    _recorders.append(recorder)
    return recorder


@pytest.fixture(autouse=True)
def _close_emitters() -> Iterator[None]:
    yield
    while _recorders:
        _recorders.pop().emitter._socket.close()


def flatten(entity: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield entity
    for child in entity.get("subsegments", []):
        yield from flatten(child)


def check_batch_and_records(batch: dict[str, Any], records: list[dict[str, Any]]) -> None:
    assert batch["annotations"] == {
        "service": "audit",
        "table": "orders",
        "records_failed": 1,
        "records_processed": 1,
    }
    errors = batch["metadata"]["streamkit"]["errors"]
    assert errors == [
        {"sequence_number": seq(1), "type": "ValueError", "message": "record 1 is poisoned"}
    ]
    # fail_fast: records 0 and 1 ran (record 2 was skipped, so it has no subsegment).
    assert [r["annotations"]["sequence_number"] for r in records] == [seq(0), seq(1)]
    assert [r["annotations"]["event_name"] for r in records] == ["INSERT", "MODIFY"]
    assert all(r["annotations"]["table"] == "orders" for r in records)
    ok, failed = records
    assert not ok.get("fault") and "cause" not in ok
    assert failed["fault"] is True
    assert failed["cause"]["exceptions"][0]["type"] == "ValueError"
    assert failed["cause"]["exceptions"][0]["message"] == "record 1 is poisoned"
    assert failed["metadata"]["streamkit"]["error"] == {
        "type": "ValueError",
        "message": "record 1 is poisoned",
    }
    for entity in [batch, *records]:
        assert entity["end_time"] >= entity["start_time"]


def test_lambda_subsegments_stream_to_the_daemon_over_udp(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))  # the SDK's "am I in Lambda" test
    monkeypatch.setenv("_X_AMZN_TRACE_ID", f"Root={TRACE_ROOT};Parent={FACADE_PARENT};Sampled=1")
    recorder = new_recorder()  # built now, it sees Lambda and the daemon address
    assert type(recorder.context).__name__ == "LambdaContext"

    handler = observed_batch_handler(
        namespace="Orders", service="audit", tracer=Tracer(recorder=recorder), metrics_sink=print
    )(handle)
    response = handler({"Records": [record(0), record(1), record(2)]}, None)
    assert response == {"batchItemFailures": [{"itemIdentifier": seq(i)} for i in (1, 2)]}

    entities = daemon.receive_until(
        lambda got: any(e.get("name") == "## streamkit.batch" for e in got)
    )
    # Streamed one by one, records first (each is sent when it closes).
    assert [e["name"] for e in entities] == [
        "## streamkit.record",
        "## streamkit.record",
        "## streamkit.batch",
    ]
    for entity in entities:
        assert entity["type"] == "subsegment"
        assert entity["trace_id"] == TRACE_ROOT
    *records, batch = entities
    assert batch["parent_id"] == FACADE_PARENT  # hangs on the function's segment
    assert all(r["parent_id"] == batch["id"] for r in records)
    check_batch_and_records(batch, records)


def test_a_segment_begun_outside_lambda_carries_the_subsegments(daemon: Daemon) -> None:
    recorder = new_recorder()
    assert type(recorder.context).__name__ == "Context"
    handler = observed_batch_handler(
        namespace="Orders", service="audit", tracer=Tracer(recorder=recorder), metrics_sink=print
    )(handle)

    recorder.begin_segment("orders-consumer-test", sampling=1)
    response = handler({"Records": [record(0), record(1), record(2)]}, None)
    recorder.end_segment()
    assert response == {"batchItemFailures": [{"itemIdentifier": seq(i)} for i in (1, 2)]}

    [segment] = daemon.receive_until(lambda got: len(got) >= 1)
    assert segment["name"] == "orders-consumer-test"
    [batch] = segment["subsegments"]
    assert batch["name"] == "## streamkit.batch"
    records = batch["subsegments"]
    assert [r["name"] for r in records] == ["## streamkit.record"] * 2
    assert {e["trace_id"] for e in flatten(segment) if "trace_id" in e} <= {segment["trace_id"]}
    check_batch_and_records(batch, records)


def test_without_a_segment_the_batch_is_processed_untraced(daemon: Daemon) -> None:
    recorder = new_recorder()
    handler = observed_batch_handler(
        namespace="Orders", service="audit", tracer=Tracer(recorder=recorder), metrics_sink=print
    )(handle)
    response = handler({"Records": [record(0), record(1)]}, None)
    assert response == {"batchItemFailures": [{"itemIdentifier": seq(1)}]}
    assert daemon.receive_until(lambda got: False, timeout=0.3) == []


def test_a_lambda_runtime_without_a_trace_header_is_untraced_and_quiet(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """As under a local runner that sets LAMBDA_TASK_ROOT but no _X_AMZN_TRACE_ID."""
    monkeypatch.setenv("LAMBDA_TASK_ROOT", str(tmp_path))
    monkeypatch.delenv("_X_AMZN_TRACE_ID", raising=False)
    recorder = new_recorder()
    handler = observed_batch_handler(
        namespace="Orders", service="audit", tracer=Tracer(recorder=recorder), metrics_sink=print
    )(handle)
    with caplog.at_level("WARNING", logger="aws_xray_sdk"):
        response = handler({"Records": [record(0), record(1)]}, None)
    assert response == {"batchItemFailures": [{"itemIdentifier": seq(1)}]}
    assert not [r for r in caplog.records if r.name.startswith("aws_xray_sdk")]
    assert daemon.receive_until(lambda got: False, timeout=0.3) == []
