"""How ``streamkit tail`` renders records: images only when asked, keys and changed attribute
names always, values as faithful JSON."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from tests.helpers.stream_data import lambda_record

from streamkit.ops.tail_format import as_json, compact_json, format_line, jsonable
from streamkit.records import StreamRecord

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-05-01T00:00:00.000"
SECRET = "s3cr3t-card-number"


def record(
    event_name: str,
    *,
    new: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    keys: dict[str, Any] | None = None,
    view: str = "NEW_AND_OLD_IMAGES",
    **extra: Any,
) -> StreamRecord:
    raw = lambda_record(
        "100",
        keys=keys or {"pk": {"S": "order-1"}},
        event_name=event_name,
        new_image=new,
        old_image=old,
        created=1714564803.0,  # 2024-05-01T12:00:03Z
        event_id="e",
        size_bytes=10,
        view_type=view,
        arn=ARN,
        **extra,
    )
    return StreamRecord(raw)


ITEM = {"pk": {"S": "order-1"}, "card": {"S": SECRET}, "status": {"S": "NEW"}}
PAID = {**ITEM, "status": {"S": "PAID"}, "total": {"N": "12.50"}}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("7"), 7),
        (Decimal("1E+2"), 100),
        (Decimal("12.50"), 12.5),
        (Decimal("0.1"), 0.1),
        (Decimal("3.14159265358979323846264338327950288"), "3.14159265358979323846264338327950288"),
        (b"\x00\xff", "AP8="),
        ({Decimal("2"), Decimal("1")}, [1, 2]),
        ({"a": [Decimal("1.5"), None, True]}, {"a": [1.5, None, True]}),
    ],
)
def test_jsonable_keeps_values_exact(value: Any, expected: Any) -> None:
    assert jsonable(value) == expected
    json.dumps(jsonable(value))  # and it is JSON


def test_a_line_names_the_change_but_not_the_item() -> None:
    line = format_line(record("MODIFY", new=PAID, old=ITEM), images=False)
    assert line == (
        '2024-05-01T12:00:03Z  MODIFY  100  orders  {"pk":"order-1"}  changed: status,total'
    )
    assert SECRET not in line


def test_insert_and_remove_lines_have_no_changed_list() -> None:
    assert format_line(record("INSERT", new=ITEM), images=False) == (
        '2024-05-01T12:00:03Z  INSERT  100  orders  {"pk":"order-1"}'
    )
    assert format_line(record("REMOVE", old=ITEM), images=False).endswith(
        'REMOVE  100  orders  {"pk":"order-1"}'
    )


def test_images_are_printed_only_when_asked() -> None:
    line = format_line(record("MODIFY", new=PAID, old=ITEM), images=True)
    assert line.endswith(
        f'changed: status,total  new: {{"pk":"order-1","card":"{SECRET}","status":"PAID",'
        f'"total":12.5}}  old: {{"pk":"order-1","card":"{SECRET}","status":"NEW"}}'
    )


def test_modify_without_both_images_shows_no_changed_list() -> None:
    keys_only = record("MODIFY", view="KEYS_ONLY")
    assert "changed" not in format_line(keys_only, images=False)
    new_only = record("MODIFY", new=PAID, view="NEW_IMAGE")
    assert "changed" not in format_line(new_only, images=False)


def test_a_modify_that_changed_nothing_says_so() -> None:
    assert format_line(record("MODIFY", new=ITEM, old=ITEM), images=False).endswith(
        "changed: (nothing)"
    )


def test_ttl_deletes_are_marked() -> None:
    ttl = record(
        "REMOVE",
        old=ITEM,
        userIdentity={"type": "Service", "principalId": "dynamodb.amazonaws.com"},
    )
    assert "  REMOVE (TTL)  100  " in format_line(ttl, images=False)
    assert json.loads(as_json(ttl, shard_id="s", images=False))["ttl_delete"] is True


def test_composite_and_binary_keys_are_compact_json() -> None:
    keys = {"pk": {"B": "AP8="}, "sk": {"N": "5"}}
    line = format_line(record("INSERT", keys=keys), images=False)
    assert '  {"pk":"AP8=","sk":5}' in line


def test_json_lines_carry_images_only_when_asked() -> None:
    change = record("MODIFY", new=PAID, old=ITEM)
    hidden = json.loads(as_json(change, shard_id="shard-1", images=False))
    assert hidden == {
        "approximate_creation_time": "2024-05-01T12:00:03Z",
        "event_name": "MODIFY",
        "sequence_number": "100",
        "table_name": "orders",
        "shard_id": "shard-1",
        "keys": {"pk": "order-1"},
        "changed_attributes": ["status", "total"],
    }
    shown = json.loads(as_json(change, shard_id="shard-1", images=True))
    assert shown["new_image"] == {"pk": "order-1", "card": SECRET, "status": "PAID", "total": 12.5}
    assert shown["old_image"]["status"] == "NEW"


def test_an_unreadable_record_is_one_line_naming_the_problem() -> None:
    broken = record("UPSERT", new=ITEM)
    assert format_line(broken, images=False).startswith("100  unreadable record: ")
    assert "eventName" in format_line(broken, images=False)
    assert json.loads(as_json(broken, shard_id="s", images=False))["sequence_number"] == "100"
    no_sequence = StreamRecord({"eventName": "INSERT", "dynamodb": {}})
    assert format_line(no_sequence, images=False).startswith("?  unreadable record: ")


def test_compact_json_keeps_non_ascii() -> None:
    assert compact_json({"name": "Zoë"}) == '{"name":"Zoë"}'
