"""The fast deserializer written for mypyc: the same walk as ``_fast_deserializer``, compiled.

Wheels and ``make`` builds compile this module to a C extension (``hatch_build.py``). It is
about 1.5x faster than the best interpreted walker, so the codec uses it whenever the
compiled form is importable (see ``codec._walker``), and ``_fast_deserializer`` otherwise.

It is written for the compiler, not the interpreter: plain module-level functions with
declared types, which mypyc turns into direct C calls and native dict iteration. Interpreted,
this style is about a third slower than ``_fast_deserializer``'s closures, which is why that
module stays the pure-Python walker rather than this one.

The contract is the fast walkers' contract: return exactly what the checked walker would for
the common, exact types, and raise (anything at all) for the rest. A declared type that does
not match the input makes the compiled code raise TypeError, which is one of those raises:
``deserialize`` then asks the checked walker, which accepts or names the attribute.
"""

from __future__ import annotations

import binascii
from collections.abc import Callable
from typing import Any, Final

from streamkit.codec._rules import (
    DYNAMODB_CONTEXT,
    MAX_NESTING_DEPTH,
    SMALL_NUMBER_MAX_LEN,
    SMALL_NUMBERS_KEPT,
    ShortNumberTables,
    Unusual,
    native_number,
)

# Final module-level names: mypyc compiles them to static lookups. Short number texts are
# remembered per number mode, as in _fast_deserializer (bounds and reasons in _rules).
_to_decimal: Final = DYNAMODB_CONTEXT.create_decimal
_SMALL_LEN: Final = SMALL_NUMBER_MAX_LEN
_KEPT: Final = SMALL_NUMBERS_KEPT
_short_numbers: Final = ShortNumberTables()
_small_decimals: Final[dict[str, Any]] = _short_numbers.decimals
_small_natives: Final[dict[str, Any]] = _short_numbers.natives


def remembered_numbers() -> int:
    """How many short number texts are remembered, over both number modes."""
    return _short_numbers.remembered()


def forget_numbers() -> None:
    """Empty the short-number tables: the state of a fresh Lambda container."""
    _short_numbers.forget()


def _number(value: Any, native: bool) -> Any:
    text: str = value  # TypeError unless a str
    known = _small_natives if native else _small_decimals
    number = known.get(text)
    if number is None:
        number = _to_decimal(text)
        if not (text.isascii() and number.is_finite()):
            raise Unusual
        if native:
            number = native_number(text, number)
        if len(text) <= _SMALL_LEN and len(known) < _KEPT:
            known[text] = number
    return number


def _binary(value: Any) -> bytes:
    if type(value) is str:
        return binascii.a2b_base64(value, strict_mode=True)
    if type(value) is bytes:
        raw: bytes = value
        return raw
    raise Unusual


def _set(tag: str, value: Any, native: bool) -> set[Any]:
    if type(value) is not list or not value:
        raise Unusual
    members: list[Any] = value
    out: set[Any] = set()
    if tag == "SS":
        for member in members:
            if type(member) is not str:
                raise Unusual
            out.add(member)
    elif tag == "NS":
        for member in members:
            out.add(_number(member, native))
    elif tag == "BS":
        for member in members:
            out.add(_binary(member))
    else:
        raise Unusual
    return out


def _attribute(av: dict[str, Any], native: bool, depth: int) -> Any:
    """One attribute value, enclosed by ``depth`` lists and maps; tags tested in the order of
    their frequency in real items. The depth limit also keeps the C stack safe."""
    if len(av) != 1:
        raise Unusual
    for tag, value in av.items():
        if tag == "S":
            if type(value) is not str:
                raise Unusual
            return value
        if tag == "N":
            return _number(value, native)
        if tag == "M":
            if depth >= MAX_NESTING_DEPTH:
                raise Unusual
            return _map(value, native, depth + 1)
        if tag == "BOOL":
            if type(value) is not bool:
                raise Unusual
            return value
        if tag == "NULL":
            if value is not True:
                raise Unusual
            return None
        if tag == "L":
            if depth >= MAX_NESTING_DEPTH:
                raise Unusual
            return _list(value, native, depth + 1)
        if tag == "B":
            return _binary(value)
        return _set(tag, value, native)
    raise Unusual  # unreachable: len(av) == 1


def _map(image: dict[str, Any], native: bool, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, av in image.items():
        out[key] = _attribute(av, native, depth)
    return out


def _list(items: list[Any], native: bool, depth: int) -> list[Any]:
    return [_attribute(av, native, depth) for av in items]


def fast_decimal_map(image: Any) -> dict[str, Any]:
    """An attribute map with exact Decimal numbers; raises for anything unusual."""
    return _map(image, False, 0)


def fast_native_map(image: Any) -> dict[str, Any]:
    """An attribute map with int/float numbers; raises for anything unusual."""
    return _map(image, True, 0)


def fast_map_for(numbers: str) -> Callable[[Any], dict[str, Any]]:
    if numbers == "decimal":
        return fast_decimal_map
    if numbers == "native":
        return fast_native_map
    raise ValueError(f"numbers must be 'decimal' or 'native', got {numbers!r}")
