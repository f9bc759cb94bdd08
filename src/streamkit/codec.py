"""DynamoDB JSON <-> Python. PLACEHOLDER: simple reference version; being replaced by the fast one."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, Literal

from streamkit.exceptions import DeserializationError, SerializationError

__all__ = ["deserialize", "deserialize_value", "serialize", "serialize_value"]

NumberMode = Literal["decimal", "native"]


def deserialize_value(av: Mapping[str, Any], *, numbers: NumberMode = "decimal", path: str = "") -> Any:
    if not isinstance(av, Mapping) or len(av) != 1:
        raise DeserializationError(path, f"expected a single-tag attribute value, got {av!r}")
    ((tag, v),) = av.items()
    if tag == "S":
        return v
    if tag == "N":
        return Decimal(v) if numbers == "decimal" else (int(v) if v.lstrip("-").isdigit() else float(v))
    if tag == "B":
        return v if isinstance(v, bytes) else base64.b64decode(v)
    if tag == "BOOL":
        return v
    if tag == "NULL":
        return None
    if tag == "L":
        return [deserialize_value(x, numbers=numbers, path=f"{path}[{i}]") for i, x in enumerate(v)]
    if tag == "M":
        return deserialize(v, numbers=numbers, path=path)
    if tag == "SS":
        return set(v)
    if tag == "NS":
        return {Decimal(x) for x in v}
    if tag == "BS":
        return {x if isinstance(x, bytes) else base64.b64decode(x) for x in v}
    raise DeserializationError(path, f"unknown type tag {tag!r}")


def deserialize(image: Mapping[str, Any], *, numbers: NumberMode = "decimal", path: str = "") -> dict[str, Any]:
    return {
        k: deserialize_value(v, numbers=numbers, path=f"{path}.{k}" if path else k)
        for k, v in image.items()
    }


def serialize_value(value: Any, *, path: str = "", convert_floats: bool = False) -> dict[str, Any]:
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, Decimal)):
        return {"N": str(value)}
    if isinstance(value, (bytes, bytearray)):
        return {"B": bytes(value)}
    if isinstance(value, Mapping):
        return {"M": serialize(value, path=path, convert_floats=convert_floats)}
    if isinstance(value, (list, tuple)):
        return {"L": [serialize_value(x, path=f"{path}[{i}]") for i, x in enumerate(value)]}
    raise SerializationError(path, f"unsupported type {type(value).__name__}")


def serialize(obj: Mapping[str, Any], *, path: str = "", convert_floats: bool = False) -> dict[str, Any]:
    return {
        k: serialize_value(v, path=f"{path}.{k}" if path else k, convert_floats=convert_floats)
        for k, v in obj.items()
    }
