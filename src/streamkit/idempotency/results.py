"""How results are stored: as JSON text in the item's ``result`` attribute.

``None`` and falsy results (``0``, ``False``, ``""``, ``[]``, ``{}``) are stored and returned
as themselves: the text ``null`` means ``None``, and a missing attribute means "no result was
stored" (Powertools treated falsy results as missing, issues #8090 and #5150).

JSON changes some types on the way back: tuples become lists, sets become sorted lists,
``Decimal`` becomes ``int`` when integral and ``float`` otherwise. Pass your own
``ResultSerializer`` for exact round trips.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Protocol

__all__ = ["JsonResultSerializer", "ResultSerializer"]


class ResultSerializer(Protocol):
    def dumps(self, result: Any) -> str: ...

    def loads(self, text: str) -> Any: ...


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class JsonResultSerializer:
    """Compact JSON. Raises ``TypeError``/``ValueError`` for values JSON cannot hold."""

    def dumps(self, result: Any) -> str:
        return json.dumps(result, separators=(",", ":"), default=_json_default, allow_nan=False)

    def loads(self, text: str) -> Any:
        return json.loads(text)
