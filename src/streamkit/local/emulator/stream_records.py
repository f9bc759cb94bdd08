"""Stream records as DynamoDB writes them: version, size, and only for real changes.

moto differs from DynamoDB Streams in four ways this module corrects:

- ``eventVersion`` is "1.0" in moto; DynamoDB stream records carry "1.1" (recorded from real AWS
  in LocalStack's snapshot tests/aws/services/lambda_/event_source_mapping/
  test_lambda_integration_dynamodbstreams.snapshot.json, and in Lambda's sample events,
  https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html).
- ``SizeBytes`` is the length of moto's JSON dump of the record; DynamoDB reports the size of
  the keys plus the images the view type carries, each counted the way DynamoDB sizes items
  (:func:`item_size`). The same snapshot shows it: keys ``{"id": "id_value"}`` plus a NewImage
  of the same item is 20 bytes; a MODIFY with a 26-byte NewImage and a 10-byte OldImage is 46.
- A write that changes nothing still gets a MODIFY record in moto. DynamoDB Streams writes no
  record "if you perform a PutItem or UpdateItem operation that does not change any data in an
  item" (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Streams.html); the
  snapshot's ``insert_same_entry_twice`` case shows one INSERT for two identical puts.
- An UpdateItem that creates its item is, in moto, a PutItem of the bare key (one INSERT with
  only the key) and then the update (a second INSERT). DynamoDB writes one INSERT whose
  NewImage is the whole new item.
"""

from __future__ import annotations

import base64
import contextvars
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal, InvalidOperation
from typing import Any

from streamkit.local.emulator.ttl_sweeper import TTL_USER_IDENTITY, deleting_for_ttl

__all__ = ["STREAM_EVENT_VERSION", "apply_stream_record_patches", "item_size", "value_size"]

STREAM_EVENT_VERSION = "1.1"

# Set while moto's UpdateItem creates the bare item it then updates: that put is not a change
# of its own, so its stream record is dropped (the update's own record is the one INSERT).
_creating_for_update: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "streamkit_creating_for_update", default=False
)
_in_update: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "streamkit_in_update_item", default=False
)
# The two versions StreamShard.add is recording, rendered once: (old, new, old map, new map).
_prepared: contextvars.ContextVar[tuple[Any, Any, dict[str, Any], dict[str, Any]] | None] = (
    contextvars.ContextVar("streamkit_prepared_images", default=None)
)


# --- sizes (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html)


def _number_size(text: str) -> int:
    """1 byte per two significant digits, plus 1; leading and trailing zeros are trimmed."""
    digits = text.lstrip("+-").replace(".", "").split("e")[0].split("E")[0].strip("0")
    return (len(digits) + 1) // 2 + 1


def value_size(value: Mapping[str, Any]) -> int:
    """The size DynamoDB counts for one attribute value (its name not included)."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        return _number_size(str(inner))
    if kind == "B":
        return len(_raw_bytes(inner))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(str(s).encode()) for s in inner)
    if kind == "NS":
        return sum(_number_size(str(n)) for n in inner)
    if kind == "BS":
        return sum(len(_raw_bytes(b)) for b in inner)
    # A List or Map: 3 bytes of overhead, plus 1 byte per element and the elements' sizes.
    if kind == "L":
        return 3 + sum(1 + value_size(v) for v in inner)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(v) for k, v in inner.items())
    return 0


def item_size(attributes: Mapping[str, Mapping[str, Any]]) -> int:
    """The size DynamoDB counts for an item: each attribute's name plus its value."""
    return sum(len(name.encode()) + value_size(value) for name, value in attributes.items())


def _raw_bytes(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    try:
        return base64.b64decode(str(value), validate=True)
    except ValueError:
        return str(value).encode()


# --- equality of two item images, as DynamoDB compares them -----------------------------------


def _same_value(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    ((kind, left),) = a.items()
    right = b[kind]
    if kind == "N":
        return _same_number(left, right)
    if kind == "NS":
        return sorted(map(_decimal, left)) == sorted(map(_decimal, right))
    if kind in ("SS", "BS"):
        return sorted(left) == sorted(right)
    if kind == "L":
        return len(left) == len(right) and all(map(_same_value, left, right))
    if kind == "M":
        return same_image(left, right)
    return bool(left == right)


def _decimal(text: Any) -> Decimal:
    try:
        return Decimal(str(text))
    except InvalidOperation:
        return Decimal("NaN")


def _same_number(left: Any, right: Any) -> bool:
    return str(left) == str(right) or _decimal(left) == _decimal(right)


def same_image(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when two attribute maps hold the same data (numbers compared by value)."""
    return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)


# --- the patches ---------------------------------------------------------------------------------


def apply_stream_record_patches() -> None:
    """Patch moto's StreamRecord, StreamShard.add and UpdateItem (idempotent)."""
    from moto.core.utils import utcnow
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models import table as table_models
    from moto.moto_api._internal import mock_random

    record_cls = table_models.StreamRecord
    if getattr(record_cls.__init__, "_streamkit_sized", False):
        return

    def __init__(
        self: Any, table: Any, stream_type: str, event_name: str, old: Any, new: Any, seq: int
    ) -> None:
        # moto's fields, with AWS's eventVersion, region and SizeBytes; images are rendered
        # once (StreamShard.add already rendered them to compare, see _prepared).
        old_a, new_a = _images(old, new)
        source = old if old is not None else new
        keys = {table.hash_key_attr: source.hash_key.to_json()}
        if table.range_key_attr is not None:
            keys[table.range_key_attr] = source.range_key.to_json()
        body: dict[str, Any] = {
            "StreamViewType": stream_type,
            "ApproximateCreationDateTime": utcnow(),
            "SequenceNumber": str(seq),
            "SizeBytes": 0,
            "Keys": keys,
        }
        if stream_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES") and new is not None:
            body["NewImage"] = new_a
        if stream_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES") and old is not None:
            body["OldImage"] = old_a
        body["SizeBytes"] = sum(
            item_size(body[part]) for part in ("Keys", "NewImage", "OldImage") if part in body
        )
        self.record = {
            "eventID": mock_random.uuid4().hex,
            "eventName": event_name,
            "eventSource": "aws:dynamodb",
            "eventVersion": STREAM_EVENT_VERSION,
            # AWS puts the table's region here; moto always says us-east-1
            # (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_Record.html).
            "awsRegion": getattr(table, "region_name", None) or "us-east-1",
            "dynamodb": body,
        }
        if event_name == "REMOVE" and deleting_for_ttl.get():
            self.record["userIdentity"] = dict(TTL_USER_IDENTITY)

    __init__._streamkit_sized = True  # type: ignore[attr-defined]
    record_cls.__init__ = __init__  # type: ignore[method-assign]

    shard_cls = table_models.StreamShard
    original_add: Callable[[Any, Any, Any], None] = shard_cls.add

    def add(self: Any, old: Any, new: Any) -> None:
        if _creating_for_update.get():
            return
        old_a, new_a = _images(old, new)
        if old is not None and new is not None and same_image(old_a, new_a):
            return
        token = _prepared.set((old, new, old_a, new_a))
        try:
            original_add(self, old, new)
        finally:
            _prepared.reset(token)

    shard_cls.add = add  # type: ignore[method-assign]

    table_cls = table_models.Table
    original_put: Callable[..., Any] = table_cls.put_item

    def put_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        # Only moto's UpdateItem calls Table.put_item directly while _in_update is set.
        if not _in_update.get():
            return original_put(self, *args, **kwargs)
        with _flag(_creating_for_update):
            return original_put(self, *args, **kwargs)

    table_cls.put_item = put_item  # type: ignore[method-assign]

    original_update: Callable[..., Any] = DynamoDBBackend.update_item

    def update_item(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _flag(_in_update):
            return original_update(self, *args, **kwargs)

    DynamoDBBackend.update_item = update_item  # type: ignore[method-assign]


def _images(old: Any, new: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """The attribute maps of both versions, from _prepared when add() rendered them."""
    prepared = _prepared.get()
    if prepared is not None and prepared[0] is old and prepared[1] is new:
        return prepared[2], prepared[3]
    return (
        old.to_json()["Attributes"] if old is not None else {},
        new.to_json()["Attributes"] if new is not None else {},
    )


@contextmanager
def _flag(var: contextvars.ContextVar[bool]) -> Iterator[None]:
    token = var.set(True)
    try:
        yield
    finally:
        var.reset(token)
