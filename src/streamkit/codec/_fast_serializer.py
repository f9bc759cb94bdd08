"""The fast serializer: Python to DynamoDB JSON for the exact, common types.

Built like the fast deserializer: scalars inline in the map and list loops, exact classes
only, no path. Whatever it is not sure about makes it raise, and
``_checked.checked_serialize_map`` decides.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from streamkit.codec._checked import checked_number_text
from streamkit.codec._rules import MAX_NESTING_DEPTH, MAX_SIGNIFICANT_DIGITS, BinaryMode, Unusual

# The fast serializer's test: str() of an int or Decimal made only of these characters and
# at most 38 long is a valid DynamoDB number (at most 38 digits, magnitude 1E-37..1E+38).
_PLAIN_NUMBER_CHARS = "0123456789.-"
_PLAIN_NUMBER_MAX_LEN = MAX_SIGNIFICANT_DIGITS


def build_fast_serializer(convert_floats: bool, binary: BinaryMode) -> Callable[[Any], Any]:
    """The fast walker for one option set; returns its map function (see the deserializer)."""
    chars = _PLAIN_NUMBER_CHARS
    max_len = _PLAIN_NUMBER_MAX_LEN
    raw_binary = binary == "bytes"
    b2a = base64.b64encode
    max_depth = MAX_NESTING_DEPTH

    def checked_text(value: Any) -> str:
        # Valid but unusual numbers (exponents, over 38 characters) are converted here;
        # invalid ones raise, and the checked walker then reports them with their path.
        return checked_number_text(value, "", convert_floats)

    def number_text(value: Any) -> str:
        cls = value.__class__
        if cls is int:
            text = str(value)
            return text if len(text) <= max_len else checked_text(value)
        if cls is Decimal:
            text = str(value)
        elif cls is float and convert_floats:
            text = repr(value)
        else:
            raise Unusual
        return text if len(text) <= max_len and not text.strip(chars) else checked_text(value)

    def set_(members: Any) -> dict[str, Any]:
        items = list(members)
        if not items:
            raise Unusual
        kind = items[0].__class__
        if kind is str:
            for m in items:
                if m.__class__ is not str:
                    raise Unusual
            return {"SS": items}
        if kind is bytes:
            for m in items:
                if m.__class__ is not bytes:
                    raise Unusual
            return {"BS": items if raw_binary else [b2a(m).decode("ascii") for m in items]}
        return {"NS": [number_text(m) for m in items]}

    # ``depth``: how many lists and maps enclose the values being walked.
    def map_(obj: Any, depth: int = 0) -> dict[str, Any]:
        out = {}
        for key, v in obj.items():
            cls = v.__class__
            if cls is str:
                out[key] = {"S": v}
            elif cls is int:
                text = str(v)
                out[key] = {"N": text if len(text) <= max_len else checked_text(v)}
            elif cls is Decimal:
                text = str(v)
                if len(text) > max_len or text.strip(chars):
                    text = checked_text(v)
                out[key] = {"N": text}
            elif cls is dict:
                if depth >= max_depth:
                    raise Unusual
                out[key] = {"M": map_(v, depth + 1)}
            elif cls is list or cls is tuple:
                if depth >= max_depth:
                    raise Unusual
                out[key] = {"L": list_(v, depth + 1)}
            elif cls is bool:
                out[key] = {"BOOL": v}
            elif v is None:
                out[key] = {"NULL": True}
            elif cls is bytes:
                out[key] = {"B": v if raw_binary else b2a(v).decode("ascii")}
            elif cls is set or cls is frozenset:
                out[key] = set_(v)
            else:
                out[key] = {"N": number_text(v)}  # a float, or Unusual
        return out

    def list_(items: Any, depth: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        append = out.append
        for v in items:
            cls = v.__class__
            if cls is str:
                append({"S": v})
            elif cls is int:
                text = str(v)
                append({"N": text if len(text) <= max_len else checked_text(v)})
            elif cls is Decimal:
                text = str(v)
                if len(text) > max_len or text.strip(chars):
                    text = checked_text(v)
                append({"N": text})
            elif cls is dict:
                if depth >= max_depth:
                    raise Unusual
                append({"M": map_(v, depth + 1)})
            elif cls is list or cls is tuple:
                if depth >= max_depth:
                    raise Unusual
                append({"L": list_(v, depth + 1)})
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
    (convert_floats, binary): build_fast_serializer(convert_floats, binary)
    for convert_floats in (False, True)
    for binary in ("bytes", "base64")
}


def fast_serialize_map_for(convert_floats: bool, binary: str) -> Callable[[Any], Any]:
    try:
        return _FAST_SERIALIZE_MAP[bool(convert_floats), binary]
    except KeyError:
        raise ValueError(f"binary must be 'bytes' or 'base64', got {binary!r}") from None
