"""Deterministic generators of realistic Lambda DynamoDB stream events, for benchmarks and tests.

Every generator takes ``seed`` and returns the same event for the same arguments, so figures
from different runs and different benchmarks describe the same input.

Events have the full envelope Lambda delivers
(https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html#services-dynamodb-event-example)::

    {"Records": [{"eventID", "eventName", "eventVersion", "eventSource": "aws:dynamodb",
                  "awsRegion", "dynamodb": {"ApproximateCreationDateTime", "Keys",
                  "NewImage"?, "OldImage"?, "SequenceNumber", "SizeBytes", "StreamViewType"},
                  "eventSourceARN", "userIdentity"? (TTL deletes only)}]}

Events are JSON round-tripped, so they are made of what ``json.loads`` produces, as a handler
receives them. Images are DynamoDB JSON: numbers are strings, binary values are base64
strings, sets are lists.

Public helpers:

- ``orders_event(n=1000, seed=0)``: the "orders batch", realistic e-commerce orders
  (28 attributes, nested maps and lists, SS/NS/BS sets, binary, NULL, BOOL), with an
  INSERT / MODIFY / REMOVE mix and a few TTL deletes.
- ``tiny_event(n=1000, seed=0)``: counters with 3 attributes each.
- ``large_event(n=10, seed=0)``: items of about 100 KB each (long lists of maps).
- ``orders_items`` / ``tiny_items`` / ``large_items``: the same items as plain Python values
  (Decimal, bytes, set, list, dict), e.g. to benchmark serialization.
- ``lambda_record`` (images in DynamoDB JSON) / ``numbered_record`` / ``stream_record`` (plain items, encoded) /
  ``make_event`` / ``to_attribute_value`` / ``sequence_number``: build your own.
  ``lambda_record`` is the one builder of a stream record in the tests: every other helper
  that makes one calls it.

This module deliberately does not import streamkit: the input must not depend on the code
being measured.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

__all__ = [
    "REGION",
    "lambda_record",
    "large_event",
    "large_item",
    "large_items",
    "make_event",
    "numbered_record",
    "order_item",
    "orders_event",
    "orders_items",
    "sequence_number",
    "stream_arn",
    "stream_record",
    "tiny_event",
    "tiny_item",
    "tiny_items",
    "to_attribute_value",
]

REGION = "us-east-1"
ACCOUNT = "123456789012"
BASE_EPOCH = 1_700_000_000  # 2023-11-14T22:13:20Z; records advance one second each
# Sequence numbers are decimal strings that grow along a shard; AWS's are ~21-40 digits.
BASE_SEQUENCE = 4_421_584_500_000_000_017_450_439_091

# What share of records is INSERT / MODIFY / REMOVE in the orders batch.
EVENT_MIX = (("INSERT", 0.35), ("MODIFY", 0.5), ("REMOVE", 0.15))
# Among REMOVEs, the share deleted by DynamoDB TTL rather than by a user.
TTL_DELETE_SHARE = 0.5

# TTL deletes carry this identity:
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-streams.html
TTL_USER_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}

_STATUSES = ("PENDING", "PAID", "PACKED", "SHIPPED", "DELIVERED", "CANCELLED")
_CURRENCIES = ("USD", "EUR", "GBP", "JPY")
_CHANNELS = ("web", "ios", "android", "pos")
_CITIES = (
    ("Seattle", "WA", "US"),
    ("Berlin", "BE", "DE"),
    ("London", "LDN", "GB"),
    ("Tokyo", "13", "JP"),
    ("Austin", "TX", "US"),
)
_WORDS = (
    "alpine",
    "basalt",
    "cedar",
    "delta",
    "ember",
    "fjord",
    "granite",
    "harbor",
    "indigo",
    "juniper",
    "kelp",
    "lumen",
)
_TAGS = ("gift", "express", "fragile", "vip", "first-order", "b2b", "subscription", "promo")


# --- DynamoDB JSON (Lambda event form) ---------------------------------------------------


def to_attribute_value(value: Any) -> dict[str, Any]:
    """Encode one Python value as DynamoDB JSON the way a Lambda event carries it.

    Binary becomes base64 text and set members are sorted (so the event is deterministic).
    """
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, int | Decimal):
        return {"N": str(value)}
    if isinstance(value, bytes):
        return {"B": base64.b64encode(value).decode("ascii")}
    if isinstance(value, set | frozenset):
        members = sorted(value)
        first = members[0]
        if isinstance(first, str):
            return {"SS": members}
        if isinstance(first, bytes):
            return {"BS": [base64.b64encode(m).decode("ascii") for m in members]}
        return {"NS": [str(m) for m in members]}
    if isinstance(value, list | tuple):
        return {"L": [to_attribute_value(v) for v in value]}
    if isinstance(value, Mapping):
        return {"M": {k: to_attribute_value(v) for k, v in value.items()}}
    raise TypeError(f"cannot encode {type(value).__name__}")


def _image(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: to_attribute_value(v) for k, v in item.items()}


# --- envelope -----------------------------------------------------------------------------


def stream_arn(table: str = "orders") -> str:
    return f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{table}/stream/2023-11-14T00:00:00.000"


def sequence_number(i: int) -> str:
    """The ``i``-th sequence number of a shard: longer than a 64-bit integer, as AWS's are, and
    numerically ordered by ``i`` (``i * 10`` leaves room to insert between two)."""
    return str(49_000_000_000_000_000_000_000 + i * 10)


def lambda_record(
    sequence: int | str,
    *,
    keys: Mapping[str, Any],
    event_name: str = "MODIFY",
    new_image: Mapping[str, Any] | None = None,
    old_image: Mapping[str, Any] | None = None,
    created: float = BASE_EPOCH,
    event_id: str | None = None,
    size_bytes: int | None = None,
    view_type: str = "NEW_AND_OLD_IMAGES",
    arn: str | None = None,
    region: str = REGION,
    ttl_delete: bool = False,
    **extra: Any,
) -> dict[str, Any]:
    """One stream record as Lambda delivers it: the one builder the tests and benchmarks share.

    ``keys`` and the images are DynamoDB JSON (``to_attribute_value`` encodes plain values);
    ``sequence`` is the SequenceNumber (``sequence_number(i)`` gives AWS-like ones);
    ``created`` is ApproximateCreationDateTime in epoch seconds. ``event_id`` defaults to
    ``ev-<sequence>``, ``size_bytes`` to the JSON length of the keys and images, ``arn`` to
    :func:`stream_arn`. ``extra`` adds (or replaces) top-level fields.
    """
    ddb: dict[str, Any] = {"ApproximateCreationDateTime": created, "Keys": dict(keys)}
    if new_image is not None:
        ddb["NewImage"] = dict(new_image)
    if old_image is not None:
        ddb["OldImage"] = dict(old_image)
    ddb["SequenceNumber"] = str(sequence)
    if size_bytes is None:
        # SizeBytes is the size of the stream record's images; JSON length is a fair stand-in.
        images = [ddb.get("Keys"), ddb.get("NewImage"), ddb.get("OldImage")]
        size_bytes = len(json.dumps(images))
    ddb["SizeBytes"] = size_bytes
    ddb["StreamViewType"] = view_type
    record: dict[str, Any] = {
        "eventID": event_id if event_id is not None else f"ev-{sequence}",
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": ddb,
        "eventSourceARN": arn if arn is not None else stream_arn(),
    }
    if ttl_delete:
        record["userIdentity"] = dict(TTL_USER_IDENTITY)
    record.update(extra)
    return record


def numbered_record(
    i: int,
    key: str = "",
    *,
    event_name: str = "MODIFY",
    image: Mapping[str, Any] | None = None,
    created: float | None = None,
    arn: str | None = None,
) -> dict[str, Any]:
    """Record ``i`` of a shard, the shape most tests want: a change of item ``key`` (default
    ``item-<i>``) whose NewImage holds ``pk``, ``i`` and ``image`` (DynamoDB JSON); eventID
    ``ev-<i>``, SequenceNumber ``sequence_number(i)``, created ``BASE_EPOCH + i``."""
    key = key or f"item-{i}"
    return lambda_record(
        sequence_number(i),
        keys={"pk": {"S": key}},
        event_name=event_name,
        new_image={"pk": {"S": key}, "i": {"N": str(i)}, **(image or {})},
        created=BASE_EPOCH + i if created is None else created,
        event_id=f"ev-{i}",
        size_bytes=40,
        arn=arn,
    )


def stream_record(
    *,
    event_name: str,
    keys: Mapping[str, Any],
    new_item: Mapping[str, Any] | None,
    old_item: Mapping[str, Any] | None,
    index: int,
    rng: random.Random,
    table: str = "orders",
    view_type: str = "NEW_AND_OLD_IMAGES",
    ttl_delete: bool = False,
) -> dict[str, Any]:
    """One generated record; items are plain Python, encoded here, and kept as the view
    type keeps them.

    ``index`` orders records: it sets the sequence number and the creation time.
    """
    keep_new = new_item is not None and view_type in ("NEW_IMAGE", "NEW_AND_OLD_IMAGES")
    keep_old = old_item is not None and view_type in ("OLD_IMAGE", "NEW_AND_OLD_IMAGES")
    return lambda_record(
        BASE_SEQUENCE + index * 100,
        keys=_image(keys),
        event_name=event_name,
        new_image=_image(new_item) if keep_new and new_item is not None else None,
        old_image=_image(old_item) if keep_old and old_item is not None else None,
        created=BASE_EPOCH + index,
        event_id=f"{rng.getrandbits(128):032x}",
        view_type=view_type,
        arn=stream_arn(table),
        ttl_delete=ttl_delete,
    )


def make_event(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The event as the Lambda runtime hands it to a handler: parsed from JSON.

    The JSON round trip matters for benchmarks: it gives the dicts, strings and key
    sharing that ``json.loads`` produces, not those of Python literals.
    """
    event: dict[str, Any] = json.loads(json.dumps({"Records": records}))
    return event


def _pick_event_name(rng: random.Random) -> str:
    roll = rng.random()
    for name, share in EVENT_MIX:
        if roll < share:
            return name
        roll -= share
    return EVENT_MIX[-1][0]


def _event_from_items(
    n: int,
    seed: int,
    make_item: Callable[[random.Random, int], dict[str, Any]],
    key_names: tuple[str, ...],
    table: str,
) -> dict[str, Any]:
    """Records over ``make_item``'s items with the INSERT/MODIFY/REMOVE mix.

    Items come from their own ``Random(seed)``, so ``*_items(n, seed)`` returns exactly the
    items in the event (NewImage of INSERT/MODIFY, OldImage of REMOVE).
    """
    item_rng = random.Random(seed)
    rng = random.Random(f"envelope-{seed}")
    records = []
    for i in range(n):
        item = make_item(item_rng, i)
        keys = {k: item[k] for k in key_names}
        name = _pick_event_name(rng)
        ttl_delete = False
        if name == "INSERT":
            new, old = item, None
        elif name == "MODIFY":
            new, old = item, _previous_version(rng, item)
        else:
            new, old = None, item
            ttl_delete = rng.random() < TTL_DELETE_SHARE
        records.append(
            stream_record(
                event_name=name,
                keys=keys,
                new_item=new,
                old_item=old,
                index=i,
                rng=rng,
                table=table,
                ttl_delete=ttl_delete,
            )
        )
    return make_event(records)


def _previous_version(rng: random.Random, item: dict[str, Any]) -> dict[str, Any]:
    """The item as it was before a MODIFY: an older status and version, one line fewer."""
    old = dict(item)
    if "status" in old:
        old["status"] = rng.choice(_STATUSES)
    if "version" in old:
        old["version"] = max(1, old["version"] - 1)
    if isinstance(old.get("lines"), list) and len(old["lines"]) > 1:
        old["lines"] = old["lines"][:-1]
    if "count" in old:
        old["count"] = old["count"] - 1
    return old


# --- orders -------------------------------------------------------------------------------


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    """A price with two decimals, trailing zeros kept (e.g. 12.50) as a shop stores it."""
    cents = rng.randint(low * 100, high * 100)
    return Decimal(f"{cents // 100}.{cents % 100:02d}")


def _address(rng: random.Random) -> dict[str, Any]:
    city, region, country = rng.choice(_CITIES)
    return {
        "line1": f"{rng.randint(1, 9999)} {rng.choice(_WORDS).title()} Street",
        "line2": None if rng.random() < 0.7 else f"Apt {rng.randint(1, 400)}",
        "city": city,
        "region": region,
        "postal_code": f"{rng.randint(10000, 99999)}",
        "country": country,
        "geo": {
            "lat": Decimal(f"{rng.uniform(-60, 60):.6f}"),
            "lon": Decimal(f"{rng.uniform(-170, 170):.6f}"),
        },
    }


def _order_line(rng: random.Random, n: int) -> dict[str, Any]:
    qty = rng.randint(1, 5)
    unit = _money(rng, 2, 300)
    return {
        "line_no": n,
        "sku": f"SKU-{rng.randint(100000, 999999)}",
        "name": f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS)}",
        "qty": qty,
        "unit_price": unit,
        "discount": Decimal("0.00") if rng.random() < 0.7 else _money(rng, 1, 10),
        "in_stock": rng.random() < 0.9,
        "attributes": {"color": rng.choice(_WORDS), "size": rng.choice(("S", "M", "L", "XL"))},
    }


def order_item(rng: random.Random, index: int) -> dict[str, Any]:
    """A realistic order (28 top-level attributes) as plain Python values."""
    lines = [_order_line(rng, n) for n in range(1, rng.randint(1, 6) + 1)]
    subtotal = sum((ln["unit_price"] * ln["qty"] - ln["discount"] for ln in lines), Decimal(0))
    tax = (subtotal * Decimal("0.0825")).quantize(Decimal("0.01"))
    shipping = Decimal("0.00") if subtotal > 50 else Decimal("5.99")
    created = BASE_EPOCH + index
    shipping_address = _address(rng)
    return {
        "pk": f"ORDER#{index:08d}",
        "sk": "ORDER",
        "order_id": f"{rng.getrandbits(64):016x}",
        "customer_id": f"CUST#{rng.randint(1, 50000):06d}",
        "customer_email": f"{rng.choice(_WORDS)}.{rng.randint(1, 999)}@example.com",
        "status": rng.choice(_STATUSES),
        "channel": rng.choice(_CHANNELS),
        "currency": rng.choice(_CURRENCIES),
        "created_at": f"2023-11-14T{index // 3600 % 24:02d}:{index // 60 % 60:02d}:{index % 60:02d}Z",
        "created_at_ms": created * 1000 + rng.randint(0, 999),
        "version": rng.randint(1, 12),
        "subtotal": subtotal,
        "tax": tax,
        "shipping": shipping,
        "total": subtotal + tax + shipping,
        "item_count": sum(ln["qty"] for ln in lines),
        "lines": lines,
        "shipping_address": shipping_address,
        "billing_address": shipping_address if rng.random() < 0.6 else _address(rng),
        "payment": {
            "method": rng.choice(("card", "paypal", "gift_card")),
            "last4": f"{rng.randint(0, 9999):04d}",
            "captured": rng.random() < 0.8,
            "auth_code": None if rng.random() < 0.2 else f"A{rng.randint(100000, 999999)}",
        },
        "tags": set(rng.sample(_TAGS, rng.randint(1, 3))),
        "promo_ids": {rng.randint(1, 500) for _ in range(rng.randint(1, 3))},
        "fraud_score": Decimal(f"0.{rng.randint(0, 9999):04d}"),
        "gift": rng.random() < 0.1,
        "gift_message": None,
        "checksum": rng.randbytes(16),
        "attachments": {rng.randbytes(8) for _ in range(rng.randint(1, 2))},
        "expires_at": created + 90 * 86400,
    }


def orders_items(n: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    """The orders batch's items as plain Python (the NewImage/OldImage source values)."""
    rng = random.Random(seed)
    return [order_item(rng, i) for i in range(n)]


def orders_event(n: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The "orders batch": ``n`` order records, INSERT/MODIFY/REMOVE mixed, NEW_AND_OLD_IMAGES."""
    return _event_from_items(n, seed, order_item, ("pk", "sk"), "orders")


# --- tiny ---------------------------------------------------------------------------------


def tiny_item(rng: random.Random, index: int) -> dict[str, Any]:
    """A page-view counter: the smallest realistic item (3 attributes)."""
    return {"id": f"page-{index}", "count": rng.randint(1, 10_000), "path": f"/p/{index}"}


def tiny_items(n: int = 1000, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [tiny_item(rng, i) for i in range(n)]


def tiny_event(n: int = 1000, seed: int = 0) -> dict[str, Any]:
    return _event_from_items(n, seed, tiny_item, ("id",), "counters")


# --- large --------------------------------------------------------------------------------

LARGE_ITEM_LINES = 320  # with the audit trail, about 100 KB of DynamoDB JSON per item


def large_item(rng: random.Random, index: int) -> dict[str, Any]:
    """A bulky order (~100 KB in DynamoDB JSON): hundreds of lines plus an audit trail."""
    item = order_item(rng, index)
    item["lines"] = [_order_line(rng, n) for n in range(1, LARGE_ITEM_LINES + 1)]
    item["item_count"] = sum(ln["qty"] for ln in item["lines"])
    item["audit"] = [
        {"at": BASE_EPOCH + index + k, "by": rng.choice(_WORDS), "op": rng.choice(_STATUSES)}
        for k in range(100)
    ]
    item["sku_set"] = {ln["sku"] for ln in item["lines"]}
    return item


def large_items(n: int = 10, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [large_item(rng, i) for i in range(n)]


def large_event(n: int = 10, seed: int = 0) -> dict[str, Any]:
    return _event_from_items(n, seed, large_item, ("pk", "sk"), "orders")
