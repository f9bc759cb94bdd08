"""The shard reader and DescribeStream over the in-memory stream double
(streamkit.streams.reader)."""

from __future__ import annotations

import pytest
from tests.helpers.fake_streams import FakeStreamsClient

from streamkit.exceptions import StreamNotFoundError
from streamkit.streams.reader import ShardReader, StartPosition, describe_stream


def test_reader_resumes_after_a_checkpoint(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    sequences = [streams.put(arn, f"k{i}", new_image={}) for i in range(4)]
    reader = ShardReader(streams, arn, streams.shard_ids(arn)[0], StartPosition.after(sequences[1]))
    assert [r["dynamodb"]["SequenceNumber"] for r in reader.read(10).records] == sequences[2:]


def test_reader_reacquires_an_expired_iterator_after_the_last_record_read(
    streams: FakeStreamsClient,
) -> None:
    arn = streams.create_stream()
    sequences = [streams.put(arn, f"k{i}", new_image={}) for i in range(4)]
    reader = ShardReader(streams, arn, streams.shard_ids(arn)[0], StartPosition("TRIM_HORIZON"))
    assert len(reader.read(2).records) == 2
    streams.expire_iterators()
    assert [r["dynamodb"]["SequenceNumber"] for r in reader.read(10).records] == sequences[2:]
    assert streams.calls["get_shard_iterator"] == 2


def test_reader_reports_a_gap_after_trimming(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    shard = streams.shard_ids(arn)[0]
    sequences = [streams.put(arn, f"k{i}", new_image={}) for i in range(5)]
    reader = ShardReader(streams, arn, shard, StartPosition.after(sequences[0]))
    streams.trim(arn, shard, keep_from=sequences[3])
    result = reader.read(10)
    assert result.gap
    assert [r["dynamodb"]["SequenceNumber"] for r in result.records] == sequences[3:]


def test_reader_ends_at_the_end_of_a_closed_shard(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    parent = streams.shard_ids(arn)[0]
    streams.put(arn, "k", new_image={})
    streams.split(arn, parent)
    reader = ShardReader(streams, arn, parent, StartPosition("TRIM_HORIZON"))
    result = reader.read(10)
    assert len(result.records) == 1
    assert result.shard_ended and reader.ended


def test_describe_stream_pages_through_shards_and_keeps_lineage(streams: FakeStreamsClient) -> None:
    streams.describe_page_size = 1
    arn = streams.create_stream()
    parent = streams.shard_ids(arn)[0]
    left, right = streams.split(arn, parent)
    description = describe_stream(streams, arn)
    assert [s.shard_id for s in description.shards] == [parent, left, right]
    assert description.shards[0].is_closed
    assert [s.parent_shard_id for s in description.shards] == [None, parent, parent]
    assert streams.calls["describe_stream"] == 3


def test_a_missing_or_recreated_stream_is_not_found(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream("orders", label="2024-01-01T00:00:00.000")
    stale = arn.replace("2024-01-01T00:00:00.000", "2023-01-01T00:00:00.000")
    streams._streams[stale] = streams._streams[arn]  # same table, older stream label in the ARN
    with pytest.raises(StreamNotFoundError, match=f"Stream not found: {stale}"):
        describe_stream(streams, stale)
    streams.delete(arn)
    with pytest.raises(StreamNotFoundError) as info:
        describe_stream(streams, arn)
    assert str(info.value) == f"Stream not found: {arn}"
