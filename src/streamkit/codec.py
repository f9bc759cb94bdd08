"""DynamoDB JSON <-> plain Python values: exact, strict, and fast.

Mapping (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html)::

    DynamoDB JSON        deserialize                      serialize accepts
    {"S": str}           str                              str
    {"N": str}           Decimal (exact text kept)        int, Decimal (float: see below)
                         or int/float (numbers="native")
    {"B": b64 | bytes}   bytes                            bytes, bytearray
    {"SS"|"NS"|"BS": []} set of str / Decimal / bytes     non-empty set/frozenset of one kind
    {"L": [...]}         list                             list, tuple
    {"M": {...}}         dict                             any Mapping
    {"BOOL": bool}       bool                             bool
    {"NULL": True}       None                             None

Numbers are exact: ``"1E+40"`` becomes ``Decimal('1E+40')`` and ``"1.50"`` keeps its trailing
zero. Only valid DynamoDB numbers are accepted: at most 38 significant digits, magnitude
1E-130 .. 9.99...E+125 or zero, no NaN or Infinity. With ``numbers="native"``, integral values
become ``int`` and the rest ``float`` (which may round).

Binary: a Lambda event carries B/BS values as base64 text, boto3's low-level client as raw
bytes; ``deserialize`` takes both. ``serialize`` produces raw ``bytes`` by default, as boto3's
TypeSerializer does and as the boto3 client wants; ``binary="base64"`` produces base64 text
(the form of a Lambda event or of JSON you write yourself).

Floats are rejected by ``serialize``: they do not round-trip (deserialize gives Decimal, and
most binary fractions have no short exact decimal form). ``convert_floats=True`` converts
them through ``Decimal(repr(f))``, the shortest decimal that reads back as the same float.

Errors are ``DeserializationError`` / ``SerializationError`` (ValueErrors) whose ``path``
names the attribute, e.g. ``order.lines[2].qty``.

How it is fast: each direction has two walkers.

- The *fast walker* handles the exact, common types inline inside the map and list loops
  (no function call per scalar; tags compared in frequency order), validates numbers as a
  side effect of converting them in a strict decimal context, converts short number texts
  ("1", "0.00") once and then looks them up, and tracks no path. Whatever it is not sure
  about (unusual types, subclasses, anything invalid) makes it raise.
- The *checked walker* is the reference: plain, careful code that tracks the path. It runs
  only when the fast walker raised, and either returns the result (the input was valid but
  unusual) or raises the error with its path.

So the happy path pays no validation beyond a type test per value, and errors still name
their attribute. Tests check that both walkers agree.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from decimal import (
    Clamped,
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Subnormal,
    Underflow,
)
from typing import Any, Literal

from streamkit.exceptions import DeserializationError, SerializationError

__all__ = [
    "BinaryMode",
    "NumberMode",
    "deserialize",
    "deserialize_value",
    "serialize",
    "serialize_value",
]

NumberMode = Literal["decimal", "native"]
BinaryMode = Literal["bytes", "base64"]

# DynamoDB number limits (see the data types page cited above).
MAX_SIGNIFICANT_DIGITS = 38
MAX_ADJUSTED_EXPONENT = 125  # largest magnitude 9.9999999999999999999999999999999999999E+125
MIN_ADJUSTED_EXPONENT = -130  # smallest non-zero magnitude 1E-130

# A number text the fast deserializer has not seen is converted by
# _DYNAMODB_CONTEXT.create_decimal, which (unlike Decimal()) admits no surrounding
# whitespace and no underscores, and raises instead of rounding whenever DynamoDB could not
# store the value: more than 38 digits (Rounded), magnitude over 9.99..E+125 (Overflow) or
# under 1E-130 (Subnormal). What it still lets through, digits of other scripts and
# NaN/Infinity, is caught by str.isascii() and Decimal.is_finite(). The context errs on the
# strict side: valid numbers with trailing zeros beyond 38 digits, and zeros with huge
# exponents, make it raise; the checked path then accepts them.
_DYNAMODB_CONTEXT = Context(
    prec=MAX_SIGNIFICANT_DIGITS,
    Emax=MAX_ADJUSTED_EXPONENT,
    Emin=MIN_ADJUSTED_EXPONENT,
    traps=[InvalidOperation, Overflow, Subnormal, Underflow, Rounded, Inexact, Clamped],
)
# Number texts this short are converted once and remembered (see _build_fast_deserializer).
_SMALL_NUMBER_MAX_LEN = 4
_SMALL_NUMBERS_KEPT = 8192
# The fast serializer's test: str() of an int or Decimal made only of these characters and
# at most 38 long is a valid DynamoDB number (at most 38 digits, magnitude 1E-37..1E+38).
_PLAIN_NUMBER_CHARS = "0123456789.-"
_PLAIN_NUMBER_MAX_LEN = MAX_SIGNIFICANT_DIGITS

# What the N grammar allows; Decimal alone would also take " 1", "1_000", "NaN" and non-ASCII
# digits, none of which DynamoDB accepts.
_NUMBER_SYNTAX = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

_SET_TAGS = ("SS", "NS", "BS")
_KNOWN_TAGS = frozenset(("S", "N", "B", "BOOL", "NULL", "L", "M", *_SET_TAGS))


class _Unusual(Exception):
    """Raised by a fast walker for input it leaves to the checked walker."""


# --- number rules, shared by both directions ------------------------------------------------


def _abbreviated(text: str, limit: int = 48) -> str:
    """``text`` for an error message: long values are cut in the middle."""
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]}...{text[-limit // 4 :]} ({len(text)} characters)"


def _number_problem(number: Decimal) -> str | None:
    """Why ``number`` is not a valid DynamoDB number, or None if it is."""
    if not number.is_finite():
        return f"{number} is not a valid DynamoDB number (NaN and Infinity are not allowed)"
    if not number:
        return None  # zero, whatever its exponent
    # Trailing zeros do not count towards the precision: DynamoDB trims them.
    significant = len("".join(map(str, number.as_tuple().digits)).rstrip("0"))
    if significant > MAX_SIGNIFICANT_DIGITS:
        return (
            f"{_abbreviated(str(number))} has {significant} significant digits; "
            f"DynamoDB allows at most {MAX_SIGNIFICANT_DIGITS}"
        )
    if not MIN_ADJUSTED_EXPONENT <= number.adjusted() <= MAX_ADJUSTED_EXPONENT:
        return (
            f"{_abbreviated(str(number))} is out of range; DynamoDB numbers are zero or have "
            "a magnitude from 1E-130 to 9.9999999999999999999999999999999999999E+125"
        )
    return None


def _parse_number(text: object) -> tuple[Decimal | None, str | None]:
    """``(Decimal, None)`` for valid DynamoDB number text, else ``(None, reason)``."""
    if not isinstance(text, str):
        return None, f"a number must be a string, got {type(text).__name__}"
    if _NUMBER_SYNTAX.fullmatch(text) is None:
        shown = _abbreviated(repr(text))
        if text.strip().lstrip("+-").lower() in ("nan", "snan", "inf", "infinity"):
            return (
                None,
                f"{shown} is not a valid DynamoDB number (NaN and Infinity are not allowed)",
            )
        return None, f"{shown} is not a number"
    number = Decimal(text)
    problem = _number_problem(number)
    return (None, problem) if problem else (number, None)


def _native_number(number: Decimal) -> int | float:
    """``numbers="native"``: int for integral values (1, 2.0, 1E+3), float otherwise."""
    return int(number) if number == number.to_integral_value() else float(number)


def _checked_number(text: object, numbers: NumberMode) -> Any:
    """A number from its text, fully checked; raises ValueError(reason) when invalid."""
    number, problem = _parse_number(text)
    if number is None:
        raise ValueError(problem)
    return number if numbers == "decimal" else _native_number(number)


# --- checked deserializer (the reference; runs only when the fast one raised) ----------------


def _key_path(path: str, key: object) -> str:
    return f"{path}.{key}" if path else str(key)


def _type_name(value: object) -> str:
    return type(value).__name__


def _checked_binary(value: object, path: str) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if not isinstance(value, str):
        raise DeserializationError(
            path, f"binary must be base64 text or bytes, got {_type_name(value)}"
        )
    try:
        return binascii.a2b_base64(value, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        raise DeserializationError(path, f"invalid base64: {exc}") from None


def _checked_set(tag: str, members: object, path: str, numbers: NumberMode) -> set[Any]:
    if not isinstance(members, list):
        raise DeserializationError(path, f"{tag} value must be a list, got {_type_name(members)}")
    if not members:
        raise DeserializationError(
            path, f"{tag} value is an empty set; DynamoDB sets are non-empty"
        )
    result: set[Any] = set()
    for index, member in enumerate(members):
        member_path = f"{path}[{index}]"
        if tag == "SS":
            if not isinstance(member, str):
                raise DeserializationError(
                    member_path, f"SS member must be a string, got {_type_name(member)}"
                )
            result.add(str.__str__(member))
        elif tag == "NS":
            try:
                result.add(_checked_number(member, numbers))
            except ValueError as exc:
                raise DeserializationError(member_path, f"NS member: {exc}") from None
        else:
            result.add(_checked_binary(member, member_path))
    return result


def _checked_value(av: object, path: str, numbers: NumberMode) -> Any:
    if not isinstance(av, Mapping):
        raise DeserializationError(
            path, f"expected an attribute value (a mapping with one type tag), got {_type_name(av)}"
        )
    if len(av) != 1:
        tags = _abbreviated(", ".join(repr(tag) for tag in av)) or "none"
        raise DeserializationError(path, f"expected exactly one type tag, got {len(av)}: {tags}")
    ((tag, value),) = av.items()
    if tag not in _KNOWN_TAGS:
        raise DeserializationError(path, f"unknown type tag {_abbreviated(repr(tag))}")
    if tag == "S":
        if not isinstance(value, str):
            raise DeserializationError(path, f"S value must be a string, got {_type_name(value)}")
        return str.__str__(value)
    if tag == "N":
        try:
            return _checked_number(value, numbers)
        except ValueError as exc:
            raise DeserializationError(path, f"N value: {exc}") from None
    if tag == "B":
        return _checked_binary(value, path)
    if tag == "BOOL":
        if not isinstance(value, bool):
            raise DeserializationError(
                path, f"BOOL value must be true or false, got {_abbreviated(repr(value))}"
            )
        return value
    if tag == "NULL":
        if value is not True:
            raise DeserializationError(
                path, f"NULL value must be true, got {_abbreviated(repr(value))}"
            )
        return None
    if tag == "L":
        if not isinstance(value, list):
            raise DeserializationError(path, f"L value must be a list, got {_type_name(value)}")
        return [_checked_value(item, f"{path}[{i}]", numbers) for i, item in enumerate(value)]
    if tag == "M":
        return _checked_map(value, path, numbers, "M value")
    return _checked_set(tag, value, path, numbers)


def _checked_map(image: object, path: str, numbers: NumberMode, what: str) -> dict[str, Any]:
    if not isinstance(image, Mapping):
        raise DeserializationError(path, f"{what} must be a mapping, got {_type_name(image)}")
    return {key: _checked_value(av, _key_path(path, key), numbers) for key, av in image.items()}


# --- fast deserializer --------------------------------------------------------------------


def _build_fast_deserializer(numbers: NumberMode) -> Callable[[Any], Any]:
    """The fast walker for one number mode; returns its map function.

    The map and list loops repeat the same tag chain on purpose: handling scalars inline
    saves a Python call per value, which is most of the cost of a walk. Tags are tested in
    the order of their frequency in real items.
    """
    to_decimal = _DYNAMODB_CONTEXT.create_decimal
    native = numbers == "native"
    native_number = _native_number
    small_len = _SMALL_NUMBER_MAX_LEN
    # Short number texts ("0", "1", "42", "0.00") recur everywhere: quantities, flags,
    # versions. Their values are immutable, so each is converted once and then looked up.
    # Only texts of at most 4 characters are kept (a finite domain that real data revisits
    # constantly), and at most _SMALL_NUMBERS_KEPT of them (about 1.5 MB), so hostile input
    # cannot make the dict grow without bound; it needs no eviction.
    small_numbers: dict[str, Any] = {}
    kept = _SMALL_NUMBERS_KEPT
    known = small_numbers.get
    a2b_base64 = binascii.a2b_base64
    copy_dict = dict.copy

    def number(text: Any) -> Any:
        """What the inline N branches below do, for the rarer NS members."""
        value = known(text)
        if value is None:
            value = to_decimal(text)
            if not (text.isascii() and value.is_finite()):  # also fails for a non-str
                raise _Unusual
            if native:
                value = native_number(value)
            if len(text) <= small_len and len(small_numbers) < kept:
                small_numbers[text] = value
        return value

    def binary(value: Any) -> bytes:
        if value.__class__ is str:
            return a2b_base64(value, strict_mode=True)
        if value.__class__ is bytes:
            return value
        raise _Unusual

    def string_set(members: Any) -> set[str]:
        if members.__class__ is not list or not members:
            raise _Unusual
        "".join(members)  # raises TypeError unless every member is a str
        return set(members)

    def number_set(members: Any) -> set[Any]:
        if members.__class__ is not list or not members:
            raise _Unusual
        return {number(m) for m in members}

    def binary_set(members: Any) -> set[bytes]:
        if members.__class__ is not list or not members:
            raise _Unusual
        return {binary(m) for m in members}

    sets: dict[str, Callable[[Any], Any]] = {
        "SS": string_set,
        "NS": number_set,
        "BS": binary_set,
    }

    def map_(image: Any) -> dict[str, Any]:
        # Starting from a copy allocates the result at its final size once; each store
        # below then replaces a value instead of growing the dict.
        out: dict[str, Any] = copy_dict(image)
        for key, av in image.items():
            (tag,) = av  # exactly one tag, or ValueError
            v = av[tag]
            if tag == "S":
                if v.__class__ is not str:
                    raise _Unusual
                out[key] = v
            elif tag == "N":
                value = known(v)
                if value is None:
                    value = to_decimal(v)
                    if not (v.isascii() and value.is_finite()):
                        raise _Unusual
                    if native:
                        value = native_number(value)
                    if len(v) <= small_len and len(small_numbers) < kept:
                        small_numbers[v] = value
                out[key] = value
            elif tag == "M":
                out[key] = map_(v)
            elif tag == "BOOL":
                if v.__class__ is not bool:
                    raise _Unusual
                out[key] = v
            elif tag == "NULL":
                if v is not True:
                    raise _Unusual
                out[key] = None
            elif tag == "L":
                out[key] = list_(v)
            elif tag == "B":
                out[key] = binary(v)
            else:
                out[key] = sets[tag](v)
        return out

    def list_(items: Any) -> list[Any]:
        if items.__class__ is not list:
            raise _Unusual
        out: list[Any] = []
        append = out.append
        for av in items:
            (tag,) = av
            v = av[tag]
            if tag == "S":
                if v.__class__ is not str:
                    raise _Unusual
                append(v)
            elif tag == "N":
                value = known(v)
                if value is None:
                    value = to_decimal(v)
                    if not (v.isascii() and value.is_finite()):
                        raise _Unusual
                    if native:
                        value = native_number(value)
                    if len(v) <= small_len and len(small_numbers) < kept:
                        small_numbers[v] = value
                append(value)
            elif tag == "M":
                append(map_(v))
            elif tag == "BOOL":
                if v.__class__ is not bool:
                    raise _Unusual
                append(v)
            elif tag == "NULL":
                if v is not True:
                    raise _Unusual
                append(None)
            elif tag == "L":
                append(list_(v))
            elif tag == "B":
                append(binary(v))
            else:
                append(sets[tag](v))
        return out

    return map_


_fast_decimal_map = _build_fast_deserializer("decimal")
_fast_native_map = _build_fast_deserializer("native")


def _fast_map_for(numbers: str) -> Callable[[Any], Any]:
    if numbers == "decimal":
        return _fast_decimal_map
    if numbers == "native":
        return _fast_native_map
    raise ValueError(f"numbers must be 'decimal' or 'native', got {numbers!r}")


def deserialize(image: Mapping[str, Any], *, numbers: NumberMode = "decimal") -> dict[str, Any]:
    """Convert a DynamoDB attribute map (e.g. a stream record's NewImage) to a plain dict.

    ``numbers="decimal"`` (the default) gives exact Decimals; ``numbers="native"`` gives int
    for integral values and float otherwise. B/BS values may be base64 text (Lambda events)
    or raw bytes (boto3's client); both give bytes.

    Raises DeserializationError naming the attribute path when the input is not valid
    DynamoDB JSON. The input is not modified.
    """
    # The common case is tested inline: this function runs once per image.
    fast_map = _fast_decimal_map if numbers == "decimal" else _fast_map_for(numbers)
    try:
        return fast_map(image)  # type: ignore[no-any-return]
    except Exception:
        pass  # unusual or invalid input: the checked walker decides, outside this handler
    return _checked_map(image, "", numbers, "an image")


def deserialize_value(av: Mapping[str, Any], *, numbers: NumberMode = "decimal") -> Any:
    """Convert one DynamoDB attribute value, e.g. ``{"N": "5"}``, to a Python value."""
    fast_map = _fast_map_for(numbers)
    try:
        return fast_map({"": av})[""]
    except Exception:
        pass
    return _checked_value(av, "", numbers)


# --- checked serializer (the reference; runs only when the fast one raised) ------------------


def _checked_number_text(value: Any, path: str, convert_floats: bool) -> str:
    """The N text for an int, Decimal or (with convert_floats) float, fully checked."""
    if isinstance(value, float):
        if not convert_floats:
            raise SerializationError(
                path,
                f"float {value!r} is not supported: floats do not round-trip exactly; "
                "use Decimal, or pass convert_floats=True",
            )
        number = Decimal(repr(value))
    elif isinstance(value, Decimal):
        number = value
    else:
        number = Decimal(int(value))  # no digit limit, unlike str(int)
    problem = _number_problem(number)
    if problem:
        raise SerializationError(path, problem)
    return str(number)


def _checked_binary_out(value: bytes | bytearray, binary: BinaryMode) -> bytes | str:
    raw = bytes(value)
    return base64.b64encode(raw).decode("ascii") if binary == "base64" else raw


def _is_number(value: object) -> bool:
    return isinstance(value, int | Decimal | float) and not isinstance(value, bool)


def _checked_set_out(
    members: set[Any] | frozenset[Any], path: str, convert_floats: bool, binary: BinaryMode
) -> dict[str, Any]:
    if not members:
        raise SerializationError(path, "empty set; DynamoDB sets must have at least one member")
    if all(isinstance(m, str) for m in members):
        return {"SS": [str.__str__(m) for m in members]}
    if all(isinstance(m, bytes | bytearray) for m in members):
        return {"BS": [_checked_binary_out(m, binary) for m in members]}
    if all(_is_number(m) for m in members):
        return {"NS": [_checked_number_text(m, path, convert_floats) for m in members]}
    kinds = sorted({_type_name(m) for m in members})
    raise SerializationError(
        path,
        f"a set must hold only strings, only numbers or only bytes, got {', '.join(kinds)}",
    )


def _checked_serialize_value(
    value: object, path: str, convert_floats: bool, binary: BinaryMode
) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": str.__str__(value)}
    if _is_number(value):
        return {"N": _checked_number_text(value, path, convert_floats)}
    if isinstance(value, bytes | bytearray):
        return {"B": _checked_binary_out(value, binary)}
    if isinstance(value, set | frozenset):
        return _checked_set_out(value, path, convert_floats, binary)
    if isinstance(value, list | tuple):
        return {
            "L": [
                _checked_serialize_value(item, f"{path}[{i}]", convert_floats, binary)
                for i, item in enumerate(value)
            ]
        }
    if isinstance(value, Mapping):
        return {"M": _checked_serialize_map(value, path, convert_floats, binary)}
    raise SerializationError(path, f"unsupported type {_type_name(value)}")


def _checked_serialize_map(
    obj: object, path: str, convert_floats: bool, binary: BinaryMode
) -> dict[str, Any]:
    if not isinstance(obj, Mapping):
        raise SerializationError(path, f"expected a mapping, got {_type_name(obj)}")
    return {
        key: _checked_serialize_value(value, _key_path(path, key), convert_floats, binary)
        for key, value in obj.items()
    }


# --- fast serializer ----------------------------------------------------------------------


def _build_fast_serializer(convert_floats: bool, binary: BinaryMode) -> Callable[[Any], Any]:
    """The fast walker for one option set; returns its map function (see the deserializer)."""
    chars = _PLAIN_NUMBER_CHARS
    max_len = _PLAIN_NUMBER_MAX_LEN
    raw_binary = binary == "bytes"
    b2a = base64.b64encode

    def checked_number_text(value: Any) -> str:
        # Valid but unusual numbers (exponents, over 38 characters) are converted here;
        # invalid ones raise, and the checked walker then reports them with their path.
        return _checked_number_text(value, "", convert_floats)

    def number_text(value: Any) -> str:
        cls = value.__class__
        if cls is int:
            text = str(value)
            return text if len(text) <= max_len else checked_number_text(value)
        if cls is Decimal:
            text = str(value)
        elif cls is float and convert_floats:
            text = repr(value)
        else:
            raise _Unusual
        return (
            text if len(text) <= max_len and not text.strip(chars) else checked_number_text(value)
        )

    def set_(members: Any) -> dict[str, Any]:
        items = list(members)
        if not items:
            raise _Unusual
        kind = items[0].__class__
        if kind is str:
            for m in items:
                if m.__class__ is not str:
                    raise _Unusual
            return {"SS": items}
        if kind is bytes:
            for m in items:
                if m.__class__ is not bytes:
                    raise _Unusual
            return {"BS": items if raw_binary else [b2a(m).decode("ascii") for m in items]}
        return {"NS": [number_text(m) for m in items]}

    def map_(obj: Any) -> dict[str, Any]:
        out = {}
        for key, v in obj.items():
            cls = v.__class__
            if cls is str:
                out[key] = {"S": v}
            elif cls is int:
                text = str(v)
                out[key] = {"N": text if len(text) <= max_len else checked_number_text(v)}
            elif cls is Decimal:
                text = str(v)
                if len(text) > max_len or text.strip(chars):
                    text = checked_number_text(v)
                out[key] = {"N": text}
            elif cls is dict:
                out[key] = {"M": map_(v)}
            elif cls is list or cls is tuple:
                out[key] = {"L": list_(v)}
            elif cls is bool:
                out[key] = {"BOOL": v}
            elif v is None:
                out[key] = {"NULL": True}
            elif cls is bytes:
                out[key] = {"B": v if raw_binary else b2a(v).decode("ascii")}
            elif cls is set or cls is frozenset:
                out[key] = set_(v)
            else:
                out[key] = {"N": number_text(v)}  # a float, or _Unusual
        return out

    def list_(items: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        append = out.append
        for v in items:
            cls = v.__class__
            if cls is str:
                append({"S": v})
            elif cls is int:
                text = str(v)
                append({"N": text if len(text) <= max_len else checked_number_text(v)})
            elif cls is Decimal:
                text = str(v)
                if len(text) > max_len or text.strip(chars):
                    text = checked_number_text(v)
                append({"N": text})
            elif cls is dict:
                append({"M": map_(v)})
            elif cls is list or cls is tuple:
                append({"L": list_(v)})
            elif cls is bool:
                append({"BOOL": v})
            elif v is None:
                append({"NULL": True})
            elif cls is bytes:
                append({"B": v if raw_binary else b2a(v).decode("ascii")})
            elif cls is set or cls is frozenset:
                append(set_(v))
            else:
                append({"N": number_text(v)})
        return out

    return map_


_FAST_SERIALIZE_MAP = {
    (convert_floats, binary): _build_fast_serializer(convert_floats, binary)
    for convert_floats in (False, True)
    for binary in ("bytes", "base64")
}


def _fast_serialize_map_for(convert_floats: bool, binary: str) -> Callable[[Any], Any]:
    try:
        return _FAST_SERIALIZE_MAP[bool(convert_floats), binary]
    except KeyError:
        raise ValueError(f"binary must be 'bytes' or 'base64', got {binary!r}") from None


def serialize(
    obj: Mapping[str, Any], *, convert_floats: bool = False, binary: BinaryMode = "bytes"
) -> dict[str, Any]:
    """Convert a plain mapping to a DynamoDB attribute map (the inverse of ``deserialize``).

    ``binary="bytes"`` (the default) gives B/BS values as raw bytes, which is what boto3's
    client takes; ``binary="base64"`` gives base64 text, the form of a Lambda event.
    ``convert_floats=True`` accepts floats, converted through ``Decimal(repr(f))``.
    Set members come out in the set's iteration order.

    Raises SerializationError naming the attribute path for values DynamoDB cannot store:
    floats (unless converted), NaN/Infinity, numbers beyond 38 significant digits or outside
    1E-130..9.99..E+125, empty or mixed sets, and unsupported types.
    """
    fast_map = _fast_serialize_map_for(convert_floats, binary)
    try:
        return fast_map(obj)  # type: ignore[no-any-return]
    except Exception:
        pass  # unusual or invalid input: the checked walker decides, outside this handler
    return _checked_serialize_map(obj, "", convert_floats, binary)


def serialize_value(
    value: Any, *, convert_floats: bool = False, binary: BinaryMode = "bytes"
) -> dict[str, Any]:
    """Convert one Python value to a DynamoDB attribute value, e.g. ``5`` to ``{"N": "5"}``."""
    fast_map = _fast_serialize_map_for(convert_floats, binary)
    try:
        return fast_map({"": value})[""]  # type: ignore[no-any-return]
    except Exception:
        pass
    return _checked_serialize_value(value, "", convert_floats, binary)
