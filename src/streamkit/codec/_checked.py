"""The checked walkers: the reference for both directions.

Plain, careful code that tracks the attribute path. It runs only when a fast walker raised,
and either returns the result (the input was valid but unusual) or raises the error, naming
the attribute.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from streamkit.codec._rules import (
    MAX_NESTING_DEPTH,
    NESTING_PROBLEM,
    BinaryMode,
    NumberMode,
    abbreviated,
    checked_number,
    number_problem,
)
from streamkit.exceptions import DeserializationError, SerializationError

_SET_TAGS = ("SS", "NS", "BS")
_KNOWN_TAGS = frozenset(("S", "N", "B", "BOOL", "NULL", "L", "M", *_SET_TAGS))


# --- deserializer ---------------------------------------------------------------------------


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
                result.add(checked_number(member, numbers))
            except ValueError as exc:
                raise DeserializationError(member_path, f"NS member: {exc}") from None
        else:
            result.add(_checked_binary(member, member_path))
    return result


def checked_value(av: object, path: str, numbers: NumberMode, depth: int = 0) -> Any:
    """``av`` decoded, or DeserializationError; ``depth`` lists and maps enclose it."""
    if not isinstance(av, Mapping):
        raise DeserializationError(
            path, f"expected an attribute value (a mapping with one type tag), got {_type_name(av)}"
        )
    if len(av) != 1:
        tags = abbreviated(", ".join(repr(tag) for tag in av)) or "none"
        raise DeserializationError(path, f"expected exactly one type tag, got {len(av)}: {tags}")
    ((tag, value),) = av.items()
    if tag not in _KNOWN_TAGS:
        raise DeserializationError(path, f"unknown type tag {abbreviated(repr(tag))}")
    if tag == "S":
        if not isinstance(value, str):
            raise DeserializationError(path, f"S value must be a string, got {_type_name(value)}")
        return str.__str__(value)
    if tag == "N":
        try:
            return checked_number(value, numbers)
        except ValueError as exc:
            raise DeserializationError(path, f"N value: {exc}") from None
    if tag == "B":
        return _checked_binary(value, path)
    if tag == "BOOL":
        if not isinstance(value, bool):
            raise DeserializationError(
                path, f"BOOL value must be true or false, got {abbreviated(repr(value))}"
            )
        return value
    if tag == "NULL":
        if value is not True:
            raise DeserializationError(
                path, f"NULL value must be true, got {abbreviated(repr(value))}"
            )
        return None
    if tag in ("L", "M") and depth >= MAX_NESTING_DEPTH:
        raise DeserializationError(path, NESTING_PROBLEM)
    if tag == "L":
        if not isinstance(value, list):
            raise DeserializationError(path, f"L value must be a list, got {_type_name(value)}")
        return [
            checked_value(item, f"{path}[{i}]", numbers, depth + 1) for i, item in enumerate(value)
        ]
    if tag == "M":
        return checked_map(value, path, numbers, "M value", depth + 1)
    return _checked_set(tag, value, path, numbers)


def checked_map(
    image: object, path: str, numbers: NumberMode, what: str, depth: int = 0
) -> dict[str, Any]:
    if not isinstance(image, Mapping):
        raise DeserializationError(path, f"{what} must be a mapping, got {_type_name(image)}")
    return {
        key: checked_value(av, _key_path(path, key), numbers, depth) for key, av in image.items()
    }


# --- serializer -----------------------------------------------------------------------------


def checked_number_text(value: Any, path: str, convert_floats: bool) -> str:
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
    problem = number_problem(number)
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
        return {"NS": [checked_number_text(m, path, convert_floats) for m in members]}
    kinds = sorted({_type_name(m) for m in members})
    raise SerializationError(
        path,
        f"a set must hold only strings, only numbers or only bytes, got {', '.join(kinds)}",
    )


def checked_serialize_value(
    value: object, path: str, convert_floats: bool, binary: BinaryMode, depth: int = 0
) -> dict[str, Any]:
    """``value`` as an attribute value, or SerializationError; ``depth`` lists and maps
    enclose it (a value that contains itself ends at the nesting limit)."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": str.__str__(value)}
    if _is_number(value):
        return {"N": checked_number_text(value, path, convert_floats)}
    if isinstance(value, bytes | bytearray):
        return {"B": _checked_binary_out(value, binary)}
    if isinstance(value, set | frozenset):
        return _checked_set_out(value, path, convert_floats, binary)
    if isinstance(value, list | tuple | Mapping) and depth >= MAX_NESTING_DEPTH:
        raise SerializationError(path, NESTING_PROBLEM)
    if isinstance(value, list | tuple):
        return {
            "L": [
                checked_serialize_value(item, f"{path}[{i}]", convert_floats, binary, depth + 1)
                for i, item in enumerate(value)
            ]
        }
    if isinstance(value, Mapping):
        return {"M": checked_serialize_map(value, path, convert_floats, binary, depth + 1)}
    raise SerializationError(path, f"unsupported type {_type_name(value)}")


def checked_serialize_map(
    obj: object, path: str, convert_floats: bool, binary: BinaryMode, depth: int = 0
) -> dict[str, Any]:
    if not isinstance(obj, Mapping):
        raise SerializationError(path, f"expected a mapping, got {_type_name(obj)}")
    return {
        key: checked_serialize_value(value, _key_path(path, key), convert_floats, binary, depth)
        for key, value in obj.items()
    }
