"""Reading a DynamoDB stream through the ``dynamodbstreams`` client API.

Everything here speaks the boto3 client interface (``describe_stream``, ``get_shard_iterator``,
``get_records`` with keyword arguments), so a stream double with the same methods
(``tests/helpers/fake_streams.py``) can stand in to exercise expiry, trimming and lineage,
which moto never produces.

- :func:`describe_stream` pages through DescribeStream (``ExclusiveStartShardId``) and maps
  "the stream is gone" to :class:`~streamkit.exceptions.StreamNotFoundError`.
- :class:`ShardReader` owns one shard's iterator: it acquires it from a checkpoint
  (AFTER_SEQUENCE_NUMBER) or the mapping's StartingPosition, re-acquires it after
  ExpiredIteratorException, resumes at TRIM_HORIZON after TrimmedDataAccessException (and
  says so), and notices when a closed shard has been read to its end. It asks for at most
  1000 records per GetRecords (the service also caps a response at 1 MB), waits out
  throttling with jittered backoff, and takes its turn at the shard through a
  :class:`~streamkit.streams.throttling.ShardReadGate` (at most two readers per shard).
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from streamkit._aws import error_code
from streamkit.exceptions import StreamNotFoundError
from streamkit.streams.throttling import ShardReadGate, ThrottleBackoff

__all__ = [
    "GET_RECORDS_LIMIT",
    "ReadResult",
    "Shard",
    "ShardReader",
    "StartPosition",
    "StreamDescription",
    "StreamsClient",
    "describe_stream",
    "error_code",
]

LOG = logging.getLogger(__name__)

# DynamoDB Streams returns at most 1000 records (or 1 MB) per GetRecords.
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html
GET_RECORDS_LIMIT = 1000


class StreamsClient(Protocol):
    """The subset of boto3's ``dynamodbstreams`` client the runner uses."""

    def describe_stream(self, **kwargs: Any) -> dict[str, Any]: ...

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]: ...

    def get_records(self, **kwargs: Any) -> dict[str, Any]: ...


@dataclass(frozen=True)
class Shard:
    shard_id: str
    parent_shard_id: str | None
    starting_sequence_number: str | None
    ending_sequence_number: str | None

    @property
    def is_closed(self) -> bool:
        """A closed shard (split or stream disabled) has an ending sequence number."""
        return self.ending_sequence_number is not None


@dataclass(frozen=True)
class StreamDescription:
    stream_arn: str
    stream_label: str
    status: str
    view_type: str | None
    shards: tuple[Shard, ...]


def describe_stream(
    client: StreamsClient,
    stream_arn: str,
    *,
    backoff: ThrottleBackoff | None = None,
    stop: threading.Event | None = None,
    on_throttle: Callable[[str], None] | None = None,
) -> StreamDescription:
    """DescribeStream, every page (``ExclusiveStartShardId``). Raises StreamNotFoundError when
    the stream does not exist, including when the table was recreated: its stream has a new
    label, and the mapping's ARN names the old one. Throttled pages are retried."""
    backoff = backoff or ThrottleBackoff()
    shards: list[Shard] = []
    start: str | None = None
    description: dict[str, Any] = {}
    while True:
        kwargs: dict[str, Any] = {"StreamArn": stream_arn}
        if start:
            kwargs["ExclusiveStartShardId"] = start
        try:
            description = backoff.call(
                functools.partial(client.describe_stream, **kwargs),
                stop=stop,
                on_throttle=on_throttle,
                what=f"DescribeStream {stream_arn}",
            )["StreamDescription"]
        except Exception as exc:
            if error_code(exc) in ("ResourceNotFoundException", "ValidationException"):
                raise StreamNotFoundError(stream_arn) from exc
            raise
        for raw in description.get("Shards") or []:
            bounds = raw.get("SequenceNumberRange") or {}
            shards.append(
                Shard(
                    shard_id=raw["ShardId"],
                    parent_shard_id=raw.get("ParentShardId"),
                    starting_sequence_number=bounds.get("StartingSequenceNumber"),
                    ending_sequence_number=bounds.get("EndingSequenceNumber"),
                )
            )
        start = description.get("LastEvaluatedShardId")
        if not start:
            break
    label = str(description.get("StreamLabel") or "")
    arn_label = stream_arn.rsplit("/stream/", 1)[-1]
    if not label or (arn_label and label != arn_label):
        raise StreamNotFoundError(stream_arn)
    return StreamDescription(
        stream_arn=stream_arn,
        stream_label=label,
        status=str(description.get("StreamStatus") or ""),
        view_type=description.get("StreamViewType"),
        shards=tuple(shards),
    )


@dataclass(frozen=True)
class StartPosition:
    """Where a shard reader begins: after a checkpointed sequence number, or the mapping's
    StartingPosition (TRIM_HORIZON or LATEST)."""

    iterator_type: str
    sequence_number: str | None = None

    @classmethod
    def after(cls, sequence_number: str) -> StartPosition:
        return cls("AFTER_SEQUENCE_NUMBER", sequence_number)

    def describe(self) -> str:
        if self.sequence_number is None:
            return self.iterator_type
        return f"{self.iterator_type} {self.sequence_number}"


@dataclass
class ReadResult:
    records: list[dict[str, Any]] = field(default_factory=list)
    shard_ended: bool = False
    # Records were trimmed (TrimmedDataAccessException): reading resumed at TRIM_HORIZON and
    # everything between the old position and the oldest available record is lost.
    gap: bool = False


class ShardReader:
    """Reads one shard forward. Not thread-safe: one reader per shard worker.

    The position only moves forward: after a failed batch the processor retries the records
    it already holds, so re-acquiring an iterator (expiry) continues after the last record
    *read*, never after the last record checkpointed.
    """

    def __init__(
        self,
        client: StreamsClient,
        stream_arn: str,
        shard_id: str,
        start: StartPosition,
        *,
        gate: ShardReadGate | None = None,
        backoff: ThrottleBackoff | None = None,
        stop: threading.Event | None = None,
        on_throttle: Callable[[str], None] | None = None,
    ) -> None:
        self.client = client
        self.stream_arn = stream_arn
        self.shard_id = shard_id
        self.start = start
        self.gate = gate
        self.backoff = backoff or ThrottleBackoff()
        self.stop = stop
        self.on_throttle = on_throttle
        self.last_read_sequence: str | None = start.sequence_number
        self.ended = False
        self._iterator: str | None = None

    def acquire(self) -> bool:
        """Get an iterator for the current position (called lazily by ``read``). Returns True
        when that position was trimmed away and the iterator starts at TRIM_HORIZON instead."""
        if self.last_read_sequence is not None:
            position = StartPosition.after(self.last_read_sequence)
        else:
            position = self.start
        try:
            self._iterator = self._iterator_for(position)
        except Exception as exc:
            if error_code(exc) != "TrimmedDataAccessException":
                raise
            self._report_trim()
            self._iterator = self._iterator_for(StartPosition("TRIM_HORIZON"))
            return True
        return False

    def _report_trim(self) -> None:
        LOG.warning(
            "%s %s: records after %s were trimmed (older than 24 h) before they were read; "
            "resuming at TRIM_HORIZON. Records in between are lost.",
            self.stream_arn,
            self.shard_id,
            self.last_read_sequence or self.start.describe(),
        )

    def _iterator_for(self, position: StartPosition) -> str:
        kwargs: dict[str, Any] = {
            "StreamArn": self.stream_arn,
            "ShardId": self.shard_id,
            "ShardIteratorType": position.iterator_type,
        }
        if position.sequence_number is not None:
            kwargs["SequenceNumber"] = position.sequence_number
        try:
            iterator: str = self.backoff.call(
                lambda: self.client.get_shard_iterator(**kwargs),
                stop=self.stop,
                on_throttle=self.on_throttle,
                what=f"GetShardIterator {self.shard_id}",
            )["ShardIterator"]
        except Exception as exc:
            if error_code(exc) == "ResourceNotFoundException":
                raise StreamNotFoundError(self.stream_arn) from exc
            raise
        return iterator

    def read(self, limit: int) -> ReadResult:
        """One GetRecords call (plus iterator re-acquisition when AWS asks for it)."""
        if self.ended:
            return ReadResult(shard_ended=True)
        result = ReadResult()
        if self._iterator is None:
            result.gap = self.acquire()
        limit = max(1, min(limit, GET_RECORDS_LIMIT))
        for _attempt in range(3):
            try:
                response = self.backoff.call(
                    lambda: self._get_records(limit),
                    stop=self.stop,
                    on_throttle=self.on_throttle,
                    what=f"GetRecords {self.shard_id}",
                )
                break
            except Exception as exc:
                code = error_code(exc)
                if code == "ExpiredIteratorException":
                    # Iterators expire after 15 minutes. Continue AFTER_SEQUENCE_NUMBER of the
                    # last record read: that is the checkpoint when nothing is in flight, and
                    # otherwise the records in between are held by the processor (reading from
                    # the checkpoint would hand them out twice).
                    LOG.info(
                        "%s %s: shard iterator expired; re-acquiring",
                        self.stream_arn,
                        self.shard_id,
                    )
                    result.gap = self.acquire() or result.gap
                elif code == "TrimmedDataAccessException":
                    self._report_trim()
                    result.gap = True
                    self._iterator = self._iterator_for(StartPosition("TRIM_HORIZON"))
                elif code == "ResourceNotFoundException":
                    raise StreamNotFoundError(self.stream_arn) from exc
                else:
                    raise
        else:
            raise RuntimeError(f"{self.stream_arn} {self.shard_id}: could not read the shard")
        records: list[dict[str, Any]] = response.get("Records") or []
        if len(records) > limit:
            LOG.warning(
                "%s %s: GetRecords returned %d records for Limit=%d",
                self.stream_arn, self.shard_id, len(records), limit,
            )  # fmt: skip
        if records:
            self.last_read_sequence = records[-1]["dynamodb"]["SequenceNumber"]
        result.records = records
        # Records that come with a null NextShardIterator are the shard's last: keep them.
        self._iterator = response.get("NextShardIterator")
        if self._iterator is None:
            # A closed shard read to its end: AWS returns no NextShardIterator.
            self.ended = True
            result.shard_ended = True
        return result

    def _get_records(self, limit: int) -> dict[str, Any]:
        if self.gate is None:
            return self.client.get_records(ShardIterator=self._iterator, Limit=limit)
        with self.gate.reading(self.stream_arn, self.shard_id):
            return self.client.get_records(ShardIterator=self._iterator, Limit=limit)
