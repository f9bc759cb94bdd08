"""DynamoDB Streams' read API, served from moto's record log and stream_shards' chains.

DescribeStream, GetShardIterator and GetRecords are answered here instead of by moto, for two
reasons:

- **Speed.** moto serializes a GetRecords answer with its generic, shape-driven serializer:
  about 90% of the server's time per call, ~1,300 records/s. Here each record's JSON is built
  once, when it is first read, in the member order of AWS's API model, and an answer is the
  join of those strings (see BENCHMARKS.md, "Emulator").
- **Streams that live** (stream_shards.py): several shards with lineage, iterators that expire
  after ``iterator_seconds`` and may be reused until then, and records trimmed after
  ``retention_seconds``, with AWS's errors:

  - an iterator older than its lifetime: ExpiredIteratorException (wording of the Kinesis
    backend DynamoDB Streams shares: "Iterator expired. The iterator was created at time ...
    which is further in the future than the tolerated delay of 900000 milliseconds.");
  - an iterator or sequence number behind the trim horizon: TrimmedDataAccessException ("The
    data you are trying to access has been trimmed", as AWS answers it);
  - a closed shard read to its end: no NextShardIterator
    (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetRecords.html);
  - at most 1000 records and 1 MB per GetRecords.

An iterator is ``<stream arn>|1|<token>``, moto's form, whose token carries the shard, the log
position and the time it was issued: the emulator keeps no state per iterator, so idle polling
costs no memory and a reader may use an iterator again until it expires, as on AWS.

Requests this module does not understand (a table without a stream, an unknown shape) are left
to moto, which answers them as before.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
import json
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from streamkit.local.emulator.stream_shards import (
    LogicalShard,
    Settings,
    ShardChain,
    chain_of,
)

__all__ = ["TARGET_PREFIX", "handle_streams_request"]

TARGET_PREFIX = "DynamoDBStreams_20120810."
_ERROR_PREFIX = "com.amazonaws.dynamodb.v20120810#"
MAX_RECORDS = 1000
MAX_RESPONSE_BYTES = 1024 * 1024
_JSON_ATTRIBUTE = "_streamkit_json"
# AWS's member order of Record and StreamRecord (botocore's dynamodbstreams service model).
_RECORD_ORDER = ("eventID", "eventName", "eventVersion", "eventSource", "awsRegion")
_BODY_ORDER = (
    "ApproximateCreationDateTime",
    "Keys",
    "NewImage",
    "OldImage",
    "SequenceNumber",
    "SizeBytes",
    "StreamViewType",
)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class StreamsError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def handle_streams_request(
    environ: dict[str, Any], start_response: StartResponse
) -> Iterable[bytes] | None:
    """Answer a DynamoDB Streams read request, or return None to leave it to moto (the body
    is put back for it)."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    operation = target[len(TARGET_PREFIX) :] if target.startswith(TARGET_PREFIX) else ""
    handler = _OPERATIONS.get(operation)
    if handler is None:
        return None
    length = int(environ.get("CONTENT_LENGTH") or 0)
    raw = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(raw)
    try:
        request = json.loads(raw or b"{}")
        if not isinstance(request, dict):
            return None
        body = handler(request)
    except StreamsError as exc:
        payload = json.dumps({"__type": _ERROR_PREFIX + exc.code, "message": exc.message})
        return _respond(start_response, f"{exc.status} Error", payload.encode())
    except _LeaveToMoto:
        environ["wsgi.input"] = io.BytesIO(raw)
        return None
    return _respond(start_response, "200 OK", body)


class _LeaveToMoto(Exception):
    pass


def _respond(start_response: StartResponse, status: str, body: bytes) -> list[bytes]:
    start_response(
        status,
        [
            ("Content-Type", "application/x-amz-json-1.0"),
            ("Content-Length", str(len(body))),
            ("x-amzn-RequestId", uuid.uuid4().hex),
        ],
    )
    return [body]


# --- locating a stream ---------------------------------------------------------------------------


def _stream_chain(stream_arn: Any) -> tuple[Any, ShardChain]:
    """(moto table, chain) for a stream ARN; StreamsError when there is no such stream."""
    from moto.dynamodb.models import dynamodb_backends

    parts = str(stream_arn).split(":", 5)
    if len(parts) != 6 or "/stream/" not in parts[5]:
        raise _LeaveToMoto
    region, account = parts[3], parts[4]
    table_name, _, label = parts[5].removeprefix("table/").partition("/stream/")
    try:
        table = dynamodb_backends[account][region].tables.get(table_name)
    except Exception:  # an account or region moto rejects: its own answer is the right one
        raise _LeaveToMoto from None
    if table is None or table.stream_shard is None or table.latest_stream_label != label:
        raise StreamsError(
            "ResourceNotFoundException",
            f"Requested resource not found: Stream: {stream_arn} not found",
        )
    return table, chain_of(table.stream_shard)


# --- DescribeStream -----------------------------------------------------------------------------


def _describe_stream(request: dict[str, Any]) -> bytes:
    arn = request.get("StreamArn")
    table, chain = _stream_chain(arn)
    settings = Settings.from_env()
    chain.sync()
    chain.roll_over_aged(settings)
    shards = chain.visible_shards(settings)
    start = request.get("ExclusiveStartShardId")
    if start:
        ids = [s.shard_id for s in shards]
        shards = shards[ids.index(start) + 1 :] if start in ids else []
    limit = int(request.get("Limit") or 100)
    page, more = shards[:limit], len(shards) > limit
    description: dict[str, Any] = {
        "StreamArn": arn,
        "StreamLabel": table.latest_stream_label,
        "StreamStatus": "ENABLED",
        "StreamViewType": table.stream_specification["StreamViewType"],
        "CreationRequestDateTime": _epoch(table.stream_shard.created_on),
        "TableName": table.name,
        "KeySchema": table.schema,
        "Shards": [_shard_json(chain, s) for s in page],
    }
    if more:
        description["LastEvaluatedShardId"] = page[-1].shard_id
    return json.dumps({"StreamDescription": description}).encode()


def _shard_json(chain: ShardChain, shard: LogicalShard) -> dict[str, Any]:
    first = shard.indices[0] if shard.indices else shard.first_index
    bounds = {"StartingSequenceNumber": str(chain.sequence_number(first))}
    if shard.closed and shard.indices:
        bounds["EndingSequenceNumber"] = str(chain.sequence_number(shard.indices[-1]))
    out: dict[str, Any] = {"ShardId": shard.shard_id, "SequenceNumberRange": bounds}
    if shard.parent_id:
        out["ParentShardId"] = shard.parent_id
    return out


# --- GetShardIterator ---------------------------------------------------------------------------


def _get_shard_iterator(request: dict[str, Any]) -> bytes:
    arn = request.get("StreamArn")
    _table, chain = _stream_chain(arn)
    chain.sync()
    settings = Settings.from_env()
    shard = chain.find(str(request.get("ShardId")))
    if shard is None:
        raise StreamsError(
            "ResourceNotFoundException",
            f"Requested resource not found: Shard does not exist: {request.get('ShardId')}",
        )
    kind = request.get("ShardIteratorType")
    trimmed = chain.trim_index(settings)
    if kind == "TRIM_HORIZON":
        position = max(trimmed, shard.indices[0] if shard.indices else shard.first_index)
    elif kind == "LATEST":
        position = (shard.indices[-1] + 1) if shard.closed and shard.indices else len(chain.epochs)
    elif kind in ("AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER"):
        position = _sequence_position(chain, request.get("SequenceNumber"))
        if position < trimmed:
            raise StreamsError(
                "TrimmedDataAccessException", "The data you are trying to access has been trimmed"
            )
        position += kind == "AFTER_SEQUENCE_NUMBER"
    else:
        raise StreamsError(
            "ValidationException",
            f"1 validation error detected: Value '{kind}' at 'shardIteratorType' failed to "
            "satisfy constraint: Member must satisfy enum value set: [AFTER_SEQUENCE_NUMBER, "
            "AT_SEQUENCE_NUMBER, LATEST, TRIM_HORIZON]",
        )
    return json.dumps({"ShardIterator": _iterator(str(arn), shard.shard_id, position)}).encode()


def _sequence_position(chain: ShardChain, sequence_number: Any) -> int:
    try:
        position = int(str(sequence_number)) - chain.base
    except ValueError:
        position = -1
    if position < 0:
        raise StreamsError("ValidationException", f"Invalid SequenceNumber: {sequence_number}")
    return position


def _iterator(stream_arn: str, shard_id: str, position: int) -> str:
    token = f"{shard_id}|{position}|{int(time.time() * 1000)}".encode()
    return f"{stream_arn}|1|{base64.urlsafe_b64encode(token).decode()}"


def _parse_iterator(iterator: Any) -> tuple[str, str, int, int]:
    """(stream arn, shard id, position, issued ms)."""
    arn, sep, token = str(iterator).rpartition("|1|")
    try:
        if not sep:
            raise ValueError(iterator)
        shard_id, position, issued = base64.urlsafe_b64decode(token).decode().split("|")
        return arn, shard_id, int(position), int(issued)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise StreamsError("ValidationException", "Invalid ShardIterator") from None


# --- GetRecords ---------------------------------------------------------------------------------


def _get_records(request: dict[str, Any]) -> bytes:
    limit = request.get("Limit") or MAX_RECORDS
    if not isinstance(limit, int) or not 1 <= limit <= MAX_RECORDS:
        raise StreamsError(
            "ValidationException",
            f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy "
            "constraint: Member must have value less than or equal to 1000",
        )
    arn, shard_id, position, issued_ms = _parse_iterator(request.get("ShardIterator"))
    settings = Settings.from_env()
    now = time.time()
    if now * 1000 - issued_ms > settings.iterator_seconds * 1000:
        raise StreamsError(
            "ExpiredIteratorException",
            f"Iterator expired. The iterator was created at time {_http_date(issued_ms / 1000)} "
            f"while right now it is {_http_date(now)} which is further in the future than the "
            f"tolerated delay of {int(settings.iterator_seconds * 1000)} milliseconds.",
        )
    _table, chain = _stream_chain(arn)
    chain.sync()
    shard = chain.find(shard_id)
    if shard is None:
        raise StreamsError(
            "ResourceNotFoundException",
            f"Requested resource not found: Shard does not exist: {shard_id}",
        )
    start = shard.position_of(position)
    trimmed = chain.trim_index(settings, now)
    if start < len(shard.indices) and shard.indices[start] < trimmed:
        raise StreamsError(
            "TrimmedDataAccessException", "The data you are trying to access has been trimmed"
        )
    items = chain.moto_shard.items
    chunks: list[bytes] = []
    size = 0
    end = start
    for index in shard.indices[start : start + limit]:
        chunk = _record_json(items[index])
        if chunks and size + len(chunk) > MAX_RESPONSE_BYTES:
            break
        chunks.append(chunk)
        size += len(chunk)
        end += 1
    next_position = shard.indices[end - 1] + 1 if end > start else position
    body = b'{"Records": [' + b", ".join(chunks) + b"]"
    if not (shard.closed and end >= len(shard.indices)):
        body += (
            b', "NextShardIterator": '
            + json.dumps(_iterator(arn, shard.shard_id, next_position)).encode()
        )
    return body + b"}"


def _record_json(record: Any) -> bytes:
    """One record's JSON, built once: records never change after they are written."""
    cached: bytes | None = getattr(record, _JSON_ATTRIBUTE, None)
    if cached is not None:
        return cached
    source = record.record
    out: dict[str, Any] = {key: source[key] for key in _RECORD_ORDER if key in source}
    body = source["dynamodb"]
    ordered = {key: body[key] for key in _BODY_ORDER if key in body}
    if "ApproximateCreationDateTime" in ordered:
        ordered["ApproximateCreationDateTime"] = _epoch(ordered["ApproximateCreationDateTime"])
    out["dynamodb"] = ordered
    if "userIdentity" in source:
        out["userIdentity"] = source["userIdentity"]
    cached = json.dumps(out, default=_binary_as_base64).encode()
    setattr(record, _JSON_ATTRIBUTE, cached)
    return cached


def _epoch(value: Any) -> Any:
    """moto's datetimes (naive UTC, from its utcnow()) in the wire form: epoch seconds with
    milliseconds, as moto's serializer writes them."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return round(value.timestamp(), 3)
    return value


def _binary_as_base64(value: Any) -> str:
    # moto keeps B and BS values as bytes; the wire form is base64, as AWS sends them.
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"cannot serialize {type(value).__name__}")


def _http_date(epoch: float) -> str:
    return time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(epoch))


_OPERATIONS: dict[str, Callable[[dict[str, Any]], bytes]] = {
    "DescribeStream": _describe_stream,
    "GetShardIterator": _get_shard_iterator,
    "GetRecords": _get_records,
}
