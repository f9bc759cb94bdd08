"""Function output reaches CloudWatch Logs as Lambda ships it (``streamkit.local.invoker.log_shipper``).

Over real HTTP: a runner executes a mapping whose function prints a line and an EMF document;
both come back from FilterLogEvents on ``/aws/lambda/<function>``, in a stream named like
Lambda's, between Lambda's START/END/REPORT lines. A logs endpoint that is down or hangs
costs lines (counted), never an invoke.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from streamkit.local.esm.batcher import IdleBackoff
from streamkit.local.esm.runner import Runner
from streamkit.local.invoker import FunctionInvoker
from streamkit.local.invoker.functions import FunctionSpec, load_function_from_directory
from streamkit.local.invoker.log_shipper import LogShipper, logs_client
from tests.helpers import AwsClients, create_function
from tests.helpers.streams import create_stream_table

HANDLER = r"""
import json, time


def handler(event, context):
    for record in event["Records"]:
        print("handled", record["dynamodb"]["Keys"]["pk"]["S"])
    print(json.dumps({
        "_aws": {"Timestamp": int(time.time() * 1000), "CloudWatchMetrics": [{
            "Namespace": "LogShippingTest", "Dimensions": [["Target"]],
            "Metrics": [{"Name": "ChangeToHandlerLatency", "Unit": "Milliseconds"}]}]},
        "Target": "test", "ChangeToHandlerLatency": [1.5, 2.5],
    }))
"""

LAMBDA_STREAM_NAME = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")


def _events(aws: AwsClients, group: str) -> list[dict[str, Any]]:
    logs = aws.client("logs")
    try:
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group)
        return [event for page in pages for event in page["events"]]
    except logs.exceptions.ResourceNotFoundException:
        return []


def _wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s (last: {value!r})")
        time.sleep(0.2)


def test_function_output_lands_in_its_log_group(
    aws: AwsClients, endpoint_url: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    table = unique_name("logs")
    stream_arn = create_stream_table(aws.dynamodb, table)
    function = unique_name("logs-fn")
    create_function(aws.lambda_, function, {"app.py": HANDLER})
    uuid = aws.lambda_.create_event_source_mapping(
        FunctionName=function, EventSourceArn=stream_arn, StartingPosition="TRIM_HORIZON"
    )["UUID"]
    runner = Runner(
        endpoint_url,
        tmp_path,
        reconcile_interval=0.2,
        idle_backoff=lambda: IdleBackoff(min_delay=0.01, max_delay=0.05),
        mapping_filter=lambda m: m["UUID"] == uuid,
    )
    with runner:
        for key in ("a", "b"):
            aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": key}})
        runner.wait_until(lambda s: s[uuid]["succeeded"] >= 2, timeout=60)
        group = f"/aws/lambda/{function}"
        events = _wait_for(
            lambda: (
                [e for e in _events(aws, group) if e["message"].startswith("REPORT")]
                and _events(aws, group)
            ),
            timeout=20,
            what="the REPORT line in CloudWatch Logs",
        )
        assert runner.log_shipper is not None
        shipped = runner.log_shipper.stats()
    messages = [e["message"] for e in events]
    assert "handled a" in messages and "handled b" in messages
    emf = [json.loads(m) for m in messages if m.startswith("{")]
    assert emf and emf[0]["ChangeToHandlerLatency"] == [1.5, 2.5]
    # Lambda's own lines frame each invoke, under one request id.
    start = next(m for m in messages if m.startswith("START RequestId: "))
    request_id = start.split()[2]
    assert start == f"START RequestId: {request_id} Version: $LATEST"
    assert f"END RequestId: {request_id}" in messages
    assert any(m.startswith(f"REPORT RequestId: {request_id}\tDuration: ") for m in messages)
    assert messages.index(start) < messages.index(f"END RequestId: {request_id}")
    streams = aws.client("logs").describe_log_streams(logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in streams if LAMBDA_STREAM_NAME.match(s["logStreamName"])]
    assert shipped["dropped"] == shipped["failed"] == 0
    assert shipped["shipped"] >= len(messages)


@dataclass
class SilentEndpoint:
    url: str
    connections: list[socket.socket]  # accepted, never answered


@pytest.fixture
def silent_endpoint() -> Iterator[SilentEndpoint]:
    """An HTTP endpoint that accepts connections and never answers: a hung logs service."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield SilentEndpoint(f"http://127.0.0.1:{server.getsockname()[1]}", held)
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    server.close()


def test_a_hung_logs_endpoint_drops_lines_and_never_blocks(
    silent_endpoint: SilentEndpoint,
) -> None:
    shipper = LogShipper(
        lambda: logs_client(silent_endpoint.url, "us-east-1"), queue_size=20, linger_s=0.0
    )
    try:
        shipper.submit("/aws/lambda/f", "s", "first")
        # The shipping thread takes it and hangs in PutLogEvents (read timeout 10 s).
        _wait_for(lambda: shipper.stats()["queued"] == 0, timeout=5, what="first line taken")
        # Until the endpoint holds its connection, the thread could still take more lines.
        _wait_for(lambda: silent_endpoint.connections, timeout=5, what="PutLogEvents sent")
        slowest = 0.0
        for i in range(200):
            started = time.perf_counter()
            shipper.submit("/aws/lambda/f", "s", f"line {i}")
            slowest = max(slowest, time.perf_counter() - started)
        stats = shipper.stats()
        assert slowest < 0.05  # a full queue drops; it never waits for the endpoint
        assert stats["queued"] == 20
        assert stats["dropped"] == 180
        assert stats["shipped"] == 0
    finally:
        started = time.perf_counter()
        shipper.close(timeout_s=0.5)
        assert time.perf_counter() - started < 3


def test_an_invoke_succeeds_when_its_logs_cannot_be_shipped(tmp_path: Path) -> None:
    # Nothing listens on this port: every PutLogEvents fails to connect.
    with socket.create_server(("127.0.0.1", 0)) as probe:
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    (tmp_path / "app.py").write_text(
        "def handler(event, context):\n    print('hi')\n    return 7\n"
    )
    spec = FunctionSpec(name="logs-down", arn="", handler="app.handler", runtime="python3.12")
    shipper = LogShipper(lambda: logs_client(dead, "us-east-1"), linger_s=0.01)
    try:
        with FunctionInvoker(
            load_function_from_directory(spec, tmp_path),
            endpoint_url=None,
            region="us-east-1",
            log_shipper=shipper,
        ) as invoker:
            result = invoker.invoke({})
        assert result.ok and result.payload == 7
        assert result.log_tail == "hi"
        assert shipper.flush(timeout_s=30)
        stats = shipper.stats()
        assert stats["failed"] >= 4  # START, hi, END, REPORT
        assert stats["shipped"] == 0
    finally:
        shipper.close(timeout_s=1)
