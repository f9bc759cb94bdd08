"""The batcher: BatchSize, the payload limit, the batching window and idle backoff."""

from __future__ import annotations

import threading
from typing import Any

from tests.helpers.fake_streams import FakeStreamsClient

from streamkit.local.esm.batcher import BatchPoller
from streamkit.local.esm.intake import RecordIntake
from streamkit.streams.reader import ShardReader, StartPosition
from streamkit.streams.throttling import IdleBackoff


def poller_for(streams: FakeStreamsClient, arn: str, **options: Any) -> BatchPoller:
    reader = ShardReader(
        streams, arn, streams.shard_ids(arn)[0], options.pop("start", StartPosition("TRIM_HORIZON"))
    )
    options.setdefault("batching_window_s", 0)
    options.setdefault("backoff", IdleBackoff(min_delay=0.001, max_delay=0.005))
    return BatchPoller(reader, intake=RecordIntake(arn), **options)


def test_batches_close_at_batch_size(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    for i in range(7):
        streams.put(arn, f"k{i}", new_image={})
    poller = poller_for(streams, arn, batch_size=3)
    sizes = [len(poller.next_batch(threading.Event()).records) for _ in range(3)]  # type: ignore[union-attr]
    assert sizes == [3, 3, 1]
    assert poller.counters.polled == 7


def test_batches_close_at_the_payload_limit(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    for i in range(6):
        streams.put(arn, f"k{i}", new_image={"pad": {"S": "x" * 1000}})
    poller = poller_for(streams, arn, batch_size=100, max_payload_bytes=3000)
    batches = [poller.next_batch(threading.Event()) for _ in range(3)]
    assert [len(b.records) for b in batches] == [2, 2, 2]  # type: ignore[union-attr]
    assert all(b.payload_bytes <= 3000 for b in batches)  # type: ignore[union-attr]


def test_the_batching_window_gathers_records_until_it_elapses(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    streams.put(arn, "first", new_image={})
    clock = [0.0]
    poller = poller_for(streams, arn, batch_size=10, batching_window_s=5, clock=lambda: clock[0])
    stop = threading.Event()
    reads = 0
    original = poller.reader.read

    def read(limit: int) -> Any:
        nonlocal reads
        reads += 1
        if reads == 2:
            streams.put(arn, "second", new_image={})
        clock[0] += 1.0
        return original(limit)

    poller.reader.read = read  # type: ignore[method-assign]
    batch = poller.next_batch(stop)
    assert batch is not None
    assert len(batch.records) == 2
    assert clock[0] >= 5


def test_the_batching_window_does_not_wait_for_a_full_batch(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    for i in range(3):
        streams.put(arn, f"k{i}", new_image={})
    poller = poller_for(streams, arn, batch_size=3, batching_window_s=300)
    batch = poller.next_batch(threading.Event())
    assert batch is not None and len(batch.records) == 3


def test_idle_polling_backs_off_and_stop_ends_the_wait(streams: FakeStreamsClient) -> None:
    backoff = IdleBackoff(min_delay=0.01, max_delay=0.04)
    assert [backoff.next_delay() for _ in range(5)] == [0.01, 0.02, 0.04, 0.04, 0.04]
    backoff.reset()
    assert backoff.next_delay() == 0.01
    arn = streams.create_stream()
    poller = poller_for(streams, arn, batch_size=10)
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    assert poller.next_batch(stop) is None
    calls = streams.calls["get_records"]
    assert 3 <= calls <= 40, calls  # backed off, not a busy loop


def test_latest_skips_existing_records(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    streams.put(arn, "before", new_image={})
    poller = poller_for(streams, arn, batch_size=10, start=StartPosition("LATEST"))
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    assert poller.next_batch(stop) is None
    streams.put(arn, "after", new_image={})
    batch = poller.next_batch(threading.Event())
    assert batch is not None
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in batch.records] == ["after"]
