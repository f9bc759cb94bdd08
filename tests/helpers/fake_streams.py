"""An in-memory DynamoDB Streams double that speaks the boto3 ``dynamodbstreams`` client API.

moto has one shard that never splits and iterators that never expire, so the behaviours the
runner must survive on AWS are produced here on demand:

- ``split(arn, shard_id)`` closes a shard and opens two children (lineage);
- ``expire_iterators()`` makes every iterator handed out so far raise ExpiredIteratorException;
- ``trim(arn, shard_id, keep_from=seq)`` drops older records (TrimmedDataAccessException for
  an iterator or sequence number pointing before them);
- ``fail_next("get_records", "ThrottlingException", times=2)`` injects service errors;
- ``delete(arn)`` makes the stream vanish (ResourceNotFoundException);
- ``get_records_delay`` makes each GetRecords take that long (outside the double's lock), so
  concurrent readers overlap; ``max_concurrent_reads[shard_id]`` is the most seen at once.

Like DynamoDB Streams, a GetRecords page holds at most 1000 records and 1 MB of record JSON
(a page always has at least one record). Every request is
logged: ``iterator_requests`` (GetShardIterator's arguments), ``get_records_limits`` (each
``Limit`` asked), ``pages`` (records and bytes of each GetRecords answer) and ``last_pages``
(shard ID and record count of each answer without a NextShardIterator: a closed shard's end).

Records come back as boto3 returns them: ``ApproximateCreationDateTime`` is an aware
datetime and binary values are ``bytes``. Errors are real ``botocore.exceptions.ClientError``.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

__all__ = ["FakeStreamsClient"]

_REGION = "us-east-1"
_ACCOUNT = "123456789012"
PAGE_LIMIT_RECORDS = 1000
PAGE_LIMIT_BYTES = 1024 * 1024


def _client_error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


@dataclass
class _Shard:
    shard_id: str
    parent_shard_id: str | None
    starting_sequence: int
    records: list[dict[str, Any]] = field(default_factory=list)
    ending_sequence: int | None = None
    trimmed_before: int = 0  # sequence numbers below this are gone

    @property
    def closed(self) -> bool:
        return self.ending_sequence is not None


@dataclass
class _Stream:
    arn: str
    label: str
    view_type: str
    key_attribute: str
    shards: list[_Shard] = field(default_factory=list)
    deleted: bool = False


@dataclass
class _Iterator:
    stream_arn: str
    shard_id: str
    next_sequence: int  # first sequence number this iterator returns (>=)
    generation: int


class FakeStreamsClient:
    """Thread-safe; counts calls per method in ``calls``."""

    def __init__(self, *, describe_page_size: int = 100) -> None:
        self.describe_page_size = describe_page_size
        self.calls: dict[str, int] = {
            "describe_stream": 0,
            "get_shard_iterator": 0,
            "get_records": 0,
        }
        self._streams: dict[str, _Stream] = {}
        self._iterators: dict[str, _Iterator] = {}
        self._generation = 0  # iterators from older generations are expired
        self._sequence = itertools.count(100000000000000000001)
        self._shard_numbers = itertools.count(1)
        self._failures: dict[str, list[str]] = {}
        self._lock = threading.RLock()
        self.get_records_delay = 0.0
        self.max_concurrent_reads: dict[str, int] = {}
        self._active_reads: dict[str, int] = {}
        self.iterator_requests: list[dict[str, Any]] = []
        self.get_records_limits: list[int] = []
        self.pages: list[tuple[int, int]] = []  # (records, bytes) per GetRecords answer
        self.last_pages: list[tuple[str, int]] = []  # (shard ID, records): no NextShardIterator

    # -- building the stream -------------------------------------------------------------

    def create_stream(
        self,
        table_name: str = "orders",
        *,
        view_type: str = "NEW_AND_OLD_IMAGES",
        key_attribute: str = "pk",
        label: str | None = None,
    ) -> str:
        label = label or dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
        arn = f"arn:aws:dynamodb:{_REGION}:{_ACCOUNT}:table/{table_name}/stream/{label}"
        with self._lock:
            stream = _Stream(arn, label, view_type, key_attribute)
            stream.shards.append(self._new_shard(parent=None))
            self._streams[arn] = stream
        return arn

    def _new_shard(self, parent: str | None) -> _Shard:
        number = next(self._shard_numbers)
        shard_id = f"shardId-{number:020d}-{uuid.uuid4().hex[:8]}"
        return _Shard(shard_id, parent, starting_sequence=next(self._sequence))

    def shard_ids(self, arn: str) -> list[str]:
        with self._lock:
            return [s.shard_id for s in self._streams[arn].shards]

    def put(
        self,
        arn: str,
        key: str,
        *,
        event_name: str = "INSERT",
        new_image: Mapping[str, Any] | None = None,
        old_image: Mapping[str, Any] | None = None,
        shard_id: str | None = None,
        created: dt.datetime | None = None,
        key_attributes: Mapping[str, Any] | None = None,
    ) -> str:
        """Append a record for item ``key`` to the open shard (or ``shard_id``); returns its
        sequence number. Images are attribute maps; ``bytes`` values stay ``bytes``."""
        with self._lock:
            stream = self._streams[arn]
            shard = self._shard(stream, shard_id) if shard_id else self._open_shards(stream)[-1]
            if shard.closed:
                raise ValueError(f"shard {shard.shard_id} is closed")
            sequence = str(next(self._sequence))
            keys = {stream.key_attribute: {"S": key}, **(key_attributes or {})}
            body: dict[str, Any] = {
                "ApproximateCreationDateTime": created or dt.datetime.now(dt.UTC),
                "Keys": keys,
                "SequenceNumber": sequence,
                "SizeBytes": 32,
                "StreamViewType": stream.view_type,
            }
            if new_image is not None and stream.view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES"):
                body["NewImage"] = {**keys, **new_image}
            if old_image is not None and stream.view_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES"):
                body["OldImage"] = {**keys, **old_image}
            shard.records.append(
                {
                    "eventID": uuid.uuid4().hex,
                    "eventName": event_name,
                    "eventVersion": "1.1",
                    "eventSource": "aws:dynamodb",
                    "awsRegion": _REGION,
                    "dynamodb": body,
                }
            )
            return sequence

    # -- misbehaviour on demand ----------------------------------------------------------

    def split(self, arn: str, shard_id: str) -> tuple[str, str]:
        """Close ``shard_id`` and open two children; returns their IDs."""
        with self._lock:
            stream = self._streams[arn]
            parent = self._shard(stream, shard_id)
            parent.ending_sequence = next(self._sequence)
            children = (self._new_shard(parent.shard_id), self._new_shard(parent.shard_id))
            stream.shards.extend(children)
            return children[0].shard_id, children[1].shard_id

    def expire_iterators(self) -> None:
        with self._lock:
            self._generation += 1

    def trim(self, arn: str, shard_id: str, *, keep_from: str) -> None:
        """Records before sequence ``keep_from`` are gone (older than 24 h)."""
        with self._lock:
            shard = self._shard(self._streams[arn], shard_id)
            limit = int(keep_from)
            shard.records = [
                r for r in shard.records if int(r["dynamodb"]["SequenceNumber"]) >= limit
            ]
            shard.trimmed_before = limit

    def fail_next(self, method: str, code: str, *, times: int = 1) -> None:
        with self._lock:
            self._failures.setdefault(method, []).extend([code] * times)

    def delete(self, arn: str) -> None:
        with self._lock:
            self._streams[arn].deleted = True

    # -- the client API ------------------------------------------------------------------

    def describe_stream(self, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            self._count_and_maybe_fail("describe_stream", "DescribeStream")
            stream = self._stream(kwargs["StreamArn"], "DescribeStream")
            shards = stream.shards
            start = kwargs.get("ExclusiveStartShardId")
            if start is not None:
                index = [s.shard_id for s in shards].index(start)
                shards = shards[index + 1 :]
            page = shards[: min(kwargs.get("Limit") or 100, self.describe_page_size)]
            description: dict[str, Any] = {
                "StreamArn": stream.arn,
                "StreamLabel": stream.label,
                "StreamStatus": "ENABLED",
                "StreamViewType": stream.view_type,
                "TableName": stream.arn.split("/")[1],
                "Shards": [self._shard_json(s) for s in page],
            }
            if len(page) < len(shards):
                description["LastEvaluatedShardId"] = page[-1].shard_id
            return {"StreamDescription": description}

    def get_shard_iterator(self, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            self.iterator_requests.append(dict(kwargs))
            self._count_and_maybe_fail("get_shard_iterator", "GetShardIterator")
            stream = self._stream(kwargs["StreamArn"], "GetShardIterator")
            shard = self._shard(stream, kwargs["ShardId"])
            kind = kwargs["ShardIteratorType"]
            if kind == "TRIM_HORIZON":
                position = max(shard.starting_sequence, shard.trimmed_before)
            elif kind == "LATEST":
                position = (
                    int(shard.records[-1]["dynamodb"]["SequenceNumber"]) + 1
                    if shard.records
                    else shard.starting_sequence
                )
            elif kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
                position = int(kwargs["SequenceNumber"]) + (kind == "AFTER_SEQUENCE_NUMBER")
                if position < shard.trimmed_before:
                    raise _client_error(
                        "TrimmedDataAccessException",
                        "The operation attempted to read past the oldest stream record in a shard.",
                        "GetShardIterator",
                    )
            else:
                raise _client_error(
                    "ValidationException", f"bad iterator type {kind}", "GetShardIterator"
                )
            token = uuid.uuid4().hex
            self._iterators[token] = _Iterator(
                stream.arn, shard.shard_id, position, self._generation
            )
            return {"ShardIterator": token}

    def get_records(self, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            iterator = self._iterators.get(kwargs["ShardIterator"])
            shard_id = iterator.shard_id if iterator is not None else "?"
            self._active_reads[shard_id] = active = self._active_reads.get(shard_id, 0) + 1
            self.max_concurrent_reads[shard_id] = max(
                self.max_concurrent_reads.get(shard_id, 0), active
            )
        try:
            if self.get_records_delay:
                time.sleep(self.get_records_delay)  # the scenario: a slow GetRecords
            return self._get_records(**kwargs)
        finally:
            with self._lock:
                self._active_reads[shard_id] -= 1

    def _get_records(self, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            self.get_records_limits.append(int(kwargs.get("Limit") or PAGE_LIMIT_RECORDS))
            self._count_and_maybe_fail("get_records", "GetRecords")
            iterator = self._iterators.get(kwargs["ShardIterator"])
            if iterator is None or iterator.generation != self._generation:
                raise _client_error("ExpiredIteratorException", "Iterator expired", "GetRecords")
            stream = self._stream(iterator.stream_arn, "GetRecords")
            shard = self._shard(stream, iterator.shard_id)
            if iterator.next_sequence < shard.trimmed_before:
                raise _client_error(
                    "TrimmedDataAccessException",
                    "The operation attempted to read past the oldest stream record in a shard.",
                    "GetRecords",
                )
            if "Limit" in kwargs and not 1 <= int(kwargs["Limit"]) <= PAGE_LIMIT_RECORDS:
                raise _client_error(
                    "ValidationException",
                    f"1 validation error detected: Value '{kwargs['Limit']}' at 'limit' failed "
                    f"to satisfy constraint: Member must have value less than or equal to "
                    f"{PAGE_LIMIT_RECORDS}",
                    "GetRecords",
                )
            limit = int(kwargs.get("Limit") or PAGE_LIMIT_RECORDS)
            available = [
                r
                for r in shard.records
                if int(r["dynamodb"]["SequenceNumber"]) >= iterator.next_sequence
            ]
            page, page_bytes = _page(available, limit)
            self.pages.append((len(page), page_bytes))
            next_sequence = (
                int(page[-1]["dynamodb"]["SequenceNumber"]) + 1 if page else iterator.next_sequence
            )
            response: dict[str, Any] = {"Records": [_copy(r) for r in page]}
            if not (shard.closed and len(page) == len(available)):
                token = uuid.uuid4().hex
                self._iterators[token] = _Iterator(
                    stream.arn, shard.shard_id, next_sequence, self._generation
                )
                response["NextShardIterator"] = token
            else:
                self.last_pages.append((shard.shard_id, len(page)))
            return response

    # -- internals -----------------------------------------------------------------------

    def _count_and_maybe_fail(self, method: str, operation: str) -> None:
        self.calls[method] += 1
        pending = self._failures.get(method)
        if pending:
            code = pending.pop(0)
            raise _client_error(code, f"injected {code}", operation)

    def _stream(self, arn: str, operation: str) -> _Stream:
        stream = self._streams.get(arn)
        if stream is None or stream.deleted:
            raise _client_error("ResourceNotFoundException", f"Stream not found: {arn}", operation)
        return stream

    @staticmethod
    def _shard(stream: _Stream, shard_id: str) -> _Shard:
        for shard in stream.shards:
            if shard.shard_id == shard_id:
                return shard
        raise _client_error(
            "ResourceNotFoundException", f"Shard not found: {shard_id}", "GetShardIterator"
        )

    @staticmethod
    def _open_shards(stream: _Stream) -> list[_Shard]:
        return [s for s in stream.shards if not s.closed]

    @staticmethod
    def _shard_json(shard: _Shard) -> dict[str, Any]:
        bounds = {"StartingSequenceNumber": str(shard.starting_sequence)}
        if shard.ending_sequence is not None:
            bounds["EndingSequenceNumber"] = str(shard.ending_sequence)
        body: dict[str, Any] = {"ShardId": shard.shard_id, "SequenceNumberRange": bounds}
        if shard.parent_shard_id:
            body["ParentShardId"] = shard.parent_shard_id
        return body


def _copy(record: dict[str, Any]) -> dict[str, Any]:
    return {**record, "dynamodb": dict(record["dynamodb"])}


def _page(available: list[dict[str, Any]], limit: int) -> tuple[list[dict[str, Any]], int]:
    """Up to ``limit`` records and 1 MB."""
    page: list[dict[str, Any]] = []
    size = 0
    for record in available[:limit]:
        record_size = len(json.dumps(record, default=str))
        if page and size + record_size > PAGE_LIMIT_BYTES:
            break
        page.append(record)
        size += record_size
    return page, size
