"""StreamRecord / parse_event: fields, lazy decoding, malformed records, item_key, changes."""

from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from tests.helpers.stream_data import lambda_record

import streamkit.records as records_module
from streamkit import codec
from streamkit.exceptions import (
    DeserializationError,
    ImageNotAvailableError,
    InvalidEventError,
    InvalidRecordError,
)
from streamkit.records import MISSING, StreamRecord, parse_event

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000"
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def make_record(
    seq: str = "111",
    *,
    event_name: str = "MODIFY",
    keys: dict[str, Any] | None = None,
    new: dict[str, Any] | None = None,
    old: dict[str, Any] | None = None,
    view: str = "NEW_AND_OLD_IMAGES",
    **extra: Any,
) -> dict[str, Any]:
    """A well-formed record whose every field the tests below check."""
    return lambda_record(
        seq,
        keys=keys if keys is not None else {"pk": {"S": "order#1"}},
        event_name=event_name,
        new_image=new,
        old_image=old,
        event_id=f"id-{seq}",
        size_bytes=123,
        view_type=view,
        arn=ARN,
        region="eu-west-1",
        **extra,
    )


def one(raw: Any, **kwargs: Any) -> StreamRecord:
    (record,) = parse_event({"Records": [raw]}, **kwargs)
    return record


NEW = {"pk": {"S": "order#1"}, "status": {"S": "PAID"}, "total": {"N": "12.50"}}
OLD = {"pk": {"S": "order#1"}, "status": {"S": "PENDING"}, "total": {"N": "12.5"}}


# --- fields -------------------------------------------------------------------------------


def test_every_field_of_a_well_formed_record() -> None:
    raw = make_record("4421584500000000017450439091", new=NEW, old=OLD)
    record = one(raw)
    assert record.error is None
    assert record.raw is raw
    assert record.event_id == "id-4421584500000000017450439091"
    assert record.event_name == "MODIFY"
    assert record.sequence_number == "4421584500000000017450439091"
    assert record.item_identifier == "4421584500000000017450439091"
    assert record.keys == {"pk": "order#1"}
    assert record.new_image == {"pk": "order#1", "status": "PAID", "total": Decimal("12.50")}
    assert record.old_image == {"pk": "order#1", "status": "PENDING", "total": Decimal("12.5")}
    assert record.approximate_creation_time == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert record.approximate_creation_time.tzinfo is UTC
    assert record.size_bytes == 123
    assert record.stream_view_type == "NEW_AND_OLD_IMAGES"
    assert record.event_source_arn == ARN
    assert record.aws_region == "eu-west-1"
    assert record.table_name == "orders"
    assert record.is_ttl_delete is False
    assert record.raw_keys is raw["dynamodb"]["Keys"]
    assert record.raw_new_image is raw["dynamodb"]["NewImage"]
    assert record.raw_old_image is raw["dynamodb"]["OldImage"]


def test_absent_images_are_none() -> None:
    record = one(make_record(event_name="INSERT", new=NEW, view="NEW_IMAGE"))
    assert record.old_image is None
    assert record.raw_old_image is None
    assert record.new_image is not None


def test_fractional_creation_time_keeps_its_fraction() -> None:
    raw = make_record()
    raw["dynamodb"]["ApproximateCreationDateTime"] = 1_700_000_000.25
    assert one(raw).approximate_creation_time == datetime(
        2023, 11, 14, 22, 13, 20, 250000, tzinfo=UTC
    )


def test_records_keep_stream_order() -> None:
    records = parse_event({"Records": [make_record(str(s)) for s in (5, 7, 9)]})
    assert [r.sequence_number for r in records] == ["5", "7", "9"]


def test_table_name_from_arn_and_its_absence() -> None:
    raw = make_record()
    raw["eventSourceARN"] = (
        "arn:aws:dynamodb:us-east-1:1:table/my-table.v2/stream/2024-05-01T00:00:00.000"
    )
    assert one(raw).table_name == "my-table.v2"
    del raw["eventSourceARN"]
    assert one(raw).event_source_arn is None
    assert one(raw).table_name is None
    raw["eventSourceARN"] = "arn:aws:sqs:us-east-1:1:queue"
    with pytest.raises(InvalidRecordError, match="eventSourceARN"):
        _ = one(raw).table_name


@pytest.mark.parametrize(
    ("event_name", "identity", "expected"),
    [
        ("REMOVE", TTL_IDENTITY, True),
        ("REMOVE", None, False),
        ("REMOVE", {"type": "Service", "principalId": "someone.amazonaws.com"}, False),
        ("REMOVE", {"type": "User", "principalId": "dynamodb.amazonaws.com"}, False),
        ("MODIFY", TTL_IDENTITY, False),
    ],
)
def test_is_ttl_delete(event_name: str, identity: dict[str, str] | None, expected: bool) -> None:
    extra: dict[str, Any] = {} if identity is None else {"userIdentity": identity}
    assert one(make_record(event_name=event_name, old=OLD, **extra)).is_ttl_delete is expected


def test_records_are_read_only() -> None:
    record = one(make_record())
    with pytest.raises(AttributeError):
        record.event_name = "INSERT"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        record.anything = 1  # type: ignore[attr-defined]


def test_repr_names_the_record_but_not_its_data() -> None:
    text = repr(one(make_record("42", new={"secret": {"S": "hunter2"}})))
    assert "42" in text and "MODIFY" in text
    assert "hunter2" not in text


# --- lazy, once ---------------------------------------------------------------------------


def test_images_are_decoded_lazily_and_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = codec.deserialize

    def counting(image: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(id(image))
        return real(image, **kwargs)

    monkeypatch.setattr(records_module, "deserialize", counting)
    raw = make_record(new=NEW, old=OLD)
    record = one(raw)
    assert calls == []  # construction decodes nothing
    first = record.new_image
    assert record.new_image is first
    assert calls == [id(raw["dynamodb"]["NewImage"])]
    _ = record.old_image, record.old_image, record.keys, record.keys
    assert len(calls) == 3


def test_numbers_mode_passes_through_to_the_codec() -> None:
    raw = make_record(new={"n": {"N": "5"}, "f": {"N": "0.5"}})
    assert one(raw).new_image == {"n": Decimal(5), "f": Decimal("0.5")}
    native = one(raw, numbers="native").new_image
    assert native is not None
    assert type(native["n"]) is int and native["n"] == 5
    assert type(native["f"]) is float and native["f"] == 0.5
    with pytest.raises(ValueError, match="numbers"):
        parse_event({"Records": []}, numbers="float")  # type: ignore[arg-type]


# --- malformed input ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [None, [], "Records", {}, {"Records": None}, {"Records": {"a": 1}}, {"records": []}],
    ids=repr,
)
def test_an_event_that_is_not_a_stream_event_raises(event: Any) -> None:
    with pytest.raises(InvalidEventError, match="not a DynamoDB stream event"):
        parse_event(event)


def test_empty_records_is_an_empty_batch() -> None:
    assert parse_event({"Records": []}) == []


def _without(path: tuple[str, ...]) -> dict[str, Any]:
    raw = make_record("500")
    target = raw
    for part in path[:-1]:
        target = target[part]
    del target[path[-1]]
    return raw


UNIDENTIFIABLE = [
    ("not an object", "just text", "<record>"),
    ("no body", _without(("dynamodb",)), "dynamodb"),
    ("body not an object", {**make_record("500"), "dynamodb": [1]}, "dynamodb"),
    ("no sequence number", _without(("dynamodb", "SequenceNumber")), "dynamodb.SequenceNumber"),
    ("empty sequence number", make_record(""), "dynamodb.SequenceNumber"),
    (
        "numeric sequence number",
        {**make_record(), "dynamodb": {**make_record()["dynamodb"], "SequenceNumber": 7}},
        "dynamodb.SequenceNumber",
    ),
]


@pytest.mark.parametrize(
    ("case", "raw", "field"), UNIDENTIFIABLE, ids=[b[0] for b in UNIDENTIFIABLE]
)
def test_an_unidentifiable_record_does_not_stop_the_others(case: str, raw: Any, field: str) -> None:
    good_before, good_after = make_record("100", new=NEW), make_record("900", new=NEW)
    records = parse_event({"Records": [good_before, raw, good_after]})
    assert len(records) == 3
    assert records[0].error is None and records[2].error is None
    assert (
        records[0].new_image
        == records[2].new_image
        == {
            "pk": "order#1",
            "status": "PAID",
            "total": Decimal("12.50"),
        }
    )
    broken = records[1]
    assert isinstance(broken.error, InvalidRecordError)
    assert broken.error.field == field
    assert broken.error.sequence_number is None
    assert broken.item_identifier == ""
    assert broken.raw is raw
    for name in ("sequence_number", "event_name", "new_image", "keys", "item_key", "table_name"):
        with pytest.raises(InvalidRecordError) as caught:
            getattr(broken, name)
        assert caught.value is broken.error
    assert "None" in repr(broken)


MALFORMED_ELSEWHERE = [
    ("unknown event name", {"eventName": "UPSERT"}, "event_name", "eventName"),
    ("unhashable event name", {"eventName": ["INSERT"]}, "event_name", "eventName"),
    ("no event name", {"eventName": None}, "event_name", "eventName"),
    ("no keys", {"Keys": None}, "raw_keys", "dynamodb.Keys"),
    ("empty keys", {"Keys": {}}, "keys", "dynamodb.Keys"),
    ("keys not a map", {"Keys": ["pk"]}, "item_key", "dynamodb.Keys"),
    ("no event id", {"eventID": None}, "event_id", "eventID"),
    ("ARN not a string", {"eventSourceARN": 5}, "table_name", "eventSourceARN"),
]


@pytest.mark.parametrize(
    ("case", "change", "read", "field"),
    MALFORMED_ELSEWHERE,
    ids=[m[0] for m in MALFORMED_ELSEWHERE],
)
def test_other_malformed_fields_raise_when_read(
    case: str, change: dict[str, Any], read: str, field: str
) -> None:
    raw = make_record("500", new=NEW)
    for name, value in change.items():
        container = raw if name[0].islower() else raw["dynamodb"]
        if value is None:
            del container[name]
        else:
            container[name] = value
    good = make_record("900", new=NEW)
    broken, after = parse_event({"Records": [raw, good]})
    assert broken.error is None  # identifiable: it gets its own failure, not the batch's
    assert broken.item_identifier == "500"
    with pytest.raises(InvalidRecordError) as caught:
        getattr(broken, read)
    assert (caught.value.field, caught.value.sequence_number) == (field, "500")
    with pytest.raises(InvalidRecordError):
        broken.validate()
    assert broken.new_image == after.new_image  # the rest of the record is still readable
    after.validate()


@pytest.mark.parametrize(
    ("field", "value", "read"),
    [
        ("ApproximateCreationDateTime", "yesterday", "approximate_creation_time"),
        ("ApproximateCreationDateTime", True, "approximate_creation_time"),
        ("ApproximateCreationDateTime", 10**20, "approximate_creation_time"),
        ("SizeBytes", "12", "size_bytes"),
        ("StreamViewType", 3, "stream_view_type"),
        ("NewImage", ["not", "a", "map"], "new_image"),
        ("OldImage", "x", "raw_old_image"),
    ],
)
def test_lazily_checked_fields_raise_when_read(field: str, value: Any, read: str) -> None:
    raw = make_record("77")
    raw["dynamodb"][field] = value
    record = one(raw)
    assert record.error is None  # the cheap structural check passes
    with pytest.raises(InvalidRecordError) as caught:
        getattr(record, read)
    assert caught.value.field == f"dynamodb.{field}"
    assert caught.value.sequence_number == "77"
    assert record.event_name == "MODIFY"  # the rest of the record is still readable


def test_missing_lazily_checked_field_raises_when_read() -> None:
    raw = _without(("dynamodb", "SizeBytes"))
    with pytest.raises(InvalidRecordError, match=r"dynamodb\.SizeBytes: missing"):
        _ = one(raw).size_bytes


def test_a_bad_image_value_raises_deserialization_error_only_when_read() -> None:
    record = one(make_record(new={"a": {"XX": "1"}}, old=OLD))
    assert record.old_image is not None
    with pytest.raises(DeserializationError):
        _ = record.new_image


# --- item_key -----------------------------------------------------------------------------


def test_item_key_is_canonical_json_of_sorted_typed_keys() -> None:
    record = one(make_record(keys={"sk": {"N": "5"}, "pk": {"S": "order#1"}}))
    assert record.item_key == '[["pk","S","order#1"],["sk","N","5"]]'
    assert json.loads(record.item_key) == [["pk", "S", "order#1"], ["sk", "N", "5"]]
    assert record.item_key is record.item_key  # cached


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"pk": {"S": "x"}, "sk": {"S": "y"}}, {"sk": {"S": "y"}, "pk": {"S": "x"}}),
        ({"pk": {"N": "1"}}, {"pk": {"N": "1.0"}}),
        ({"pk": {"N": "100"}}, {"pk": {"N": "1E+2"}}),
        ({"pk": {"N": "-0"}}, {"pk": {"N": "0.000"}}),
        ({"pk": {"N": "0.50"}}, {"pk": {"N": ".5"}}),
        ({"pk": {"N": "007"}}, {"pk": {"N": "7"}}),
        ({"pk": {"B": base64.b64encode(b"\x00\xff").decode()}}, {"pk": {"B": b"\x00\xff"}}),
    ],
)
def test_item_key_is_equal_for_the_same_item(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert one(make_record(keys=a)).item_key == one(make_record(keys=b)).item_key


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"pk": {"S": "1"}}, {"pk": {"N": "1"}}),
        ({"pk": {"S": "x"}}, {"pk": {"S": "X"}}),
        ({"pk": {"S": "x"}}, {"pk": {"S": "x"}, "sk": {"S": ""}}),
        ({"pk": {"S": "a"}, "sk": {"S": "b"}}, {"pk": {"S": "b"}, "sk": {"S": "a"}}),
        ({"pk": {"N": "1"}}, {"pk": {"N": "1.000001"}}),
        # Separators inside values must not let two different items collide.
        ({"pk": {"S": 'a","S","b'}}, {"pk": {"S": "a"}, "S": {"S": "b"}}),
    ],
)
def test_item_key_differs_for_different_items(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert one(make_record(keys=a)).item_key != one(make_record(keys=b)).item_key


@pytest.mark.parametrize(
    "keys",
    [
        {"pk": {"M": {}}},
        {"pk": {"N": "abc"}},
        {"pk": {"N": "NaN"}},
        {"pk": "x"},
        {"pk": {"B": "!!"}},
    ],
    ids=repr,
)
def test_unusable_keys_raise_invalid_record_error(keys: dict[str, Any]) -> None:
    record = one(make_record("31", keys=keys))
    with pytest.raises(InvalidRecordError) as caught:
        _ = record.item_key
    assert caught.value.field == "dynamodb.Keys.pk"
    assert caught.value.sequence_number == "31"


def test_item_key_survives_other_breakage() -> None:
    """A record broken elsewhere still names its item (per_key ordering relies on it)."""
    record = one(make_record("31", event_name="BOGUS", keys={"pk": {"S": "k"}}))
    with pytest.raises(InvalidRecordError):
        _ = record.event_name
    assert record.item_key == '[["pk","S","k"]]'


def test_item_key_is_the_same_in_another_process() -> None:
    """No hash randomization: another interpreter with another PYTHONHASHSEED agrees."""
    keys = {"pk": {"S": "ünïcødé#1"}, "n": {"N": "12.50"}, "b": {"B": "AAEC"}}
    script = (
        "import json, sys\n"
        "from streamkit.records import parse_event\n"
        "keys = json.loads(sys.argv[1])\n"
        "rec = {'eventName': 'INSERT', 'dynamodb': {'Keys': keys, 'SequenceNumber': '1'}}\n"
        "sys.stdout.write(parse_event({'Records': [rec]})[0].item_key)\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script, json.dumps(keys)],
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONIOENCODING": "utf-8"},
            capture_output=True,
            text=True,
            encoding="utf-8",
            check=True,
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {one(make_record(keys=keys)).item_key}


@settings(max_examples=150, deadline=None)
@given(
    a=st.decimals(
        allow_nan=False, allow_infinity=False, places=None, min_value=-(10**30), max_value=10**30
    ),
    b=st.decimals(
        allow_nan=False, allow_infinity=False, places=None, min_value=-(10**30), max_value=10**30
    ),
)
def test_number_keys_are_equal_exactly_when_the_numbers_are(a: Decimal, b: Decimal) -> None:
    # DynamoDB numbers carry at most 38 significant digits; wider texts never reach a stream,
    # and the canonical key form is only defined for valid numbers.
    assume(all(len(n.normalize().as_tuple().digits) <= 38 for n in (a, b)))
    key_a = one(make_record(keys={"pk": {"N": str(a)}})).item_key
    key_b = one(make_record(keys={"pk": {"N": str(b)}})).item_key
    assert (key_a == key_b) == (a == b)


# --- changes ------------------------------------------------------------------------------


def test_changed_attributes_compares_meaning_not_spelling() -> None:
    old = {
        "pk": {"S": "o1"},
        "same_number": {"N": "12.50"},
        "same_set": {"SS": ["a", "b"]},
        "same_numbers": {"NS": ["1", "2.0"]},
        "same_binary": {"B": base64.b64encode(b"xy").decode()},
        "nested": {"M": {"a": {"L": [{"N": "1"}, {"S": "x"}]}}},
        "status": {"S": "PENDING"},
        "flag": {"N": "1"},
        "removed": {"S": "bye"},
        "deep": {"M": {"a": {"L": [{"N": "1"}]}}},
    }
    new = copy.deepcopy(old)
    new["same_number"] = {"N": "12.5"}
    new["same_set"] = {"SS": ["b", "a"]}
    new["same_numbers"] = {"NS": ["2", "1"]}
    new["same_binary"] = {"B": b"xy"}
    new["status"] = {"S": "PAID"}
    new["flag"] = {"BOOL": True}  # a type change, even though True == 1 in Python
    del new["removed"]
    new["added"] = {"NULL": True}
    new["deep"] = {"M": {"a": {"L": [{"N": "2"}]}}}
    record = one(make_record(new=new, old=old))
    assert record.changed_attributes() == {"status", "flag", "removed", "added", "deep"}
    changes = record.changes()
    assert list(changes) == sorted(changes)
    assert changes["status"] == ("PENDING", "PAID")
    assert changes["flag"] == (Decimal(1), True)
    assert changes["removed"] == ("bye", MISSING)
    assert changes["added"] == (MISSING, None)
    assert changes["deep"] == ({"a": [Decimal(1)]}, {"a": [Decimal(2)]})


def test_changes_of_insert_and_remove() -> None:
    insert = one(make_record(event_name="INSERT", new=NEW))
    assert insert.changed_attributes() == set(NEW)
    assert insert.changes()["status"] == (MISSING, "PAID")
    remove = one(make_record(event_name="REMOVE", old=OLD))
    assert remove.changed_attributes() == set(OLD)
    assert remove.changes()["status"] == ("PENDING", MISSING)


def test_an_unchanged_modify_has_no_changes() -> None:
    assert one(make_record(new=NEW, old=copy.deepcopy(NEW))).changed_attributes() == frozenset()


@pytest.mark.parametrize(
    ("event_name", "view", "new", "old", "missing"),
    [
        ("MODIFY", "NEW_IMAGE", NEW, None, "OldImage"),
        ("MODIFY", "OLD_IMAGE", None, OLD, "NewImage"),
        ("INSERT", "KEYS_ONLY", None, None, "NewImage"),
        ("REMOVE", "KEYS_ONLY", None, None, "OldImage"),
    ],
)
def test_changes_need_the_images(
    event_name: str, view: str, new: Any, old: Any, missing: str
) -> None:
    record = one(make_record("8", event_name=event_name, new=new, old=old, view=view))
    with pytest.raises(ImageNotAvailableError) as caught:
        record.changed_attributes()
    assert (caught.value.image, caught.value.stream_view_type) == (missing, view)


def test_missing_is_falsy_and_distinct_from_none() -> None:
    assert not MISSING
    assert MISSING is not None
    assert repr(MISSING) == "MISSING"


def test_validate_accepts_a_well_formed_record_of_each_kind() -> None:
    one(make_record(event_name="INSERT", new=NEW, view="NEW_IMAGE")).validate()
    one(make_record(event_name="REMOVE", old=OLD, userIdentity=TTL_IDENTITY)).validate()
    one(make_record(event_name="MODIFY", view="KEYS_ONLY")).validate()


class _CountingDict(dict[str, Any]):
    reads: list[str] = []

    def __getitem__(self, key: str) -> Any:
        _CountingDict.reads.append(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        _CountingDict.reads.append(key)
        return super().get(key, default)


def test_construction_reads_nothing_from_the_record() -> None:
    """The no-op batch cost depends on it (see the module docstring)."""
    raw = make_record("9", new=NEW)
    counting = _CountingDict(raw)
    counting["dynamodb"] = _CountingDict(raw["dynamodb"])
    _CountingDict.reads = []
    (record,) = parse_event({"Records": [counting]})
    assert _CountingDict.reads == []
    assert record.sequence_number == "9"
    assert _CountingDict.reads == ["dynamodb", "SequenceNumber"]
    _ = record.sequence_number, record.item_identifier, record.error
    assert _CountingDict.reads == ["dynamodb", "SequenceNumber"]  # identified once
