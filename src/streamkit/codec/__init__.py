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

Lists and maps nest at most 32 levels deep, as in DynamoDB; deeper input (or a value that
contains itself) is an error, never a RecursionError or a crash.

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
their attribute. Tests check that both walkers agree. The fast walkers are in
``_fast_deserializer`` and ``_fast_serializer``, the checked ones in ``_checked``, and the
number rules they share in ``_rules``.

The fast deserializer also exists compiled: ``_native_deserializer`` is the same walk written
for mypyc, which wheels and ``make`` builds compile to a C extension (``hatch_build.py``).
``_walker`` picks it when it is importable and current, else the pure-Python walker;
``COMPILED`` tells which, and ``STREAMKIT_PURE_PYTHON=1`` forces the pure one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from streamkit.codec._checked import checked_map as _checked_map
from streamkit.codec._checked import checked_serialize_map as _checked_serialize_map
from streamkit.codec._checked import checked_serialize_value as _checked_serialize_value
from streamkit.codec._checked import checked_value as _checked_value
from streamkit.codec._fast_serializer import fast_serialize_map_for as _fast_serialize_map_for
from streamkit.codec._rules import MAX_ADJUSTED_EXPONENT as MAX_ADJUSTED_EXPONENT
from streamkit.codec._rules import MAX_NESTING_DEPTH as MAX_NESTING_DEPTH
from streamkit.codec._rules import MAX_SIGNIFICANT_DIGITS as MAX_SIGNIFICANT_DIGITS
from streamkit.codec._rules import MIN_ADJUSTED_EXPONENT as MIN_ADJUSTED_EXPONENT

# Unused here: the tests look at the bounds of the number tables.
from streamkit.codec._rules import RECENT_NUMBERS_KEPT as _RECENT_NUMBERS_KEPT  # noqa: F401
from streamkit.codec._rules import SMALL_NUMBERS_KEPT as _SMALL_NUMBERS_KEPT  # noqa: F401
from streamkit.codec._rules import BinaryMode, NumberMode
from streamkit.codec._walker import load_deserializer as _load_deserializer

# The fast deserializer in use: compiled by mypyc when available (see _walker).
_deserializer = _load_deserializer()
_fast_decimal_map = _deserializer.decimal_map
_fast_map_for = _deserializer.map_for
COMPILED: bool = _deserializer.compiled
"""True when the compiled (mypyc) deserializer is in use; results are the same either way."""

__all__ = [
    "COMPILED",
    "BinaryMode",
    "NumberMode",
    "deserialize",
    "deserialize_value",
    "serialize",
    "serialize_value",
]


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
