"""Tumbling windows on the stream double, with a scripted function: window alignment, the
event shape, state carried between invokes, the final invoke and what blocks the shard, early
termination beyond 1 MB, and when the window's records are checkpointed."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.esm_doubles import (
    NO_DELAY,
    Outcome,
    RecordingDestination,
    ScriptedInvoker,
    Stats,
    error,
)
from tests.helpers.fake_streams import FakeStreamsClient

from streamkit.local.esm.checkpoints import CheckpointStore
from streamkit.local.esm.config import MappingConfig
from streamkit.local.esm.destinations import DeliveryPolicy
from streamkit.local.esm.pipeline import Pacing, wire_mapping
from streamkit.local.esm.windows import MAX_STATE_BYTES, Window, WindowedShard
from streamkit.streams.reader import ShardReader, StartPosition
from streamkit.streams.throttling import IdleBackoff

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:aggregator"
# Windows of 60 s starting at an aligned epoch second, with a clock the test moves.
BASE = 1_700_000_040  # divisible by 60


def at(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(BASE + seconds, dt.UTC)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def counting(records: list[dict[str, Any]], n: int, event: dict[str, Any]) -> Outcome:
    state = dict(event["state"])
    state["count"] = state.get("count", 0) + len(records)
    return Outcome(payload={"state": state})


class WindowedInvoker(ScriptedInvoker):
    """Remembers whole events; answers with ``respond(records, call_number, event)``."""

    def __init__(self, respond: Callable[[list[dict[str, Any]], int, dict[str, Any]], Outcome]):
        super().__init__(lambda r, n: Outcome())
        self.respond_event = respond
        self.full_events: list[dict[str, Any]] = []

    def invoke(self, payload: Any) -> Outcome:
        event = {**payload, "state": dict(payload["state"])}
        self.full_events.append(event)
        self.events.append(list(payload["Records"]))
        return self.respond_event(list(payload["Records"]), len(self.full_events), event)


@dataclass
class Run:
    stats: Stats
    store: CheckpointStore

    def wait_for(self, condition: Callable[[], bool], what: str = "") -> None:
        deadline = time.monotonic() + 5
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what or condition}")
            time.sleep(0.005)


@contextmanager
def windowed(
    tmp_path: Path,
    streams: FakeStreamsClient,
    arn: str,
    invoker: ScriptedInvoker,
    clock: Clock,
    *,
    destination: RecordingDestination | None = None,
    **config: Any,
) -> Iterator[Run]:
    """A WindowedShard running on its own thread until the block ends."""
    config.setdefault("batch_size", 10)
    mapping = MappingConfig(
        uuid="w-1",
        function_arn=FUNCTION_ARN,
        event_source_arn=arn,
        starting_position="TRIM_HORIZON",
        tumbling_window_s=60,
        **config,
    )
    store = CheckpointStore(tmp_path)
    shard_id = streams.shard_ids(arn)[0]
    stop = threading.Event()
    stats = Stats()
    parts = wire_mapping(
        mapping,
        invoker=invoker,
        stats=stats,
        destination=destination,
        pacing=Pacing(
            retry_delay=NO_DELAY,
            delivery=DeliveryPolicy(initial_delay=0.0, max_delay=0.0),
            idle_backoff=lambda: IdleBackoff(min_delay=0.001, max_delay=0.002),
            clock=clock,
        ),
    ).shard(
        shard_id,
        stop,
        lambda seq: store.save("w-1", arn, shard_id, stream_label="L", sequence_number=seq),
    )
    start = StartPosition("TRIM_HORIZON")
    checkpoint = store.load("w-1", arn, shard_id)
    if checkpoint is not None:
        start = StartPosition.after(checkpoint.sequence_number)
    reader = ShardReader(streams, arn, shard_id, start)
    thread = threading.Thread(target=WindowedShard(parts, reader).run, daemon=True)
    thread.start()
    try:
        yield Run(stats, store)
    finally:
        stop.set()
        thread.join(5)
        store.close()


def test_windows_align_to_the_epoch() -> None:
    assert Window.containing(BASE + 59.9, 60) == Window(BASE, BASE + 60)
    assert Window.containing(BASE + 60, 60) == Window(BASE + 60, BASE + 120)
    assert Window.containing(1_700_000_001, 7).start % 7 == 0
    assert Window(BASE, BASE + 60).as_event() == {
        "start": "2023-11-14T22:14:00Z",
        "end": "2023-11-14T22:15:00Z",
    }


def test_state_is_carried_then_a_final_invoke_closes_the_window(
    tmp_path: Path, streams: FakeStreamsClient
) -> None:
    arn = streams.create_stream()
    shard = streams.shard_ids(arn)[0]
    clock = Clock(BASE + 30)
    for i in range(3):
        streams.put(arn, f"k{i}", new_image={}, created=at(i))
    invoker = WindowedInvoker(counting)
    with windowed(tmp_path, streams, arn, invoker, clock, batch_size=2) as run:
        run.wait_for(lambda: len(invoker.full_events) == 2, "two aggregation invokes")
        polls = streams.calls["get_records"]
        run.wait_for(lambda: streams.calls["get_records"] >= polls + 3, "three more polls")
        assert len(invoker.full_events) == 2  # the window is open: no final invoke yet
        assert run.store.all() == []  # and nothing checkpointed
        clock.now = BASE + 60  # the window's end passes
        run.wait_for(lambda: run.store.all() != [], "the checkpoint after the final invoke")
    first, second, final = invoker.full_events
    assert list(first) == [
        "Records", "window", "state", "shardId", "eventSourceARN",
        "isFinalInvokeForWindow", "isWindowTerminatedEarly",
    ]  # fmt: skip
    assert first["window"] == {"start": "2023-11-14T22:14:00Z", "end": "2023-11-14T22:15:00Z"}
    assert (first["state"], second["state"]) == ({}, {"count": 2})
    assert (first["shardId"], first["eventSourceARN"]) == (shard, arn)
    assert [len(e["Records"]) for e in (first, second)] == [2, 1]
    assert not first["isFinalInvokeForWindow"] and not first["isWindowTerminatedEarly"]
    assert final == {
        "Records": [],
        "window": first["window"],
        "state": {"count": 3},
        "shardId": shard,
        "eventSourceARN": arn,
        "isFinalInvokeForWindow": True,
        "isWindowTerminatedEarly": False,
    }
    assert run.stats.counts["windows_closed"] == 1


def test_a_restart_mid_window_rebuilds_the_state_from_the_unmoved_checkpoint(
    tmp_path: Path, streams: FakeStreamsClient
) -> None:
    arn = streams.create_stream()
    clock = Clock(BASE + 30)
    for i in range(3):
        streams.put(arn, f"k{i}", new_image={}, created=at(i))
    first_run = WindowedInvoker(counting)
    with windowed(tmp_path, streams, arn, first_run, clock, batch_size=2) as run:
        run.wait_for(lambda: len(first_run.full_events) == 2)
    restarted = WindowedInvoker(counting)
    clock.now = BASE + 61
    with windowed(tmp_path, streams, arn, restarted, clock, batch_size=2) as run:
        run.wait_for(lambda: run.store.all() != [])
        (checkpoint,) = run.store.all()
    *aggregations, final = restarted.full_events
    assert [len(e["Records"]) for e in aggregations] == [2, 1]  # read again from the start
    assert final["state"] == {"count": 3}  # not 6: the state was rebuilt, not doubled
    last = aggregations[-1]["Records"][-1]["dynamodb"]["SequenceNumber"]
    assert checkpoint.sequence_number == last


def test_a_record_of_the_next_window_closes_the_current_one_first(
    tmp_path: Path, streams: FakeStreamsClient
) -> None:
    arn = streams.create_stream()
    streams.put(arn, "a", new_image={}, created=at(10))
    streams.put(arn, "b", new_image={}, created=at(50))
    streams.put(arn, "c", new_image={}, created=at(70))  # next window
    invoker = WindowedInvoker(counting)
    with windowed(tmp_path, streams, arn, invoker, Clock(BASE + 75)) as run:
        run.wait_for(lambda: len(invoker.full_events) >= 3)
    kinds = [
        ([r["dynamodb"]["Keys"]["pk"]["S"] for r in e["Records"]], e["isFinalInvokeForWindow"])
        for e in invoker.full_events[:3]
    ]
    assert kinds == [(["a", "b"], False), ([], True), (["c"], False)]  # a batch never spans
    assert invoker.full_events[2]["state"] == {}
    assert invoker.full_events[2]["window"]["start"] == "2023-11-14T22:15:00Z"


def test_a_response_without_state_is_a_failed_invoke(
    tmp_path: Path, streams: FakeStreamsClient
) -> None:
    arn = streams.create_stream()
    streams.put(arn, "a", new_image={}, created=at(1))
    invoker = WindowedInvoker(
        lambda r, n, e: Outcome(payload=None) if n == 1 else counting(r, n, e)
    )
    with windowed(tmp_path, streams, arn, invoker, Clock(BASE + 5)) as run:
        run.wait_for(lambda: len(invoker.full_events) >= 2)
    assert [len(e["Records"]) for e in invoker.full_events[:2]] == [1, 1]  # retried
    assert run.stats.counts["failed"] == 1
    assert "must contain a state object" in str(run.stats.errors)


def test_a_failed_final_invoke_blocks_the_shard_until_it_succeeds(
    tmp_path: Path, streams: FakeStreamsClient
) -> None:
    arn = streams.create_stream()
    streams.put(arn, "a", new_image={}, created=at(1))
    streams.put(arn, "b", new_image={}, created=at(61))

    def respond(records: list[dict[str, Any]], n: int, event: dict[str, Any]) -> Outcome:
        if event["isFinalInvokeForWindow"] and n <= 3:
            return error("final failed")  # invokes 2 and 3: the first final invoke, twice
        return counting(records, n, event)

    invoker = WindowedInvoker(respond)
    with windowed(tmp_path, streams, arn, invoker, Clock(BASE + 65)) as run:
        run.wait_for(lambda: len(invoker.full_events) >= 5)
    summary = [(len(e["Records"]), e["isFinalInvokeForWindow"]) for e in invoker.full_events[:5]]
    assert summary == [(1, False), (0, True), (0, True), (0, True), (1, False)]
    assert run.stats.counts["failed"] == 2


def test_a_final_invoke_out_of_retries_goes_to_the_destination_and_the_shard_moves_on(
    tmp_path: Path, streams: FakeStreamsClient
) -> None:
    arn = streams.create_stream()
    for i in range(3):
        streams.put(arn, f"a{i}", new_image={}, created=at(1 + i))
    streams.put(arn, "b", new_image={}, created=at(61))
    invoker = WindowedInvoker(
        lambda r, n, e: error() if e["isFinalInvokeForWindow"] else counting(r, n, e)
    )
    destination = RecordingDestination()
    with windowed(
        tmp_path, streams, arn, invoker, Clock(BASE + 65), destination=destination,
        max_retry_attempts=1,
    ) as run:  # fmt: skip
        run.wait_for(lambda: len(invoker.full_events) >= 4)
    summary = [(len(e["Records"]), e["isFinalInvokeForWindow"]) for e in invoker.full_events[:4]]
    assert summary == [(3, False), (0, True), (0, True), (1, False)]
    ((record, context),) = destination.sent
    first_window = invoker.full_events[0]["Records"]
    assert record["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    info = record["DDBStreamBatchInfo"]
    assert info["batchSize"] == 3
    assert info["startSequenceNumber"] == first_window[0]["dynamodb"]["SequenceNumber"]
    assert info["endSequenceNumber"] == first_window[-1]["dynamodb"]["SequenceNumber"]
    assert context.payload_records == []


def test_state_over_1_mb_terminates_the_window_early(
    tmp_path: Path, streams: FakeStreamsClient
) -> None:
    arn = streams.create_stream()
    streams.put(arn, "big", new_image={}, created=at(1))
    streams.put(arn, "after", new_image={}, created=at(2))
    big_state = {"blob": "x" * MAX_STATE_BYTES}

    def respond(records: list[dict[str, Any]], n: int, event: dict[str, Any]) -> Outcome:
        if n == 1:
            return Outcome(payload={"state": big_state})
        return counting(records, n, event)

    invoker = WindowedInvoker(respond)
    with windowed(tmp_path, streams, arn, invoker, Clock(BASE + 5), batch_size=1) as run:
        run.wait_for(lambda: len(invoker.full_events) >= 3)
    first, early, after = invoker.full_events[:3]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in first["Records"]] == ["big"]
    assert early["Records"] == [] and early["state"] == big_state
    assert (early["isFinalInvokeForWindow"], early["isWindowTerminatedEarly"]) == (True, True)
    # The same window goes on, with a fresh state.
    assert after["window"] == first["window"] and after["state"] == {}
    assert not after["isWindowTerminatedEarly"]


def test_partial_failures_keep_the_returned_state_and_retry_the_rest(
    tmp_path: Path, streams: FakeStreamsClient
) -> None:
    arn = streams.create_stream()
    for i in range(3):
        streams.put(arn, f"k{i}", new_image={}, created=at(i))

    def respond(records: list[dict[str, Any]], n: int, event: dict[str, Any]) -> Outcome:
        if n == 1:  # k0 done, k1 failed: state counts k0 only
            failed = records[1]["dynamodb"]["SequenceNumber"]
            return Outcome(
                payload={"state": {"count": 1}, "batchItemFailures": [{"itemIdentifier": failed}]}
            )
        return counting(records, n, event)

    invoker = WindowedInvoker(respond)
    with windowed(
        tmp_path, streams, arn, invoker, Clock(BASE + 10), report_batch_item_failures=True
    ) as run:
        run.wait_for(lambda: len(invoker.full_events) >= 2)
    first, retry = invoker.full_events[:2]
    assert len(first["Records"]) == 3
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in retry["Records"]] == ["k1", "k2"]
    assert retry["state"] == {"count": 1}
