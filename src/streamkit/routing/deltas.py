"""Deltas: what one record adds to which aggregates. Shared by both aggregators.

A deltas function maps a record to the amounts it adds::

    def revenue_per_minute(record):
        if became("status", "PAID")(record):
            minute = record.approximate_creation_time.strftime("%Y-%m-%dT%H:%M")
            yield Delta({"pk": f"REVENUE#{minute}"}, {"revenue": record.new_image["total"],
                                                      "orders": 1})

Keys are the aggregate item's key (string, integer or Decimal values); amounts are ints or
Decimals (floats are refused: they do not add up exactly). Sums are exact, to DynamoDB's 38
digits.
"""

from __future__ import annotations

import base64
import decimal
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from streamkit.records import StreamRecord
from streamkit.routing.exceptions import InvalidDeltaError

__all__ = ["Aggregate", "AggregateKey", "Delta", "DeltasFunction", "collect_deltas"]

# DynamoDB numbers carry up to 38 significant digits.
# https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html
NUMBER_CONTEXT: Final = decimal.Context(prec=38, traps=[decimal.Inexact, decimal.Overflow])

# A key in canonical form: sorted (attribute, DynamoDB type, canonical text) triples.
AggregateKey = tuple[tuple[str, str, str], ...]


@dataclass(frozen=True, slots=True)
class Delta:
    """Add ``values`` ({attribute: amount}) to the aggregate whose key is ``key``."""

    key: Mapping[str, Any]
    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One aggregate's totals: its key (plain values) and {attribute: Decimal}."""

    key: dict[str, Any]
    values: dict[str, Decimal]


DeltasFunction = Callable[[StreamRecord], Iterable[Delta] | None]


def canonical_key(key: Any, sequence_number: str) -> AggregateKey:
    if not isinstance(key, Mapping) or not key:
        raise InvalidDeltaError(
            sequence_number, f"a delta key must be a non-empty map, not {key!r}"
        )
    triples: list[tuple[str, str, str]] = []
    for name, value in key.items():
        if not isinstance(name, str) or not name:
            raise InvalidDeltaError(sequence_number, f"key attribute names are strings: {name!r}")
        if isinstance(value, str) and value:
            triples.append((name, "S", value))
        elif isinstance(value, int | Decimal) and not isinstance(value, bool):
            triples.append((name, "N", _number_text(value, sequence_number)))
        elif isinstance(value, bytes | bytearray) and value:
            triples.append((name, "B", base64.b64encode(bytes(value)).decode("ascii")))
        else:
            raise InvalidDeltaError(
                sequence_number,
                f"key {name!r} must be a non-empty string, a number or bytes, not {value!r}",
            )
    return tuple(sorted(triples))


def key_attribute_values(key: AggregateKey) -> dict[str, Any]:
    """The canonical key as a DynamoDB ``Key`` (binary as base64 text, which boto3 accepts
    only as bytes: decoded here)."""
    out: dict[str, Any] = {}
    for name, tag, text in key:
        out[name] = {"B": base64.b64decode(text)} if tag == "B" else {tag: text}
    return out


def key_plain(key: AggregateKey) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, tag, text in key:
        out[name] = Decimal(text) if tag == "N" else base64.b64decode(text) if tag == "B" else text
    return out


def _number_text(value: int | Decimal, sequence_number: str) -> str:
    number = Decimal(value)
    if not number.is_finite():
        raise InvalidDeltaError(sequence_number, f"{value!r} is not a finite number")
    if number.is_zero():
        return "0"
    try:
        return format(number.normalize(NUMBER_CONTEXT), "f")
    except decimal.DecimalException as exc:
        raise InvalidDeltaError(sequence_number, f"{value!r} has more than 38 digits") from exc


def _amount(value: Any, attribute: str, sequence_number: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        hint = "; floats do not add exactly, use Decimal" if isinstance(value, float) else ""
        raise InvalidDeltaError(
            sequence_number,
            f"amount of {attribute!r} must be an int or Decimal, not {value!r}{hint}",
        )
    number = Decimal(value)
    if not number.is_finite():
        raise InvalidDeltaError(sequence_number, f"amount of {attribute!r} is {value!r}")
    return number


def collect_deltas(
    function: DeltasFunction, record: StreamRecord
) -> dict[AggregateKey, dict[str, Decimal]]:
    """Run ``function`` on ``record`` and merge its deltas per aggregate (validated; raises
    ``InvalidDeltaError`` or whatever the function raises). Empty when it contributes
    nothing."""
    produced = function(record)
    merged: dict[AggregateKey, dict[str, Decimal]] = {}
    if produced is None:
        return merged
    sequence_number = record.item_identifier
    for delta in produced:
        if not isinstance(delta, Delta):
            raise InvalidDeltaError(sequence_number, f"expected Delta objects, got {delta!r}")
        key = canonical_key(delta.key, sequence_number)
        if not isinstance(delta.values, Mapping) or not delta.values:
            raise InvalidDeltaError(sequence_number, f"delta for {dict(delta.key)} has no values")
        key_names = {name for name, _, _ in key}
        totals = merged.setdefault(key, {})
        for attribute, value in delta.values.items():
            if not isinstance(attribute, str) or not attribute or attribute in key_names:
                raise InvalidDeltaError(
                    sequence_number, f"cannot add to {attribute!r} (not a name, or a key)"
                )
            amount = _amount(value, attribute, sequence_number)
            totals[attribute] = add(totals.get(attribute, Decimal(0)), amount, sequence_number)
    return merged


def add(a: Decimal, b: Decimal, sequence_number: str) -> Decimal:
    try:
        return NUMBER_CONTEXT.add(a, b)
    except decimal.DecimalException as exc:
        raise InvalidDeltaError(
            sequence_number, f"{a} + {b} does not fit DynamoDB's 38 digits"
        ) from exc


def merge_into(
    totals: dict[AggregateKey, dict[str, Decimal]],
    deltas: Mapping[AggregateKey, Mapping[str, Decimal]],
    sequence_number: str,
) -> None:
    for key, values in deltas.items():
        target = totals.setdefault(key, {})
        for attribute, amount in values.items():
            target[attribute] = add(target.get(attribute, Decimal(0)), amount, sequence_number)
