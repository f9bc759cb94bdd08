"""``StreamFollower`` over the stream double: every shard, parents before children, LATEST
versus TRIM_HORIZON, and the end of a disabled stream."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from tests.helpers.fake_streams import FakeStreamsClient

from streamkit.ops.follow import FollowedRecord, StreamFollower
from streamkit.streams.throttling import IdleBackoff


def _keys(records: list[FollowedRecord]) -> list[str]:
    return [r.raw["dynamodb"]["Keys"]["pk"]["S"] for r in records]


def _fast(client: FakeStreamsClient, arn: str, **options: object) -> StreamFollower:
    return StreamFollower(
        client,
        arn,
        backoff=IdleBackoff(min_delay=0.001, max_delay=0.01),
        **options,  # type: ignore[arg-type]
    )


class Collector:
    """Iterates a follower on a thread until told to stop."""

    def __init__(self, follower: StreamFollower) -> None:
        self.follower = follower
        self.records: list[FollowedRecord] = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        for record in self.follower:
            self.records.append(record)

    def wait_for(self, condition: Callable[[], bool], timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"timed out; got {_keys(self.records)}"
            time.sleep(0.005)

    def stop(self) -> list[FollowedRecord]:
        self.follower.stop.set()
        self.thread.join(5)
        assert not self.thread.is_alive()
        return self.records


def test_trim_horizon_reads_a_parent_to_its_end_before_its_children() -> None:
    client = FakeStreamsClient()
    arn = client.create_stream()
    (parent,) = client.shard_ids(arn)
    client.put(arn, "p1")
    client.put(arn, "p2")
    left, right = client.split(arn, parent)
    client.put(arn, "l1", shard_id=left)
    client.put(arn, "r1", shard_id=right)
    client.put(arn, "l2", shard_id=left)

    collector = Collector(_fast(client, arn, start="trim-horizon"))
    collector.wait_for(lambda: len(collector.records) == 5)
    records = collector.stop()
    assert _keys(records)[:2] == ["p1", "p2"]
    assert [r.shard_id for r in records[:2]] == [parent, parent]
    by_shard = {
        shard: [k for r, k in zip(records, _keys(records), strict=True) if r.shard_id == shard]
        for shard in (left, right)
    }
    assert by_shard == {left: ["l1", "l2"], right: ["r1"]}
    # No child was opened before the parent's last page was read.
    opened = [r["ShardId"] for r in client.iterator_requests]
    assert opened[0] == parent and set(opened[1:]) == {left, right}


def test_latest_skips_past_records_and_follows_children_from_their_start() -> None:
    client = FakeStreamsClient()
    arn = client.create_stream()
    (parent,) = client.shard_ids(arn)
    client.put(arn, "old")

    collector = Collector(_fast(client, arn, start="latest"))
    collector.wait_for(lambda: client.calls["get_records"] >= 1)  # the LATEST iterator exists
    client.put(arn, "new-1")
    collector.wait_for(lambda: len(collector.records) == 1)
    left, _ = client.split(arn, parent)
    client.put(arn, "child-1", shard_id=left)  # before the follower even knows the child
    collector.wait_for(lambda: len(collector.records) == 2)
    records = collector.stop()
    assert _keys(records) == ["new-1", "child-1"]
    assert records[1].shard_id == left
    child_requests = [r for r in client.iterator_requests if r["ShardId"] == left]
    assert [r["ShardIteratorType"] for r in child_requests] == ["TRIM_HORIZON"]


def test_latest_ignores_shards_closed_before_it_started() -> None:
    client = FakeStreamsClient()
    arn = client.create_stream()
    (parent,) = client.shard_ids(arn)
    client.put(arn, "before-split")
    (left, right) = client.split(arn, parent)
    client.put(arn, "before-start", shard_id=left)

    collector = Collector(_fast(client, arn, start="latest"))
    collector.wait_for(lambda: client.calls["get_records"] >= 2)
    client.put(arn, "after-start", shard_id=right)
    collector.wait_for(lambda: len(collector.records) == 1)
    assert _keys(collector.stop()) == ["after-start"]
    assert parent not in {r["ShardId"] for r in client.iterator_requests}


def test_a_stream_whose_shards_are_all_closed_and_read_ends_the_iteration() -> None:
    client = FakeStreamsClient()
    arn = client.create_stream()
    (shard,) = client.shard_ids(arn)
    client.put(arn, "last")
    # Disabling a stream closes its open shards; the double has no call for it.
    client._streams[arn].shards[0].ending_sequence = int(client.put(arn, "final")) + 1

    follower = _fast(client, arn, start="trim-horizon")
    records = list(follower)  # returns by itself
    assert _keys(records) == ["last", "final"]
    assert follower.ended
    assert shard in {r["ShardId"] for r in client.iterator_requests}


def test_start_must_be_latest_or_trim_horizon() -> None:
    with pytest.raises(ValueError, match="start must be"):
        StreamFollower(FakeStreamsClient(), "arn", start="at-timestamp")  # type: ignore[arg-type]
