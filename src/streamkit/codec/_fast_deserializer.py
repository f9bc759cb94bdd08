"""The fast deserializer: DynamoDB JSON to Python for the exact, common types.

It handles those inline inside the map and list loops (no function call per scalar; tags
compared in frequency order), validates numbers as a side effect of converting them in a
strict decimal context, converts short number texts ("1", "0.00") once and then looks them
up, and tracks no path. Whatever it is not sure about (unusual types, subclasses, anything
invalid) makes it raise, and ``_checked.checked_map`` decides.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Any

from streamkit.codec._rules import (
    DYNAMODB_CONTEXT,
    MAX_NESTING_DEPTH,
    SMALL_NUMBER_MAX_LEN,
    SMALL_NUMBERS_KEPT,
    NumberMode,
    ShortNumberTables,
    Unusual,
    native_number,
)


def build_fast_deserializer(
    numbers: NumberMode, small_numbers: dict[str, Any]
) -> Callable[[Any], Any]:
    """The fast walker for one number mode; returns its map function.

    ``small_numbers`` is the mode's table of converted short number texts (see
    ``_rules.SMALL_NUMBERS_KEPT`` for what is kept and why).

    The map and list loops repeat the same tag chain on purpose: handling scalars inline
    saves a Python call per value, which is most of the cost of a walk. Tags are tested in
    the order of their frequency in real items.
    """
    to_decimal = DYNAMODB_CONTEXT.create_decimal
    native = numbers == "native"
    to_native = native_number
    small_len = SMALL_NUMBER_MAX_LEN
    kept = SMALL_NUMBERS_KEPT
    known = small_numbers.get
    a2b_base64 = binascii.a2b_base64
    copy_dict = dict.copy
    max_depth = MAX_NESTING_DEPTH

    def number(text: Any) -> Any:
        """What the inline N branches below do, for the rarer NS members."""
        value = known(text)
        if value is None:
            value = to_decimal(text)
            if not (text.isascii() and value.is_finite()):  # also fails for a non-str
                raise Unusual
            if native:
                value = to_native(text, value)
            if len(text) <= small_len and len(small_numbers) < kept:
                small_numbers[text] = value
        return value

    def binary(value: Any) -> bytes:
        if value.__class__ is str:
            return a2b_base64(value, strict_mode=True)
        if value.__class__ is bytes:
            return value
        raise Unusual

    def string_set(members: Any) -> set[str]:
        if members.__class__ is not list or not members:
            raise Unusual
        "".join(members)  # raises TypeError unless every member is a str
        return set(members)

    def number_set(members: Any) -> set[Any]:
        if members.__class__ is not list or not members:
            raise Unusual
        return {number(m) for m in members}

    def binary_set(members: Any) -> set[bytes]:
        if members.__class__ is not list or not members:
            raise Unusual
        return {binary(m) for m in members}

    sets: dict[str, Callable[[Any], Any]] = {
        "SS": string_set,
        "NS": number_set,
        "BS": binary_set,
    }

    # ``depth``: how many lists and maps enclose the values being walked.
    def map_(image: Any, depth: int = 0) -> dict[str, Any]:
        # Starting from a copy allocates the result at its final size once; each store
        # below then replaces a value instead of growing the dict.
        out: dict[str, Any] = copy_dict(image)
        for key, av in image.items():
            (tag,) = av  # exactly one tag, or ValueError
            v = av[tag]
            if tag == "S":
                if v.__class__ is not str:
                    raise Unusual
                out[key] = v
            elif tag == "N":
                value = known(v)
                if value is None:
                    value = to_decimal(v)
                    if not (v.isascii() and value.is_finite()):
                        raise Unusual
                    if native:
                        value = to_native(v, value)
                    if len(v) <= small_len and len(small_numbers) < kept:
                        small_numbers[v] = value
                out[key] = value
            elif tag == "M":
                if depth >= max_depth:
                    raise Unusual
                out[key] = map_(v, depth + 1)
            elif tag == "BOOL":
                if v.__class__ is not bool:
                    raise Unusual
                out[key] = v
            elif tag == "NULL":
                if v is not True:
                    raise Unusual
                out[key] = None
            elif tag == "L":
                if depth >= max_depth:
                    raise Unusual
                out[key] = list_(v, depth + 1)
            elif tag == "B":
                out[key] = binary(v)
            else:
                out[key] = sets[tag](v)
        return out

    def list_(items: Any, depth: int) -> list[Any]:
        if items.__class__ is not list:
            raise Unusual
        out: list[Any] = []
        append = out.append
        for av in items:
            (tag,) = av
            v = av[tag]
            if tag == "S":
                if v.__class__ is not str:
                    raise Unusual
                append(v)
            elif tag == "N":
                value = known(v)
                if value is None:
                    value = to_decimal(v)
                    if not (v.isascii() and value.is_finite()):
                        raise Unusual
                    if native:
                        value = to_native(v, value)
                    if len(v) <= small_len and len(small_numbers) < kept:
                        small_numbers[v] = value
                append(value)
            elif tag == "M":
                if depth >= max_depth:
                    raise Unusual
                append(map_(v, depth + 1))
            elif tag == "BOOL":
                if v.__class__ is not bool:
                    raise Unusual
                append(v)
            elif tag == "NULL":
                if v is not True:
                    raise Unusual
                append(None)
            elif tag == "L":
                if depth >= max_depth:
                    raise Unusual
                append(list_(v, depth + 1))
            elif tag == "B":
                append(binary(v))
            else:
                append(sets[tag](v))
        return out

    return map_


_short_numbers = ShortNumberTables()
fast_decimal_map = build_fast_deserializer("decimal", _short_numbers.decimals)
fast_native_map = build_fast_deserializer("native", _short_numbers.natives)
remembered_numbers = _short_numbers.remembered
forget_numbers = _short_numbers.forget


def fast_map_for(numbers: str) -> Callable[[Any], Any]:
    if numbers == "decimal":
        return fast_decimal_map
    if numbers == "native":
        return fast_native_map
    raise ValueError(f"numbers must be 'decimal' or 'native', got {numbers!r}")
