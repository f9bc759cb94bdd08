"""Follow every shard of a DynamoDB stream, for as long as the caller wants (``streamkit tail``).

- Shards come from DescribeStream, every page (:func:`~streamkit.streams.reader.
  describe_stream`). A shard is read only once its parent has been read to its end, or when
  its parent is no longer listed (trimmed), so an item's changes come out in order across a
  shard split. DescribeStream is repeated every ``rediscover_interval_s`` and as soon as a
  shard ends, to find its children.
  https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html#Streams.Processing
- ``start="latest"``: shards open at the start are read from LATEST; shards already closed
  then hold only past records and are skipped; shards that appear later are read from
  TRIM_HORIZON (everything in them is new).
- ``start="trim-horizon"``: every shard from TRIM_HORIZON, parents before children.
- Polling adapts like the runner's (:class:`~streamkit.streams.throttling.IdleBackoff`): while
  records flow every shard is read again at once; after a round that found nothing the wait
  doubles from 10 ms up to 250 ms (AWS polls a shard about 4 times a second).
- Each shard has a :class:`~streamkit.streams.reader.ShardReader`, which re-acquires
  expired iterators, resumes at TRIM_HORIZON after trimming (and logs the gap) and waits out
  throttling.
- A stream whose shards are all closed and read (the stream was disabled) ends the iteration.

One thread, no locks: records are yielded from the caller's thread, in shard order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from streamkit.streams.reader import (
    GET_RECORDS_LIMIT,
    ShardReader,
    StartPosition,
    StreamsClient,
    describe_stream,
)
from streamkit.streams.throttling import IdleBackoff

__all__ = ["FollowedRecord", "StartFrom", "StreamFollower"]

StartFrom = Literal["latest", "trim-horizon"]


@dataclass(frozen=True)
class FollowedRecord:
    shard_id: str
    raw: dict[str, Any]
    """The record as GetRecords returned it (boto3 types: datetime, bytes)."""


class StreamFollower:
    """Iterate over a stream's records as they arrive; see the module docstring."""

    def __init__(
        self,
        client: StreamsClient,
        stream_arn: str,
        *,
        start: StartFrom = "latest",
        stop: threading.Event | None = None,
        backoff: IdleBackoff | None = None,
        rediscover_interval_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if start not in ("latest", "trim-horizon"):
            raise ValueError(f"start must be 'latest' or 'trim-horizon', not {start!r}")
        self.client = client
        self.stream_arn = stream_arn
        self.start = start
        self.stop = stop or threading.Event()
        self.backoff = backoff or IdleBackoff()
        self.rediscover_interval_s = rediscover_interval_s
        self.clock = clock
        self.ended = False
        """Set when every shard is closed and read: the stream was disabled."""
        self._readers: dict[str, ShardReader] = {}
        self._finished: set[str] = set()
        self._all_closed = False
        self._next_discovery = 0.0
        self._discovered_once = False

    def __iter__(self) -> Iterator[FollowedRecord]:
        while not self.stop.is_set():
            if self.clock() >= self._next_discovery:
                self._discover()
            if not self._readers and self._all_closed:
                self.ended = True
                return
            found_any = False
            for shard_id, reader in list(self._readers.items()):
                result = reader.read(GET_RECORDS_LIMIT)
                for raw in result.records:
                    found_any = True
                    yield FollowedRecord(shard_id, raw)
                if result.shard_ended:
                    del self._readers[shard_id]
                    self._finished.add(shard_id)
                    self._next_discovery = 0.0  # look for its children now
                if self.stop.is_set():
                    return
            if found_any:
                self.backoff.reset()
            else:
                self.stop.wait(self.backoff.next_delay())

    def _discover(self) -> None:
        description = describe_stream(self.client, self.stream_arn, stop=self.stop)
        initial = not self._discovered_once
        self._discovered_once = True
        self._next_discovery = self.clock() + self.rediscover_interval_s
        listed = {shard.shard_id for shard in description.shards}
        if initial and self.start == "latest":
            # Closed shards at the start hold only records written before it.
            self._finished.update(s.shard_id for s in description.shards if s.is_closed)
        for shard in description.shards:
            if shard.shard_id in self._readers or shard.shard_id in self._finished:
                continue
            parent = shard.parent_shard_id
            if parent and parent in listed and parent not in self._finished:
                continue  # its parent's records come first
            position = "LATEST" if initial and self.start == "latest" else "TRIM_HORIZON"
            self._readers[shard.shard_id] = ShardReader(
                self.client,
                self.stream_arn,
                shard.shard_id,
                StartPosition(position),
                stop=self.stop,
            )
        self._all_closed = bool(description.shards) and all(
            s.is_closed and s.shard_id in self._finished for s in description.shards
        )
