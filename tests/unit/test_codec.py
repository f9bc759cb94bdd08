"""streamkit.codec: every type, the exactness rules, and every error with its path."""

from __future__ import annotations

import base64
import enum
from collections import OrderedDict
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import pytest

from streamkit import codec
from streamkit.codec import deserialize, deserialize_value, serialize, serialize_value
from streamkit.codec._checked import checked_map
from streamkit.codec._walker import Deserializer
from streamkit.exceptions import DeserializationError, SerializationError

# Every test here runs once with the pure-Python fast deserializer and once with the native
# (mypyc-compiled) one; serialize tests simply run twice.
pytestmark = pytest.mark.usefixtures("each_walker")

MAX_NUMBER = "9.9999999999999999999999999999999999999E+125"
DIGITS_38 = "12345678901234567890123456789012345678"


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# --- deserialize: types ----------------------------------------------------------------------


def test_every_type_deserializes_to_its_python_value() -> None:
    image = {
        "s": {"S": "héllo"},
        "empty_s": {"S": ""},
        "n": {"N": "42"},
        "b": {"B": b64(b"\x00\xffbin")},
        "bool": {"BOOL": False},
        "null": {"NULL": True},
        "ss": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "bs": {"BS": [b64(b"x"), b64(b"y")]},
        "l": {"L": [{"S": "x"}, {"N": "1"}, {"L": []}, {"M": {}}]},
        "m": {"M": {"inner": {"M": {"deep": {"BOOL": True}}}}},
    }
    assert deserialize(image) == {
        "s": "héllo",
        "empty_s": "",
        "n": Decimal("42"),
        "b": b"\x00\xffbin",
        "bool": False,
        "null": None,
        "ss": {"a", "b"},
        "ns": {Decimal("1"), Decimal("2.5")},
        "bs": {b"x", b"y"},
        "l": ["x", Decimal("1"), [], {}],
        "m": {"inner": {"deep": True}},
    }


def test_numbers_are_decimals_and_binary_is_bytes() -> None:
    result = deserialize({"n": {"N": "7"}, "b": {"B": b64(b"z")}, "ns": {"NS": ["3"]}})
    assert type(result["n"]) is Decimal
    assert type(result["b"]) is bytes
    assert [type(m) for m in result["ns"]] == [Decimal]


def test_binary_given_as_raw_bytes_is_taken_as_is() -> None:
    # The boto3 low-level client returns B/BS values as bytes, not base64 text.
    image = {"b": {"B": b"raw"}, "ba": {"B": bytearray(b"arr")}, "bs": {"BS": [b"p", b"q"]}}
    result = deserialize(image)
    assert result == {"b": b"raw", "ba": b"arr", "bs": {b"p", b"q"}}
    assert type(result["ba"]) is bytes


def test_empty_binary_is_allowed() -> None:
    assert deserialize({"b": {"B": ""}}) == {"b": b""}


def test_image_order_is_kept() -> None:
    image = {k: {"S": k} for k in ("z", "a", "m", "b")}
    assert list(deserialize(image)) == ["z", "a", "m", "b"]


def test_input_is_not_modified() -> None:
    image = {"m": {"M": {"l": {"L": [{"N": "1"}]}}}, "s": {"SS": ["x"]}}
    snapshot = repr(image)
    deserialize(image)
    assert repr(image) == snapshot


def test_unusual_but_valid_containers_take_the_checked_path_and_agree() -> None:
    class Text(str):
        pass

    class Items(list[Any]):
        pass

    image = MappingProxyType(
        {
            "sub_str": {"S": Text("t")},
            "proxy_map": {"M": MappingProxyType({"k": {"N": "1"}})},
            "ordered": {"M": OrderedDict(a={"BOOL": True})},
            "sub_list": {"L": Items([{"S": "x"}])},
        }
    )
    result = deserialize(image)
    assert result == {
        "sub_str": "t",
        "proxy_map": {"k": Decimal(1)},
        "ordered": {"a": True},
        "sub_list": ["x"],
    }
    assert type(result["sub_str"]) is str


# --- deserialize: number exactness -----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "1E+40",
        DIGITS_38,
        "-" + DIGITS_38,
        "0." + DIGITS_38,
        "1E-130",
        "-1E-130",
        MAX_NUMBER,
        "-" + MAX_NUMBER,
        "-0",
        "1.50",
        "0.00",
        "100",
        "1.2345E+5",
        "0E+200",  # zero, whatever its exponent
    ],
)
def test_valid_numbers_keep_their_exact_text(text: str) -> None:
    value = deserialize_value({"N": text})
    assert type(value) is Decimal
    assert str(value) == str(Decimal(text))  # same digits and exponent, not normalized
    assert value.as_tuple() == Decimal(text).as_tuple()


def test_trailing_zeros_and_exponents_are_not_normalized() -> None:
    assert str(deserialize_value({"N": "1.50"})) == "1.50"
    assert str(deserialize_value({"N": "1E+40"})) == "1E+40"
    assert str(deserialize_value({"N": "-0"})) == "-0"


@pytest.mark.parametrize(
    "text",
    [
        "1" + "0" * 40,  # 41 digits, but trailing zeros do not count: 1 significant digit
        DIGITS_38 + "000",
        "0." + "0" * 60 + "1",  # 1E-61: leading zeros do not count either
    ],
)
def test_long_texts_with_at_most_38_significant_digits_are_valid(text: str) -> None:
    value = deserialize_value({"N": text})
    assert value == Decimal(text)
    assert value.as_tuple() == Decimal(text).as_tuple()


@pytest.mark.parametrize(("text", "expected"), [(".5", "0.5"), ("5.", "5"), ("+7", "7")])
def test_lenient_but_unambiguous_number_forms_are_read(text: str, expected: str) -> None:
    assert str(deserialize_value({"N": text})) == expected


def test_short_numbers_read_many_times_stay_exact() -> None:
    # Short numbers are remembered after their first conversion: repeats must not differ.
    image = {f"k{i}": {"N": t} for i, t in enumerate(["0", "0.0", "0.00", "-0", "1", "1.0"] * 3)}
    first = deserialize(image)
    second = deserialize(image)
    assert [str(v) for v in first.values()] == [str(v) for v in second.values()]
    assert [str(v) for v in first.values()][:6] == ["0", "0.0", "0.00", "-0", "1", "1.0"]


# --- deserialize: native numbers --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", 42),
        ("-7", -7),
        ("-0", 0),
        ("2.0", 2),
        ("2.", 2),
        ("1E+3", 1000),
        ("1E+40", 10**40),
        ("1" + "0" * 40, 10**40),
        ("1.50", 1.5),
        ("-0.25", -0.25),
        ("1E-130", 1e-130),
        (DIGITS_38, 12345678901234567890123456789012345678),
    ],
)
def test_native_numbers_are_int_when_integral_else_float(text: str, expected: int | float) -> None:
    value = deserialize_value({"N": text}, numbers="native")
    assert value == expected
    assert type(value) is type(expected)


def test_native_mode_applies_to_sets_lists_and_maps() -> None:
    image = {"ns": {"NS": ["1", "1.5"]}, "l": {"L": [{"N": "3"}]}, "m": {"M": {"x": {"N": "0.5"}}}}
    assert deserialize(image, numbers="native") == {"ns": {1, 1.5}, "l": [3], "m": {"x": 0.5}}


def test_native_mode_still_rejects_invalid_numbers() -> None:
    with pytest.raises(DeserializationError) as info:
        deserialize({"q": {"N": "1E+126"}}, numbers="native")
    assert info.value.path == "q"


def test_unknown_number_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="numbers must be"):
        deserialize({}, numbers="float")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="numbers must be"):
        deserialize_value({"N": "1"}, numbers="int")  # type: ignore[arg-type]


# --- deserialize: errors name the path ------------------------------------------------------


def _error(image: Any) -> DeserializationError:
    with pytest.raises(DeserializationError) as info:
        deserialize(image)
    return info.value


@pytest.mark.parametrize(
    ("av", "reason"),
    [
        ({"X": "1"}, "unknown type tag 'X'"),
        ({"s": "1"}, "unknown type tag 's'"),
        ({"S": "x", "N": "1"}, "expected exactly one type tag, got 2: 'S', 'N'"),
        ({}, "expected exactly one type tag, got 0: none"),
        ("S", "expected an attribute value (a mapping with one type tag), got str"),
        ({"S": 5}, "S value must be a string, got int"),
        ({"S": None}, "S value must be a string, got NoneType"),
        ({"N": 5}, "N value: a number must be a string, got int"),
        ({"N": 1.5}, "N value: a number must be a string, got float"),
        ({"N": ""}, "N value: '' is not a number"),
        ({"N": "abc"}, "N value: 'abc' is not a number"),
        ({"N": "1-2"}, "N value: '1-2' is not a number"),
        ({"N": "1.2.3"}, "N value: '1.2.3' is not a number"),
        ({"N": " 1"}, "N value: ' 1' is not a number"),
        ({"N": "1 "}, "N value: '1 ' is not a number"),
        ({"N": "1_000"}, "N value: '1_000' is not a number"),
        ({"N": "\u0661\u0662"}, "is not a number"),  # Arabic-Indic digits: Decimal takes them
        ({"N": "-"}, "N value: '-' is not a number"),
        ({"N": "NaN"}, "N value: 'NaN' is not a valid DynamoDB number (NaN and Infinity"),
        ({"N": "-Infinity"}, "N value: '-Infinity' is not a valid DynamoDB number"),
        ({"N": "inf"}, "N value: 'inf' is not a valid DynamoDB number"),
        ({"N": "sNaN"}, "N value: 'sNaN' is not a valid DynamoDB number"),
        ({"N": "1" * 39}, "has 39 significant digits; DynamoDB allows at most 38"),
        ({"N": "1." + "1" * 38}, "has 39 significant digits; DynamoDB allows at most 38"),
        ({"N": "1E+126"}, "N value: 1E+126 is out of range"),
        ({"N": "1E-131"}, "N value: 1E-131 is out of range"),
        ({"N": "-1E+126"}, "N value: -1E+126 is out of range"),
        ({"N": "1" + "0" * 126}, "is out of range"),
        ({"B": "a"}, "invalid base64"),
        ({"B": "aGk"}, "invalid base64"),  # missing padding
        ({"B": "aG k="}, "invalid base64"),
        ({"B": "aGk=\n"}, "invalid base64"),
        ({"B": "é"}, "invalid base64"),
        ({"B": 5}, "binary must be base64 text or bytes, got int"),
        ({"BOOL": "true"}, "BOOL value must be true or false, got 'true'"),
        ({"BOOL": 1}, "BOOL value must be true or false, got 1"),
        ({"NULL": False}, "NULL value must be true, got False"),
        ({"NULL": None}, "NULL value must be true, got None"),
        ({"L": {}}, "L value must be a list, got dict"),
        ({"L": "abc"}, "L value must be a list, got str"),
        ({"L": ({"S": "x"},)}, "L value must be a list, got tuple"),
        ({"M": []}, "M value must be a mapping, got list"),
        ({"M": "x"}, "M value must be a mapping, got str"),
        ({"SS": []}, "SS value is an empty set; DynamoDB sets are non-empty"),
        ({"NS": []}, "NS value is an empty set"),
        ({"BS": []}, "BS value is an empty set"),
        ({"SS": "abc"}, "SS value must be a list, got str"),
        ({"NS": {"1": 1}}, "NS value must be a list, got dict"),
    ],
)
def test_invalid_attribute_values_are_rejected_with_their_path(av: Any, reason: str) -> None:
    error = _error(
        {"order": {"M": {"lines": {"L": [{"S": "ok"}, {"N": "1"}, {"M": {"qty": av}}]}}}}
    )
    assert error.path == "order.lines[2].qty"
    assert reason in error.reason
    assert isinstance(error, ValueError)
    assert str(error).startswith("order.lines[2].qty: ")


@pytest.mark.parametrize(
    ("av", "path", "reason"),
    [
        ({"SS": ["a", 5]}, "tags[1]", "SS member must be a string, got int"),
        ({"NS": ["1", "x"]}, "tags[1]", "NS member: 'x' is not a number"),
        ({"NS": ["1", 2]}, "tags[1]", "NS member: a number must be a string, got int"),
        ({"NS": ["NaN"]}, "tags[0]", "NS member: 'NaN' is not a valid DynamoDB number"),
        ({"BS": ["aGk=", "!"]}, "tags[1]", "invalid base64"),
        ({"BS": [b"ok", 3]}, "tags[1]", "binary must be base64 text or bytes, got int"),
    ],
)
def test_bad_set_members_are_named_by_position(av: Any, path: str, reason: str) -> None:
    error = _error({"tags": av})
    assert (error.path, reason in error.reason) == (path, True)


def test_first_error_in_image_order_is_reported() -> None:
    error = _error({"a": {"S": "ok"}, "b": {"N": "bad"}, "c": {"X": 1}})
    assert error.path == "b"


def test_image_that_is_not_a_mapping_is_rejected_at_the_root() -> None:
    error = _error([{"S": "x"}])
    assert error.path == ""
    assert error.reason == "an image must be a mapping, got list"
    assert str(error) == "<root>: an image must be a mapping, got list"


def test_top_level_keys_with_dots_are_named_as_they_are() -> None:
    assert _error({"a.b": {"L": [{"N": "x"}]}}).path == "a.b[0]"


def test_long_bad_values_are_abbreviated_in_the_message() -> None:
    error = _error({"n": {"N": "9" * 5000}})
    assert "5000 characters" in error.reason
    assert len(error.reason) < 200


def test_deserialize_value_paths_start_at_the_value() -> None:
    with pytest.raises(DeserializationError) as info:
        deserialize_value({"L": [{"S": "x"}, {"M": {"k": {"BOOL": None}}}]})
    assert info.value.path == "[1].k"
    with pytest.raises(DeserializationError) as info:
        deserialize_value({"N": "NaN"})
    assert info.value.path == ""


def _nested_av(levels: int, tag: str) -> dict[str, Any]:
    """``levels`` lists or maps around {"N": "7"}, as DynamoDB JSON."""
    av: dict[str, Any] = {"N": "7"}
    for _ in range(levels):
        av = {"M": {"a": av}} if tag == "M" else {"L": [av]}
    return av


@pytest.mark.parametrize("tag", ["M", "L"])
def test_nesting_up_to_dynamodbs_limit_is_read(tag: str) -> None:
    value: Any = deserialize({"x": _nested_av(codec.MAX_NESTING_DEPTH, tag)})["x"]
    for _ in range(codec.MAX_NESTING_DEPTH):
        value = value["a"] if tag == "M" else value[0]
    assert value == Decimal("7")


def _mixed_av(levels: int, tag: str) -> dict[str, Any]:
    """``levels`` maps (tag "M"), lists ("L") or both alternating ("LM") around {"N": "7"}."""
    av: dict[str, Any] = {"N": "7"}
    for level in range(levels):
        in_a_map = tag == "M" or (tag == "LM" and level % 2 == 0)
        av = {"M": {"a": av, "s": {"S": "x"}}} if in_a_map else {"L": [av]}
    return av


@pytest.mark.parametrize("tag", ["M", "L", "LM"])
def test_the_fast_walker_itself_reads_every_depth_up_to_the_limit(
    each_walker: Deserializer, tag: str
) -> None:
    # deserialize() would hide a fast walker that gives up too early (the checked walker
    # answers the same), so the walker is called directly and compared with the checked
    # one: the pure walker walks maps inside maps inline, with depth arithmetic of its own.
    for levels in range(codec.MAX_NESTING_DEPTH + 1):
        image = {"x": _mixed_av(levels, tag), "y": {"S": "x"}}
        assert each_walker.decimal_map(image) == checked_map(image, "", "decimal", "an image")
    # One level more is the checked walker's to refuse (any raise hands the image over).
    with pytest.raises(Exception):
        each_walker.decimal_map({"x": _mixed_av(codec.MAX_NESTING_DEPTH + 1, tag)})


@pytest.mark.parametrize("tag", ["M", "L"])
@pytest.mark.parametrize("levels", [codec.MAX_NESTING_DEPTH + 1, 100_000])
def test_nesting_beyond_the_limit_is_an_error_naming_the_too_deep_container(
    tag: str, levels: int
) -> None:
    # 100,000 levels: a RecursionError (or a C stack overflow in the compiled walker) if the
    # walkers did not stop at the limit.
    with pytest.raises(DeserializationError) as caught:
        deserialize({"x": _nested_av(levels, tag)})
    step = ".a" if tag == "M" else "[0]"
    assert caught.value.path == "x" + step * codec.MAX_NESTING_DEPTH
    assert "nested more than 32 levels deep" in caught.value.reason


def test_deserialize_value_converts_scalars_and_containers() -> None:
    assert deserialize_value({"S": "x"}) == "x"
    assert deserialize_value({"NULL": True}) is None
    assert deserialize_value({"L": [{"N": "1"}]}) == [Decimal(1)]
    assert deserialize_value({"M": {"a": {"SS": ["q"]}}}) == {"a": {"q"}}


# --- serialize ------------------------------------------------------------------------------


def test_every_supported_type_serializes() -> None:
    obj = {
        "s": "x",
        "i": -12,
        "d": Decimal("1.50"),
        "e": Decimal("1E+40"),
        "z": Decimal("-0"),
        "t": True,
        "none": None,
        "b": b"\x00\x01",
        "ba": bytearray(b"ba"),
        "l": [1, "a", [None]],
        "tuple": (1, 2),
        "m": {"k": {"deep": False}},
        "ordered": OrderedDict(x=1),
    }
    assert serialize(obj) == {
        "s": {"S": "x"},
        "i": {"N": "-12"},
        "d": {"N": "1.50"},
        "e": {"N": "1E+40"},
        "z": {"N": "-0"},
        "t": {"BOOL": True},
        "none": {"NULL": True},
        "b": {"B": b"\x00\x01"},
        "ba": {"B": b"ba"},
        "l": {"L": [{"N": "1"}, {"S": "a"}, {"L": [{"NULL": True}]}]},
        "tuple": {"L": [{"N": "1"}, {"N": "2"}]},
        "m": {"M": {"k": {"M": {"deep": {"BOOL": False}}}}},
        "ordered": {"M": {"x": {"N": "1"}}},
    }


def test_sets_serialize_to_the_matching_set_type() -> None:
    result = serialize({"ss": {"a", "b"}, "ns": {1, Decimal("2.5")}, "bs": frozenset({b"x", b"y"})})
    assert sorted(result["ss"]["SS"]) == ["a", "b"]
    assert sorted(result["ns"]["NS"]) == ["1", "2.5"]
    assert sorted(result["bs"]["BS"]) == [b"x", b"y"]
    assert set(result) == {"ss", "ns", "bs"}
    assert all(len(av) == 1 for av in result.values())


def test_binary_is_raw_bytes_by_default_and_base64_on_request() -> None:
    obj = {"b": b"hi", "bs": {b"hi"}, "l": [b"\xff"]}
    assert serialize(obj) == {
        "b": {"B": b"hi"},
        "bs": {"BS": [b"hi"]},
        "l": {"L": [{"B": b"\xff"}]},
    }
    assert serialize(obj, binary="base64") == {
        "b": {"B": "aGk="},
        "bs": {"BS": ["aGk="]},
        "l": {"L": [{"B": "/w=="}]},
    }
    with pytest.raises(ValueError, match="binary must be"):
        serialize(obj, binary="hex")  # type: ignore[arg-type]


def test_bool_is_never_a_number() -> None:
    assert serialize_value(True) == {"BOOL": True}
    assert serialize_value([False]) == {"L": [{"BOOL": False}]}


def test_int_and_str_subclasses_serialize_as_their_base_type() -> None:
    class Color(enum.IntEnum):
        RED = 3

    class Mode(enum.StrEnum):
        FAST = "fast"

    assert serialize({"c": Color.RED, "m": Mode.FAST}) == {"c": {"N": "3"}, "m": {"S": "fast"}}


def test_large_ints_within_dynamodb_limits_serialize_exactly() -> None:
    assert serialize_value(10**40) == {"N": "1" + "0" * 40}  # one significant digit
    assert serialize_value(-(10**38) + 1) == {"N": "-" + "9" * 38}


def test_floats_are_rejected_unless_converted() -> None:
    with pytest.raises(SerializationError) as info:
        serialize({"price": {"amount": 1.5}})
    assert info.value.path == "price.amount"
    assert "float 1.5 is not supported" in info.value.reason
    assert "convert_floats=True" in info.value.reason


def test_convert_floats_uses_the_shortest_repr() -> None:
    assert serialize({"a": 0.1, "b": 1e16, "c": -0.0, "l": [2.5]}, convert_floats=True) == {
        "a": {"N": "0.1"},
        "b": {"N": "1E+16"},
        "c": {"N": "-0.0"},
        "l": {"L": [{"N": "2.5"}]},
    }
    assert serialize_value({1.25}, convert_floats=True) == {"NS": ["1.25"]}


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf"), 1e300, 1e-300])
def test_convert_floats_still_rejects_what_dynamodb_cannot_store(value: float) -> None:
    with pytest.raises(SerializationError) as info:
        serialize({"x": [value]}, convert_floats=True)
    assert info.value.path == "x[0]"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (Decimal("NaN"), "NaN is not a valid DynamoDB number"),
        (Decimal("-Infinity"), "-Infinity is not a valid DynamoDB number"),
        (Decimal("sNaN"), "sNaN is not a valid DynamoDB number"),
        (Decimal("1" * 39), "has 39 significant digits"),
        (Decimal("1E+126"), "1E+126 is out of range"),
        (Decimal("1E-131"), "1E-131 is out of range"),
        (10**126, "is out of range"),
        # Beyond str(int)'s default digit limit too:
        pytest.param(10**5000, "(5001 characters)", id="int-with-5001-digits"),
        (int("1" * 39), "has 39 significant digits"),
        (set(), "empty set; DynamoDB sets must have at least one member"),
        (frozenset(), "empty set"),
        ({1, "a"}, "a set must hold only strings, only numbers or only bytes, got int, str"),
        ({True}, "got bool"),
        ({b"x", "x"}, "got bytes, str"),
        (object(), "unsupported type object"),
        (1j, "unsupported type complex"),
    ],
)
def test_values_dynamodb_cannot_store_are_rejected_with_their_path(value: Any, reason: str) -> None:
    with pytest.raises(SerializationError) as info:
        serialize({"order": {"lines": [{"qty": 1}, {"qty": 2}, {"qty": value}]}})
    assert info.value.path == "order.lines[2].qty"
    assert reason in info.value.reason
    assert isinstance(info.value, ValueError)


def test_serialize_requires_a_mapping() -> None:
    with pytest.raises(SerializationError) as info:
        serialize([1])  # type: ignore[arg-type]
    assert (info.value.path, info.value.reason) == ("", "expected a mapping, got list")


def test_serialize_stops_at_the_nesting_limit_and_at_self_reference() -> None:
    value: Any = 7
    for _ in range(codec.MAX_NESTING_DEPTH):
        value = {"a": value}
    assert deserialize(serialize({"x": value})) == {"x": value}
    with pytest.raises(SerializationError, match="nested more than 32 levels deep") as caught:
        serialize({"x": [value]})
    assert caught.value.path == "x[0]" + ".a" * (codec.MAX_NESTING_DEPTH - 1)
    looped: dict[str, Any] = {}
    looped["self"] = looped
    with pytest.raises(SerializationError, match="nested more than 32 levels deep"):
        serialize(looped)
    listed: list[Any] = []
    listed.append(listed)
    with pytest.raises(SerializationError, match="nested more than 32 levels deep"):
        serialize({"l": listed})


def test_serialize_value_paths_start_at_the_value() -> None:
    with pytest.raises(SerializationError) as info:
        serialize_value([1, {"k": 2.5}])
    assert info.value.path == "[1].k"


def test_round_trip_keeps_exact_number_text() -> None:
    image = {
        "a": {"N": "1E+40"},
        "b": {"N": "1.50"},
        "c": {"N": "-0"},
        "d": {"N": MAX_NUMBER},
        "e": {"N": "1E-130"},
        "f": {"NS": ["0.10"]},
        "g": {"B": "aGk="},
    }
    assert serialize(deserialize(image), binary="base64") == image


def test_realistic_orders_round_trip_and_match_boto3() -> None:
    from boto3.dynamodb.types import Binary, TypeDeserializer
    from tests.helpers import stream_data as _data

    event = _data.orders_event(40, seed=7)
    boto3 = TypeDeserializer()

    def unwrap(value: Any) -> Any:
        if isinstance(value, Binary):
            return value.value
        if isinstance(value, dict):
            return {k: unwrap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [unwrap(v) for v in value]
        if isinstance(value, set):
            return {unwrap(v) for v in value}
        return value

    images = [
        record["dynamodb"][name]
        for record in event["Records"]
        for name in ("Keys", "NewImage", "OldImage")
        if name in record["dynamodb"]
    ]
    assert len(images) > 40
    for image in images:
        ours = deserialize(image)
        raw = serialize(ours)  # raw bytes: what boto3 takes
        assert unwrap(boto3.deserialize({"M": raw})) == ours
        assert deserialize(raw) == ours


def test_fast_walker_agrees_with_the_checked_walker_on_a_realistic_batch() -> None:
    from tests.helpers import stream_data as _data

    for record in _data.orders_event(30, seed=3)["Records"]:
        image = record["dynamodb"].get("NewImage") or record["dynamodb"]["OldImage"]
        for mode in ("decimal", "native"):
            fast = codec._fast_map_for(mode)(image)
            assert fast == codec._checked_map(image, "", mode, "an image")


def test_recent_long_numbers_are_bounded_and_stay_exact(each_walker: Deserializer) -> None:
    # Prices and timestamps, each twice in a row (as in a MODIFY's NewImage and OldImage),
    # with trailing zeros that must survive: "12.50" and "12.5" are different texts.
    texts = [f"{i}.50" for i in range(100, 2_100)] + [f"{i}.5" for i in range(100, 2_100)]
    texts += [str(1_700_000_000_000 + i) for i in range(1_000)]
    each_walker.forget_numbers()
    for text in texts:
        image = {"new": {"N": text}, "old": {"N": text}, "l": {"L": [{"N": text}]}}
        decoded = deserialize(image)
        assert [str(decoded["new"]), str(decoded["old"]), str(decoded["l"][0])] == [text] * 3
        assert deserialize(image, numbers="native")["old"] == Decimal(text)
    assert each_walker.remembered_numbers() <= 2 * (
        codec._SMALL_NUMBERS_KEPT + codec._RECENT_NUMBERS_KEPT
    )


def test_remembered_short_numbers_are_bounded_and_stay_exact(each_walker: Deserializer) -> None:
    texts = [str(i) for i in range(10_000)] + [f"-{i}" for i in range(1_000)]
    image = {f"k{i}": {"N": t} for i, t in enumerate(texts)}
    each_walker.forget_numbers()
    for _ in range(2):  # the second pass reads what the first remembered
        assert [str(v) for v in deserialize(image).values()] == texts
        native = deserialize(image, numbers="native")
        assert list(native.values()) == [int(t) for t in texts]
        assert all(type(v) is int for v in native.values())
    # Two tables of each kind (one per number mode), each capped.
    assert (
        0
        < each_walker.remembered_numbers()
        <= 2 * (codec._SMALL_NUMBERS_KEPT + codec._RECENT_NUMBERS_KEPT)
    )
    assert len(texts) > codec._SMALL_NUMBERS_KEPT
    each_walker.forget_numbers()
    assert each_walker.remembered_numbers() == 0
