"""EventBridge-style patterns over a record's *deserialized* images.

A route's ``pattern=`` is matched by the same engine, with the same semantics, as a mapping's
``FilterCriteria`` (``streamkit.filters.FilterPattern``). Only the document it is applied to
differs: instead of the record as Lambda delivers it (images in DynamoDB JSON), it sees this
view, with plain values::

    {
      "eventName": "MODIFY",                      # INSERT | MODIFY | REMOVE
      "table": "orders",                          # from eventSourceARN
      "keys": {"pk": "ORDER#1"},
      "new": {"status": "PAID", "total": 25.5},   # absent for a REMOVE
      "old": {"status": "PLACED", ...}            # absent for an INSERT
    }

so patterns name attributes without their DynamoDB type::

    {"eventName": ["MODIFY"], "new": {"status": ["PAID"], "total": [{"numeric": [">", 100]}]}}

What that means, precisely (the differential test in tests/unit/test_routing_patterns.py checks
every point against the mapping filter engine on generated records):

- strings, booleans and null match as in the DynamoDB-JSON form: ``{"new": {"status":
  ["PAID"]}}`` agrees with ``{"dynamodb": {"NewImage": {"status": {"S": ["PAID"]}}}}``;
  ``[true]`` with ``{"BOOL": [true]}``, ``[null]`` with ``{"NULL": [true]}``;
- numbers are numbers: ``[5]`` matches ``{"N": "5"}`` (numerically, so also ``"5.0"``), and
  ``numeric`` works, which it cannot on the DynamoDB-JSON form, where N values are strings.
  The engine's limits apply: numbers compare numerically within +/-5e9 and six decimals;
- maps nest (``{"new": {"address": {"city": ["Oslo"]}}}``); lists and sets (SS, NS, BS) are
  arrays, matching when any element matches;
- ``exists`` holds for a present scalar, list or set; a map is not a leaf, as in the raw form;
- binary values exist but equal nothing (patterns cannot spell bytes);
- the one deliberate difference: a plain pattern does not name the type, so where an attribute
  holds different types on different items, ``anything-but`` and ``exists`` see every type.
  Name the type with ``raw_pattern=`` (the DynamoDB-JSON form, exactly a FilterCriteria
  pattern) when that matters.

Patterns are validated when built: bad syntax raises ``InvalidFilterPatternError`` and a field
other than the five above raises it too (a typo such as ``NewImage`` would otherwise match
nothing, silently).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from streamkit.exceptions import InvalidFilterPatternError
from streamkit.filters import FilterPattern
from streamkit.records import StreamRecord
from streamkit.routing.predicates import Predicate, event_name_of, image_not_available

__all__ = ["VIEW_FIELDS", "ImagePattern", "matches", "record_view"]

VIEW_FIELDS: Final = ("eventName", "table", "keys", "new", "old")


def _event_name(record: StreamRecord) -> Any:
    return event_name_of(record)


def _table(record: StreamRecord) -> Any:
    return record.table_name


def _keys(record: StreamRecord) -> Any:
    return record.keys


def _new(record: StreamRecord) -> Any:
    image = record.new_image
    if image is None and event_name_of(record) != "REMOVE":
        raise image_not_available(record, "NewImage")
    return image


def _old(record: StreamRecord) -> Any:
    image = record.old_image
    if image is None and event_name_of(record) != "INSERT":
        raise image_not_available(record, "OldImage")
    return image


_READERS: Final[dict[str, Callable[[StreamRecord], Any]]] = {
    "eventName": _event_name,
    "table": _table,
    "keys": _keys,
    "new": _new,
    "old": _old,
}


def record_view(record: StreamRecord, fields: tuple[str, ...] = VIEW_FIELDS) -> dict[str, Any]:
    """The document image patterns are matched against (only ``fields`` of it). Raises
    ``ImageNotAvailableError`` when a field needs an image the stream view type left out."""
    view: dict[str, Any] = {}
    for field in fields:
        value = _READERS[field](record)
        if value is not None:
            view[field] = value
    return view


def _top_level_fields(definition: Any, where: str) -> set[str]:
    """The view fields a pattern reads, looking through a top-level ``$or``."""
    if not isinstance(definition, Mapping):
        raise InvalidFilterPatternError(f"{where}: a pattern must be a JSON object")
    fields: set[str] = set()
    for key, value in definition.items():
        if key == "$or" and isinstance(value, list) and all(isinstance(v, Mapping) for v in value):
            for alternative in value:
                fields |= _top_level_fields(alternative, where)
        else:
            fields.add(key)
    return fields


class ImagePattern(Predicate):
    """A compiled image pattern; also a ``Predicate``, so it composes with ``&``/``|``/``~``."""

    __slots__ = ("_fields", "_match", "source")

    def __init__(self, pattern: str | Mapping[str, Any]) -> None:
        compiled = FilterPattern.parse(pattern)  # syntax first: its errors are the familiar ones
        self.source = compiled.source
        definition = json.loads(pattern) if isinstance(pattern, str) else pattern
        fields = _top_level_fields(definition, "image pattern")
        unknown = sorted(fields - set(VIEW_FIELDS))
        if unknown:
            raise InvalidFilterPatternError(
                f"unknown field(s) {unknown}: image patterns see {list(VIEW_FIELDS)}; "
                "use raw_pattern= for the record as Lambda delivers it (DynamoDB JSON)",
                pattern=self.source,
            )
        self._fields = tuple(f for f in VIEW_FIELDS if f in fields)
        self._match = compiled.matches

    @property
    def fields(self) -> tuple[str, ...]:
        """The view fields this pattern reads."""
        return self._fields

    def __call__(self, record: StreamRecord) -> bool:
        fields = self._fields
        if len(fields) == 1:  # the common case: one image
            (field,) = fields
            value = _READERS[field](record)
            return self._match({} if value is None else {field: value})
        return self._match(record_view(record, fields))

    def describe(self) -> str:
        return f"matches({self.source})"


def matches(pattern: str | Mapping[str, Any]) -> ImagePattern:
    """An image pattern as a predicate: ``matches({"new": {"total": [{"numeric": [">", 100]}]}})``."""
    return ImagePattern(pattern)
