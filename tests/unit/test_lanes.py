"""ParallelizationFactor lanes on the stream double: stable lane choice, per-item order, real
overlap between lanes, and a checkpoint that never passes a record an earlier lane still holds."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.esm_doubles import NO_DELAY, Outcome, RecordingDestination, Stats, error
from tests.helpers.fake_streams import FakeStreamsClient

from streamkit.local.esm.checkpoints import CheckpointStore
from streamkit.local.esm.config import MappingConfig
from streamkit.local.esm.destinations import DeliveryPolicy
from streamkit.local.esm.lanes import LaneScheduler, lane_of
from streamkit.local.esm.pipeline import Pacing, wire_mapping
from streamkit.streams.reader import ShardReader, StartPosition
from streamkit.streams.throttling import IdleBackoff

FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:consumer"


def record(keys: dict[str, Any]) -> dict[str, Any]:
    return {"dynamodb": {"Keys": keys, "SequenceNumber": "1"}}


def test_an_item_always_gets_the_same_lane_in_any_process() -> None:
    keys = {"pk": {"S": "ORDER#1"}, "sk": {"N": "5"}}
    lane = lane_of(record(keys), 7)
    assert lane == zlib.crc32(b'[["pk","S","ORDER#1"],["sk","N","5"]]') % 7
    # Attribute order and number spelling do not matter: it is the same item.
    assert lane_of(record({"sk": {"N": "5.0"}, "pk": {"S": "ORDER#1"}}), 7) == lane
    # Another interpreter (another hash seed) agrees.
    code = (
        "from streamkit.local.esm.lanes import lane_of;"
        "print(lane_of({'dynamodb': {'Keys': {'pk': {'S': 'ORDER#1'}, 'sk': {'N': '5'}},"
        " 'SequenceNumber': '1'}}, 7))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )
    assert int(other.stdout) == lane
    assert lane_of(record(keys), 1) == 0
    spread = {lane_of(record({"pk": {"S": f"k{i}"}}), 4) for i in range(40)}
    assert spread == {0, 1, 2, 3}


class ConcurrentInvoker:
    """Thread-safe: records every event, how many invokes overlapped, and answers with
    ``respond(records)`` after ``delay`` seconds."""

    def __init__(
        self,
        respond: Callable[[list[dict[str, Any]]], Outcome] = lambda records: Outcome(),
        delay: float = 0.02,
    ) -> None:
        self.respond = respond
        self.delay = delay
        self.events: list[list[dict[str, Any]]] = []
        self.active = self.max_active = 0
        self._lock = threading.Lock()

    def invoke(self, payload: Any) -> Outcome:
        records = list(payload["Records"])
        with self._lock:
            self.events.append(records)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(self.delay)
            return self.respond(records)
        finally:
            with self._lock:
                self.active -= 1

    def processed(self) -> list[tuple[str, int]]:
        """(key, version) of every record, in invoke order."""
        return [
            (r["dynamodb"]["Keys"]["pk"]["S"], int(r["dynamodb"]["NewImage"]["v"]["N"]))
            for event in self.events
            for r in event
        ]


@contextmanager
def lanes(
    tmp_path: Path,
    streams: FakeStreamsClient,
    arn: str,
    invoker: ConcurrentInvoker,
    **config: Any,
) -> Iterator[tuple[Stats, CheckpointStore, threading.Event]]:
    destination = config.pop("destination", None)
    config.setdefault("batch_size", 3)
    config.setdefault("parallelization_factor", 3)
    mapping = MappingConfig(
        uuid="p-1",
        function_arn=FUNCTION_ARN,
        event_source_arn=arn,
        starting_position="TRIM_HORIZON",
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
            idle_backoff=lambda: IdleBackoff(min_delay=0.001, max_delay=0.005),
        ),
    ).shard(
        shard_id,
        stop,
        lambda seq: pytest.fail("with a progress sink, commit is never called"),
        # As the shard worker wires it: the watermark and the lanes' progress above it.
        progress=lambda p: store.save(
            "p-1",
            arn,
            shard_id,
            stream_label="L",
            sequence_number=p.watermark or "",
            done_above=p.done_above,
        ),
        resume=saved.progress if (saved := store.load("p-1", arn, shard_id)) else None,
    )
    start = (
        StartPosition.after(saved.sequence_number)
        if saved is not None and saved.sequence_number
        else StartPosition("TRIM_HORIZON")
    )
    reader = ShardReader(streams, arn, shard_id, start)
    finished: list[bool] = []
    thread = threading.Thread(
        target=lambda: finished.append(LaneScheduler(parts, reader).run()), daemon=True
    )
    thread.start()
    try:
        yield stats, store, stop
    finally:
        stop.set()
        thread.join(5)
        store.close()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("timed out")
        time.sleep(0.005)


def put_interleaved(streams: FakeStreamsClient, arn: str, keys: int, versions: int) -> list[str]:
    sequence_numbers = []
    for version in range(1, versions + 1):
        for k in range(keys):
            sequence_numbers.append(streams.put(arn, f"k{k}", new_image={"v": {"N": str(version)}}))
    return sequence_numbers


def test_lanes_run_batches_at_once_and_keep_each_items_order(
    tmp_path: Path,
) -> None:
    streams = FakeStreamsClient()
    arn = streams.create_stream()
    sequence_numbers = put_interleaved(streams, arn, keys=9, versions=4)
    invoker = ConcurrentInvoker(delay=0.03)
    with lanes(tmp_path, streams, arn, invoker) as (stats, store, _):
        wait_for(lambda: stats.counts.get("succeeded", 0) == 36)
        wait_for(lambda: [c.sequence_number for c in store.all()] == [sequence_numbers[-1]])
    processed = invoker.processed()
    assert sorted(processed) == sorted((f"k{k}", v) for k in range(9) for v in range(1, 5))
    for k in range(9):  # each item's versions in order, each exactly once
        assert [v for key, v in processed if key == f"k{k}"] == [1, 2, 3, 4]
    assert invoker.max_active >= 2  # lanes overlapped
    assert invoker.max_active <= 3
    for event in invoker.events:  # a batch holds one lane's items only
        assert len({lane_of(r, 3) for r in event}) == 1


def test_a_retrying_lane_holds_the_checkpoint_while_other_lanes_go_on(tmp_path: Path) -> None:
    streams = FakeStreamsClient()
    arn = streams.create_stream()
    poison_key = "k0"
    poison_lane = lane_of(record({"pk": {"S": poison_key}}), 3)
    other = next(
        f"k{i}" for i in range(1, 50) if lane_of(record({"pk": {"S": f"k{i}"}}), 3) != poison_lane
    )
    bad = streams.put(arn, poison_key, new_image={"v": {"N": "1"}})
    other_seq = streams.put(arn, other, new_image={"v": {"N": "1"}})
    release = threading.Event()

    def respond(records: list[dict[str, Any]]) -> Outcome:
        if any(r["dynamodb"]["Keys"]["pk"]["S"] == poison_key for r in records):
            return Outcome() if release.is_set() else error("poison")
        return Outcome()

    invoker = ConcurrentInvoker(respond, delay=0.005)
    with lanes(tmp_path, streams, arn, invoker) as (stats, store, _):
        wait_for(lambda: (other, 1) in invoker.processed() and stats.counts.get("failed", 0) >= 3)
        # The other lane is done, but the earlier record is not: no watermark yet, and the
        # other lane's record is saved as done above it.
        (saved,) = store.all()
        assert saved.sequence_number == ""
        assert saved.done_above.covers(other_seq) and not saved.done_above.covers(bad)
        release.set()
        wait_for(lambda: len(store.all()) == 1 and store.all()[0].sequence_number != bad)
    assert stats.counts["succeeded"] == 2


def test_exhausted_records_go_to_the_destination_and_filtered_ones_are_done_at_once(
    tmp_path: Path,
) -> None:
    streams = FakeStreamsClient()
    arn = streams.create_stream()
    streams.put(arn, "bad", new_image={"v": {"N": "1"}})
    streams.put(arn, "skip", event_name="REMOVE", old_image={"v": {"N": "1"}})
    last = streams.put(arn, "good", new_image={"v": {"N": "1"}})
    destination = RecordingDestination()
    invoker = ConcurrentInvoker(
        lambda records: (
            error() if records[0]["dynamodb"]["Keys"]["pk"]["S"] == "bad" else Outcome()
        ),
        delay=0.0,
    )
    with lanes(
        tmp_path, streams, arn, invoker, max_retry_attempts=1, destination=destination,
        filter_patterns=('{"eventName": ["INSERT"]}',),
    ) as (stats, store, _):  # fmt: skip
        wait_for(lambda: [c.sequence_number for c in store.all()] == [last])
    assert stats.counts["filtered"] == 1
    ((failure, _context),) = destination.sent
    assert failure["requestContext"]["approximateInvokeCount"] == 2
    assert sorted(k for k, _v in invoker.processed()) == ["bad", "bad", "good"]


def test_a_restart_runs_again_only_what_was_in_flight(tmp_path: Path) -> None:
    # One lane is stuck on its first record while the others finish everything they got;
    # the run is stopped (as a kill would) and started again: only the stuck lane's records
    # are delivered again, never a record another lane had finished above the watermark.
    streams = FakeStreamsClient()
    arn = streams.create_stream()
    sequence_numbers = put_interleaved(streams, arn, keys=9, versions=3)
    stuck_lane = lane_of(record({"pk": {"S": "k0"}}), 3)
    stuck = threading.Event()

    def hang_in_lane(records: list[dict[str, Any]]) -> Outcome:
        if lane_of(records[0], 3) == stuck_lane:
            stuck.set()
            return error("still running when the runner died")
        return Outcome()

    first = ConcurrentInvoker(hang_in_lane, delay=0.005)
    in_other_lanes = {
        seq
        for seq, (k, _v) in zip(
            sequence_numbers, [(k, v) for v in range(3) for k in range(9)], strict=True
        )
        if lane_of(record({"pk": {"S": f"k{k}"}}), 3) != stuck_lane
    }
    with lanes(tmp_path, streams, arn, first) as (stats, store, _):
        wait_for(lambda: stats.counts.get("succeeded", 0) == len(in_other_lanes) and stuck.is_set())
        wait_for(
            lambda: (
                bool(store.all())
                and all(store.all()[0].done_above.covers(seq) for seq in in_other_lanes)
            )
        )
    again = ConcurrentInvoker(delay=0.0)
    with lanes(tmp_path, streams, arn, again) as (stats, store, _):
        wait_for(lambda: [c.sequence_number for c in store.all()] == [sequence_numbers[-1]])
        wait_for(lambda: not store.all()[0].done_above)
    redelivered = {r["dynamodb"]["SequenceNumber"] for event in again.events for r in event}
    assert redelivered == set(sequence_numbers) - in_other_lanes
    assert all(lane_of(r, 3) == stuck_lane for event in again.events for r in event)
