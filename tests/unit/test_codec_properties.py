"""Property tests for streamkit.codec: round trips, fast/checked agreement, boto3 differential.

- Round trips: serialize and deserialize are exact inverses on generated values.
- Agreement: the fast walkers never accept what the checked (reference) walkers reject, and
  return exactly the same values (types and number text included) when they accept.
- Differential: where boto3's TypeSerializer/TypeDeserializer succeed on valid input, the
  results are equal. Where boto3 refuses valid input, or accepts invalid input, the
  example tests at the bottom pin down what streamkit does instead.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers.walkers import WALKERS

from streamkit import codec
from streamkit.codec import deserialize, deserialize_value, serialize, serialize_value
from streamkit.exceptions import DeserializationError, SerializationError

EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- strategies -----------------------------------------------------------------------------


@st.composite
def dynamodb_decimals(draw: st.DrawFn) -> Decimal:
    """Any valid DynamoDB number, with its exact digits and exponent (trailing zeros too)."""
    digits = draw(st.text("0123456789", min_size=1, max_size=38))  # at most 38 significant
    # Keep a non-zero magnitude within 1E-130 .. 9.99..E+125, where the magnitude's exponent
    # is exponent + (number of digits after the leading zeros) - 1.
    offset = len(digits.lstrip("0")) - 1
    exponent = draw(st.integers(-130 - offset, 125 - offset))
    sign = draw(st.integers(0, 1))
    return Decimal((sign, tuple(int(c) for c in digits), exponent))


ints = st.integers(-(10**38) + 1, 10**38 - 1)
numbers = st.one_of(ints, dynamodb_decimals())
texts = st.text(max_size=12)
scalars = st.one_of(st.none(), st.booleans(), texts, numbers, st.binary(max_size=12))
sets = st.one_of(
    st.frozensets(texts, min_size=1, max_size=4),
    st.sets(numbers, min_size=1, max_size=4),
    st.sets(st.binary(max_size=6), min_size=1, max_size=4),
)
values = st.recursive(
    st.one_of(scalars, sets),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)),
    max_leaves=12,
)
items = st.dictionaries(texts, values, max_size=6)


def attribute_values(binary_as_text: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Valid DynamoDB JSON in canonical form: N texts as str(Decimal) writes them."""

    def binary(raw: bytes) -> Any:
        return base64.b64encode(raw).decode("ascii") if binary_as_text else raw

    number_text = dynamodb_decimals().map(str)
    leaves = st.one_of(
        texts.map(lambda s: {"S": s}),
        number_text.map(lambda n: {"N": n}),
        st.binary(max_size=8).map(lambda b: {"B": binary(b)}),
        st.booleans().map(lambda b: {"BOOL": b}),
        st.just({"NULL": True}),
        st.sets(texts, min_size=1, max_size=3).map(lambda s: {"SS": sorted(s)}),
        # Members distinct by value: 1 and 1.0 would be one set member.
        st.sets(dynamodb_decimals(), min_size=1, max_size=3).map(
            lambda s: {"NS": sorted(map(str, s))}
        ),
        st.sets(st.binary(max_size=6), min_size=1, max_size=3).map(
            lambda s: {"BS": [binary(b) for b in sorted(s)]}
        ),
    )
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(lambda items: {"L": items}),
            st.dictionaries(texts, inner, max_size=4).map(lambda m: {"M": m}),
        ),
        max_leaves=12,
    )


def images(binary_as_text: bool = True) -> st.SearchStrategy[dict[str, Any]]:
    return st.dictionaries(texts, attribute_values(binary_as_text), max_size=6)


# Number texts that probe the edges of the grammar and of DynamoDB's limits.
NUMBER_TEXT_EDGES = [
    "",
    "-",
    ".",
    "+",
    "-.",
    "1-",
    "--1",
    "1..2",
    "1.2.3",
    " 1",
    "1 ",
    "1_0",
    "\u0661",  # ARABIC-INDIC DIGIT ONE: Decimal reads it as 1
    "½",
    "NaN",
    "nan",
    "-NaN",
    "sNaN",
    "Infinity",
    "-inf",
    "1e5",
    "1E+125",
    "9E+125",
    "1E+126",
    "1E-130",
    "1E-131",
    "0E+999",
    "-0",
    "0.0",
    ".5",
    "5.",
    "+5",
    "1" * 38,
    "1" * 39,
    "1" + "0" * 40,
    "0." + "0" * 40 + "1",
    "0." + "0" * 129 + "1",
    "0." + "0" * 130 + "1",
    "-" + "9" * 126,
    "1e",
    "e5",
    "0x10",
]
noisy_number_texts = st.one_of(
    st.sampled_from(NUMBER_TEXT_EDGES),
    st.text("0123456789.-+eE _naNI", max_size=45),
    dynamodb_decimals().map(str),
)
TAGS = ["S", "N", "B", "BOOL", "NULL", "L", "M", "SS", "NS", "BS", "X", "s", ""]
noisy_payloads = st.one_of(
    noisy_number_texts,
    texts,
    st.binary(max_size=4),
    st.booleans(),
    st.none(),
    st.integers(),
    st.floats(),
    st.lists(noisy_number_texts, max_size=3),
    st.just("aGk="),
)


def noisy_attribute_values() -> st.SearchStrategy[Any]:
    """Mostly plausible DynamoDB JSON, often wrong in some detail (or wholly)."""
    leaf = st.one_of(
        st.builds(lambda tag, value: {tag: value}, st.sampled_from(TAGS), noisy_payloads),
        attribute_values(binary_as_text=True),
        st.dictionaries(st.sampled_from(TAGS), noisy_payloads, max_size=3),
        noisy_payloads,
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3).map(lambda items: {"L": items}),
            st.dictionaries(texts, inner, max_size=3).map(lambda m: {"M": m}),
            st.sets(st.one_of(noisy_number_texts, st.binary(max_size=3)), max_size=3).map(
                lambda s: {"SS": list(s)}
            ),
        ),
        max_leaves=10,
    )


noisy_python_values = st.recursive(
    st.one_of(
        scalars,
        sets,
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(),
        st.sampled_from(
            [
                Decimal("NaN"),
                Decimal("Infinity"),
                Decimal("1E+126"),
                Decimal("1E-131"),
                Decimal("1" * 39),
                Decimal("1" + "0" * 45),
                10**40,
                10**126,
                set(),
                object(),
            ]
        ),
        st.frozensets(st.one_of(st.integers(), texts, st.booleans(), st.floats()), max_size=3),
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.tuples(inner),
        st.dictionaries(texts, inner, max_size=3),
    ),
    max_leaves=10,
)

# --- helpers --------------------------------------------------------------------------------


def exact(value: Any) -> Any:
    """A form in which equal means equal types and equal number text, not just equal value."""
    if isinstance(value, Mapping):
        return ("map", [(k, exact(v)) for k, v in value.items()])
    if isinstance(value, list):
        return ("list", [exact(v) for v in value])
    if isinstance(value, set | frozenset):
        return ("set", sorted(repr(exact(v)) for v in value))
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    return (type(value).__name__, repr(value))


def canonical_json(av: Any) -> Any:
    """DynamoDB JSON with set members sorted (set order is not part of the value)."""
    if isinstance(av, dict):
        return {
            k: sorted(v, key=repr) if k in ("SS", "NS", "BS") else canonical_json(v)
            for k, v in av.items()
        }
    if isinstance(av, list):
        return [canonical_json(v) for v in av]
    return av


def unwrap_binary(value: Any) -> Any:
    if isinstance(value, Binary):
        return value.value
    if isinstance(value, dict):
        return {k: unwrap_binary(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_binary(v) for v in value]
    if isinstance(value, set):
        return {unwrap_binary(v) for v in value}
    return value


# --- round trips ----------------------------------------------------------------------------


@EXAMPLES
@given(items)
def test_python_values_survive_serialize_then_deserialize(item: dict[str, Any]) -> None:
    back = deserialize(serialize(item))
    assert back == item
    # ints come back as Decimal; everything else with its own type.
    assert exact(back) == exact(_ints_as_decimals(item))


def _ints_as_decimals(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, dict):
        return {k: _ints_as_decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_ints_as_decimals(v) for v in value]
    if isinstance(value, set | frozenset):
        return {_ints_as_decimals(v) for v in value}
    return value


@EXAMPLES
@given(images(binary_as_text=True))
def test_event_images_survive_deserialize_then_serialize_exactly(image: dict[str, Any]) -> None:
    assert canonical_json(serialize(deserialize(image), binary="base64")) == canonical_json(image)


@EXAMPLES
@given(images(binary_as_text=False))
def test_client_images_with_raw_bytes_survive_exactly(image: dict[str, Any]) -> None:
    assert canonical_json(serialize(deserialize(image))) == canonical_json(image)


@EXAMPLES
@given(st.dictionaries(texts, st.recursive(st.one_of(ints, texts), st.lists, max_leaves=6)))
def test_native_numbers_give_back_the_very_ints(item: dict[str, Any]) -> None:
    assert exact(deserialize(serialize(item), numbers="native")) == exact(item)


# --- fast walkers agree with the checked ones -----------------------------------------------


def _assert_walkers_agree(image: dict[str, Any], mode: codec.NumberMode) -> Any:
    """The checked walker's answer (value or error), after checking both fast ones against it."""
    try:
        checked: Any = codec._checked_map(image, "", mode, "an image")
    except DeserializationError as error:
        checked = error
    for name, walker in WALKERS.items():
        try:
            fast = walker.map_for(mode)(image)
        except Exception:
            continue  # the fast walker gave up: deserialize asks the checked walker
        assert not isinstance(checked, DeserializationError), f"{name} accepted: {checked}"
        assert exact(fast) == exact(checked), name
    return checked


@EXAMPLES
@given(st.dictionaries(texts, noisy_attribute_values(), max_size=4))
@pytest.mark.parametrize("mode", ["decimal", "native"])
def test_fast_deserializer_accepts_only_what_the_checked_one_accepts(
    mode: codec.NumberMode, image: dict[str, Any]
) -> None:
    checked = _assert_walkers_agree(image, mode)
    # Whatever happens inside, callers see the checked walker's answer and nothing else.
    try:
        result: Any = deserialize(image, numbers=mode)
    except DeserializationError as error:
        assert isinstance(checked, DeserializationError)
        assert (error.path, error.reason) == (checked.path, checked.reason)
    else:
        assert exact(result) == exact(checked)


@pytest.mark.parametrize("mode", ["decimal", "native"])
@pytest.mark.parametrize("text", NUMBER_TEXT_EDGES)
def test_walkers_agree_on_every_edge_number(mode: codec.NumberMode, text: str) -> None:
    # Deterministic, on top of the generated cases: each edge in every position.
    for av in ({"N": text}, {"NS": [text]}, {"L": [{"N": text}]}):
        _assert_walkers_agree({"a": av}, mode)


@EXAMPLES
@given(noisy_attribute_values())
def test_deserialize_value_raises_only_deserialization_errors(av: Any) -> None:
    with contextlib.suppress(DeserializationError):
        deserialize_value(av)


@EXAMPLES
@given(st.dictionaries(texts, noisy_python_values, max_size=4), st.booleans(), st.booleans())
def test_fast_serializer_accepts_only_what_the_checked_one_accepts(
    obj: dict[str, Any], convert_floats: bool, base64_binary: bool
) -> None:
    binary: codec.BinaryMode = "base64" if base64_binary else "bytes"
    try:
        checked: Any = codec._checked_serialize_map(obj, "", convert_floats, binary)
    except SerializationError as error:
        checked = error
    try:
        fast = codec._fast_serialize_map_for(convert_floats, binary)(obj)
    except Exception:
        fast = None
    if fast is not None:
        assert not isinstance(checked, SerializationError), f"fast accepted: {checked}"
        assert canonical_json(fast) == canonical_json(checked)
    try:
        result: Any = serialize(obj, convert_floats=convert_floats, binary=binary)
    except SerializationError as error:
        assert isinstance(checked, SerializationError)
        assert (error.path, error.reason) == (checked.path, checked.reason)
    else:
        assert canonical_json(result) == canonical_json(checked)


@EXAMPLES
@given(noisy_python_values)
def test_serialize_value_raises_only_serialization_errors(value: Any) -> None:
    with contextlib.suppress(SerializationError):
        serialize_value(value)


# --- differential against boto3 --------------------------------------------------------------


@EXAMPLES
@given(images(binary_as_text=False))
def test_deserialize_matches_boto3_wherever_boto3_succeeds(image: dict[str, Any]) -> None:
    ours = deserialize(image)
    try:
        theirs = unwrap_binary(TypeDeserializer().deserialize({"M": image}))
    except ArithmeticError:
        # boto3 rounds into a 38-digit context and traps Rounded/Clamped, so it refuses
        # valid numbers whose text has trailing zeros beyond 38 digits, or a zero with a
        # large exponent. streamkit keeps them exactly (see the examples below).
        return
    assert exact(ours) == exact(theirs)


@EXAMPLES
@given(items)
def test_serialize_matches_boto3_wherever_boto3_succeeds(item: dict[str, Any]) -> None:
    ours = serialize(item)
    serializer = TypeSerializer()
    try:
        theirs = {k: serializer.serialize(v) for k, v in item.items()}
    except ArithmeticError:
        # Same 38-digit context: boto3 refuses ints and Decimals with more than 38 digits
        # even when the extra digits are trailing zeros. See the examples below.
        return
    assert canonical_json(ours) == canonical_json(theirs)


def test_where_boto3_refuses_valid_numbers_streamkit_keeps_them_exactly() -> None:
    long_zeros = "1" + "0" * 40
    with pytest.raises(ArithmeticError):
        TypeDeserializer().deserialize({"N": long_zeros})
    assert deserialize_value({"N": long_zeros}) == 10**40
    with pytest.raises(ArithmeticError):
        TypeSerializer().serialize(10**38)
    assert serialize_value(10**38) == {"N": str(10**38)}
    with pytest.raises(ArithmeticError):
        TypeSerializer().serialize(Decimal("0E+200"))
    assert serialize_value(Decimal("0E+200")) == {"N": "0E+200"}


@pytest.mark.parametrize(
    "av",
    [
        {"N": "NaN"},  # boto3: Decimal('NaN')
        {"N": " 1"},  # boto3: Decimal('NaN'), its context does not trap InvalidOperation
        {"N": "garbage"},  # boto3: Decimal('NaN')
        {"N": "1E-131"},  # boto3: accepted; below DynamoDB's smallest magnitude
        {"SS": []},  # boto3: set()
        {"S": 5},  # boto3: 5
        {"BOOL": "yes"},  # boto3: 'yes'
        {"NULL": False},  # boto3: None
    ],
)
def test_where_boto3_accepts_invalid_input_streamkit_raises(av: dict[str, Any]) -> None:
    TypeDeserializer().deserialize(av)  # boto3 does not raise...
    with pytest.raises(DeserializationError):  # ...streamkit does
        deserialize({"a": av})


@pytest.mark.parametrize("value", [Decimal("1E-131"), set(), frozenset()])
def test_where_boto3_serializes_what_dynamodb_rejects_streamkit_raises(value: Any) -> None:
    TypeSerializer().serialize(value)
    with pytest.raises(SerializationError):
        serialize({"a": value})
