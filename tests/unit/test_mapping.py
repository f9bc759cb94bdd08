"""A whole mapping (and the runner) on the stream double: shard lineage, throttling, expired
iterators, invalid mappings, and a stream that vanishes and comes back."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers.esm_doubles import (
    FUNCTION_ARN,
    Outcome,
    ScriptedInvoker,
)
from tests.helpers.fake_streams import FakeStreamsClient

from streamkit.local.esm.checkpoints import CheckpointStore
from streamkit.local.esm.config import MappingConfig
from streamkit.local.esm.mapping import (
    InvokerFactory,
    MappingWorker,
    StreamAccess,
    WorkerSettings,
)
from streamkit.local.esm.pipeline import Pacing
from streamkit.local.esm.runner import Runner
from streamkit.local.esm.stats import MappingStats
from streamkit.streams.reader import describe_stream
from streamkit.streams.throttling import IdleBackoff


def _settings(
    streams: FakeStreamsClient,
    checkpoints: CheckpointStore,
    invoker_factory: InvokerFactory,
    *,
    refresh_interval: float,
) -> WorkerSettings:
    """A runner's shared settings over the stream double, paced for a test."""
    return WorkerSettings(
        streams=StreamAccess(streams),
        checkpoints=checkpoints,
        invoker_factory=invoker_factory,
        client_for=lambda service: None,
        pacing=Pacing(idle_backoff=lambda: IdleBackoff(min_delay=0.001, max_delay=0.01)),
        refresh_interval=refresh_interval,
    )


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met within the timeout"
        time.sleep(0.01)


def _loads(invoker: ScriptedInvoker) -> InvokerFactory:
    """An invoker factory that always hands out ``invoker``."""
    return lambda function_arn, *, max_concurrency: invoker


def test_a_mapping_reads_a_parent_shard_to_its_end_before_its_children(
    tmp_path: Path, streams: FakeStreamsClient
) -> None:
    arn = streams.create_stream()
    parent = streams.shard_ids(arn)[0]
    for i in range(3):
        streams.put(arn, f"p{i}", new_image={})
    left, right = streams.split(arn, parent)
    streams.put(arn, "left", new_image={}, shard_id=left)
    streams.put(arn, "right", new_image={}, shard_id=right)
    invoker = ScriptedInvoker(lambda records, n: Outcome())
    checkpoints = CheckpointStore(tmp_path)
    settings = _settings(
        streams,
        checkpoints,
        _loads(invoker),
        refresh_interval=0.05,
    )
    config = MappingConfig(
        uuid="m-1",
        function_arn=FUNCTION_ARN,
        event_source_arn=arn,
        batch_size=10,
        starting_position="TRIM_HORIZON",
    )
    stats = MappingStats("m-1")
    worker = MappingWorker(config, settings, stats)
    worker.start()
    try:
        _wait(lambda: stats.snapshot()["succeeded"] >= 5)
    finally:
        worker.stop()
    keys = [[r["dynamodb"]["Keys"]["pk"]["S"] for r in event] for event in invoker.events]
    assert keys[0] == ["p0", "p1", "p2"]
    assert sorted(keys[1:]) == [["left"], ["right"]]
    assert checkpoints.is_shard_finished(
        "m-1", arn, parent, stream_label=describe_stream(streams, arn).stream_label
    )
    assert {c.shard_id for c in checkpoints.all()} == {parent, left, right}
    assert stats.snapshot()["state"] == "polling"


def test_a_mapping_survives_throttling_and_an_expired_iterator(
    tmp_path: Path, streams: FakeStreamsClient
) -> None:
    arn = streams.create_stream()
    invoker = ScriptedInvoker(lambda records, n: Outcome())
    settings = _settings(
        streams,
        CheckpointStore(tmp_path),
        _loads(invoker),
        refresh_interval=0.05,
    )
    config = MappingConfig(
        uuid="m-2",
        function_arn=FUNCTION_ARN,
        event_source_arn=arn,
        batch_size=1,
        starting_position="TRIM_HORIZON",
    )
    stats = MappingStats("m-2")
    worker = MappingWorker(config, settings, stats)
    streams.put(arn, "a", new_image={})
    worker.start()
    try:
        _wait(lambda: stats.snapshot()["succeeded"] >= 1)
        streams.expire_iterators()
        streams.fail_next("get_records", "ThrottlingException", times=2)
        streams.put(arn, "b", new_image={})
        _wait(lambda: stats.snapshot()["succeeded"] >= 2)
    finally:
        worker.stop()
    assert [[r["dynamodb"]["Keys"]["pk"]["S"] for r in event] for event in invoker.events] == [
        ["a"],
        ["b"],
    ]
    assert "ThrottlingException" in (stats.snapshot()["last_error"] or "")


class FakeLambda:
    """ListEventSourceMappings in two pages, as an endpoint that does not validate might store them."""

    def __init__(self, mappings: list[dict[str, Any]]) -> None:
        self.mappings = mappings

    def list_event_source_mappings(self, Marker: str | None = None) -> dict[str, Any]:
        start = int(Marker or 0)
        page: dict[str, Any] = {"EventSourceMappings": self.mappings[start : start + 2]}
        if start + 2 < len(self.mappings):
            page["NextMarker"] = str(start + 2)
        return page

    def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
        return {"CodeSha256": "abc", "LastModified": "2024-01-01"}


def test_the_runner_reports_invalid_mappings_and_ignores_other_sources(
    tmp_path: Path, streams: FakeStreamsClient
) -> None:
    arn = streams.create_stream()
    base = {
        "FunctionArn": FUNCTION_ARN,
        "EventSourceArn": arn,
        "StartingPosition": "TRIM_HORIZON",
        "State": "Enabled",
    }
    lambda_client = FakeLambda(
        [
            {**base, "UUID": "too-big", "BatchSize": 20000},
            {**base, "UUID": "off", "State": "Disabled"},
            {**base, "UUID": "queue", "EventSourceArn": "arn:aws:sqs:us-east-1:123456789012:q"},
        ]
    )
    clients = {"lambda": lambda_client, "dynamodbstreams": streams}
    runner = Runner("http://unused", tmp_path, client_factory=clients.__getitem__)
    try:
        runner.reconcile()
        stats = runner.stats()
        assert set(stats) == {"too-big", "off"}
        assert stats["too-big"]["state"] == "invalid"
        assert stats["too-big"]["last_error"] == (
            "mapping not run: 1 validation error detected: Value '20000' at 'batchSize' failed to "
            "satisfy constraint: Member must have value less than or equal to 10000"
        )
        assert stats["off"]["state"] == "disabled"
        lambda_client.mappings = lambda_client.mappings[1:]
        runner.reconcile()
        assert runner.stats()["too-big"]["state"] == "deleted"
    finally:
        runner.stop()


class ClosableInvoker(ScriptedInvoker):
    def __init__(self) -> None:
        super().__init__(lambda records, n: Outcome())
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_vanished_stream_stops_shards_and_function_workers_until_it_is_back(
    tmp_path: Path, streams: FakeStreamsClient
) -> None:
    arn = streams.create_stream()
    invokers: list[ClosableInvoker] = []

    def load(function_arn: str, *, max_concurrency: int) -> ClosableInvoker:
        invokers.append(ClosableInvoker())
        return invokers[-1]

    settings = _settings(streams, CheckpointStore(tmp_path), load, refresh_interval=0.02)
    config = MappingConfig(
        uuid="m-3",
        function_arn=FUNCTION_ARN,
        event_source_arn=arn,
        starting_position="TRIM_HORIZON",
    )
    stats = MappingStats("m-3")
    worker = MappingWorker(config, settings, stats)
    streams.put(arn, "a", new_image={})
    worker.start()

    try:
        _wait(lambda: stats.snapshot()["succeeded"] == 1)
        streams.delete(arn)
        _wait(lambda: stats.snapshot()["shards_running"] == 0 and invokers[0].closed)
        snapshot = stats.snapshot()
        assert (snapshot["state"], snapshot["last_error"]) == ("error", f"Stream not found: {arn}")
        streams._streams[arn].deleted = False  # it was only briefly unreadable
        streams.put(arn, "b", new_image={})
        _wait(lambda: stats.snapshot()["succeeded"] == 2)
    finally:
        worker.stop()
    assert len(invokers) == 2  # the function was loaded again for the returned stream
    assert invokers[1].closed  # and shut down when the mapping stopped
    assert [[r["dynamodb"]["Keys"]["pk"]["S"] for r in e] for e in invokers[1].events] == [["b"]]
