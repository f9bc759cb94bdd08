"""PutLogEvents batches stay within the API's limits, in chronological order per stream."""

from __future__ import annotations

from typing import Any

from streamkit.local.invoker.log_shipper import (
    EVENT_OVERHEAD_BYTES,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    LogShipper,
    _batches,
    _clip,
    _Line,
)


class RecordingLogs:
    """Speaks the boto3 ``logs`` client calls the shipper makes, and keeps them."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_log_group(self, **kwargs: Any) -> None:
        self.calls.append(("create_log_group", kwargs))

    def create_log_stream(self, **kwargs: Any) -> None:
        self.calls.append(("create_log_stream", kwargs))

    def put_log_events(self, **kwargs: Any) -> None:
        self.calls.append(("put_log_events", kwargs))


def _lines(count: int, size: int = 10) -> list[_Line]:
    return [_Line("g", "s", i, "x" * size) for i in range(count)]


def test_batches_split_at_the_event_count_limit() -> None:
    batches = list(_batches(_lines(MAX_BATCH_EVENTS * 2 + 1)))
    assert [len(b) for b in batches] == [MAX_BATCH_EVENTS, MAX_BATCH_EVENTS, 1]


def test_batches_split_at_the_byte_limit() -> None:
    size = 100_000
    batches = list(_batches(_lines(25, size)))
    for batch in batches:
        assert sum(len(line.message) + EVENT_OVERHEAD_BYTES for line in batch) <= MAX_BATCH_BYTES
    assert sum(len(b) for b in batches) == 25
    assert len(batches) == 3  # 10 events of 100,026 bytes fit in 1,048,576


def test_an_oversized_line_is_clipped_on_a_character_boundary() -> None:
    clipped = _clip("é" * MAX_EVENT_BYTES)
    assert len(clipped.encode()) <= MAX_EVENT_BYTES
    assert set(clipped) == {"é"}


def test_lines_are_sent_per_stream_in_time_order_after_creating_group_and_stream() -> None:
    logs = RecordingLogs()
    times = iter([3.0, 1.0, 2.0, 1.5])
    shipper = LogShipper(lambda: logs, linger_s=0.5, clock=lambda: next(times))
    for stream, message in (("a", "third"), ("a", "first"), ("a", "second"), ("b", "other")):
        assert shipper.submit("/aws/lambda/f", stream, message)
    assert shipper.submit("/aws/lambda/f", "a", "")  # empty: nothing to ship, not an error
    assert shipper.flush(timeout_s=10)
    shipper.close()
    puts = {
        c["logStreamName"]: c["logEvents"] for name, c in logs.calls if name == "put_log_events"
    }
    assert [e["message"] for e in puts["a"]] == ["first", "second", "third"]
    assert [e["timestamp"] for e in puts["a"]] == [1000, 2000, 3000]
    assert [e["message"] for e in puts["b"]] == ["other"]
    assert ("create_log_group", {"logGroupName": "/aws/lambda/f"}) in logs.calls
    assert shipper.stats()["shipped"] == 4
    assert not shipper.submit("/aws/lambda/f", "a", "late")  # closed: dropped, counted
    assert shipper.stats()["dropped"] == 1
