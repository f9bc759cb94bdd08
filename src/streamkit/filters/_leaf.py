"""Leaf matchers: the values inside a pattern's arrays, e.g. ``["PAID", {"prefix": "ord-"}]``.

Each array compiles to one :class:`LeafRule`: a test that one event leaf value must pass (any
array element may accept it: the elements are ORed) plus whether ``{"exists": false}`` lets
the field be absent altogether.

Semantics follow aws/event-ruler, the open-source matcher behind EventBridge patterns, whose
syntax Lambda event filtering uses ("For filter rules, Lambda supports the same set of syntax
and rules as Amazon EventBridge",
https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html#filtering-syntax).
The value rules (event-ruler ``ByteMachine``/``JsonRuleCompiler``):

- strings match strings only: ``"5"`` never matches the number 5, so ``numeric`` never matches
  a DynamoDB ``{"N": "5"}`` (the value is the string ``"5"``);
- numbers compare as numbers (5 == 5.0) when they lie within +/-5e9 and have at most six
  decimals, the EventBridge limits; other numbers only equal the same number exactly;
- ``anything-but`` excludes only values of its own kind: ``{"anything-but": "x"}`` matches 5,
  null and true, and ``{"anything-but": {"prefix": "x"}}`` matches any non-string;
- booleans and null are matched only by exact ``true``/``false``/``null``, ``exists`` and
  ``anything-but``.

Leaf values that JSON cannot hold (``bytes``, ``datetime``...: routing may match deserialized
images) behave like a value of a kind no operator names: only ``exists`` and ``anything-but``
match them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from streamkit.exceptions import InvalidFilterPatternError
from streamkit.filters._numbers import (
    comparable,
    exact_decimal,
    finite,
    is_number,
    numeric_operand,
    numeric_test,
)
from streamkit.filters._strings import (
    IpAddress,
    cidr_test,
    ignore_case_test,
    ip_of,
    wildcard_test,
)

LeafTest = Callable[[Any], bool]


@dataclass(frozen=True, slots=True)
class LeafRule:
    """What one pattern array demands of a field: ``test`` for a present leaf value (None when
    the array only says ``{"exists": false}``), ``allow_absent`` when absence also matches."""

    test: LeafTest | None
    allow_absent: bool


# --- operators -------------------------------------------------------------------------------


def _string_operand(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise InvalidFilterPatternError(f"{where}: expected a string, got {value!r}")
    return value


def _any_of(tests: Sequence[LeafTest]) -> LeafTest:
    if len(tests) == 1:
        return tests[0]
    return lambda v: any(test(v) for test in tests)


def _prefix_or_suffix(name: str, operand: Any, where: str) -> LeafTest:
    nested = object_items(operand)
    if nested is not None:
        # {"prefix": {"equals-ignore-case": "..."}}: exactly that one key.
        if len(nested) != 1 or nested[0][0] != "equals-ignore-case":
            raise InvalidFilterPatternError(
                f"{where}: {name} takes a string or {{'equals-ignore-case': string}}"
            )
        return ignore_case_test(_string_operand(nested[0][1], where), name)
    text = _string_operand(operand, where)
    if name == "prefix":
        return lambda v: isinstance(v, str) and v.startswith(text)
    return lambda v: isinstance(v, str) and v.endswith(text)


def _string_list(operand: Any, where: str, *, non_empty: bool) -> list[str]:
    values = operand if isinstance(operand, list) else [operand]
    strings = [_string_operand(v, where) for v in values]
    if non_empty and "" in strings:
        raise InvalidFilterPatternError(
            f"{where}: an empty prefix/suffix is not allowed in anything-but"
        )
    return strings


def _anything_but_test(operand: Any, where: str) -> LeafTest:
    """Matches every leaf except those the operand excludes (of the operand's own kind)."""
    nested = object_items(operand)
    if nested is not None:
        if len(nested) != 1:
            raise InvalidFilterPatternError(
                f"{where}: anything-but takes exactly one nested operator"
            )
        name, inner = nested[0]
        if name in ("prefix", "suffix"):
            affixes = tuple(_string_list(inner, where, non_empty=True))
            if name == "prefix":
                return lambda v: not (isinstance(v, str) and v.startswith(affixes))
            return lambda v: not (isinstance(v, str) and v.endswith(affixes))
        if name == "equals-ignore-case":
            excluded = [
                ignore_case_test(s, "full") for s in _string_list(inner, where, non_empty=False)
            ]
        elif name == "wildcard":
            excluded = [
                wildcard_test(s, where) for s in _string_list(inner, where, non_empty=False)
            ]
        else:
            raise InvalidFilterPatternError(f"{where}: unsupported anything-but operator {name!r}")
        return lambda v: not any(test(v) for test in excluded)
    values = operand if isinstance(operand, list) else [operand]
    if values and all(isinstance(v, str) for v in values):
        strings = frozenset(values)
        return lambda v: not (isinstance(v, str) and v in strings)
    if values and all(is_number(v) for v in values):
        numbers = frozenset(numeric_operand(v, where) for v in values)
        return lambda v: comparable(v) not in numbers
    raise InvalidFilterPatternError(f"{where}: anything-but takes strings only or numbers only")


def _operator_test(pairs: list[tuple[str, Any]], where: str) -> LeafTest | None:
    """One ``{"operator": operand}`` object; None stands for ``{"exists": false}``."""
    if len(pairs) != 1:
        raise InvalidFilterPatternError(f"{where}: a match expression must have exactly one key")
    name, operand = pairs[0]
    where = f"{where}.{name}"
    if name in ("prefix", "suffix"):
        return _prefix_or_suffix(name, operand, where)
    if name == "equals-ignore-case":
        return ignore_case_test(_string_operand(operand, where), "full")
    if name == "anything-but":
        return _anything_but_test(operand, where)
    if name == "numeric":
        return numeric_test(operand, where)
    if name == "exists":
        if operand is True:
            return _present
        if operand is False:
            return None
        raise InvalidFilterPatternError(f"{where}: exists takes true or false")
    if name == "wildcard":
        return wildcard_test(_string_operand(operand, where), where)
    if name == "cidr":
        return cidr_test(_string_operand(operand, where), where)
    if name == "exactly":  # event-ruler's explicit exact string match
        text = _string_operand(operand, where)
        return lambda v: isinstance(v, str) and v == text
    raise InvalidFilterPatternError(f"{where}: unrecognised match type {name!r}")


def _present(value: Any) -> bool:
    return True


def _exact_test(values: Iterable[Any], where: str) -> LeafTest:
    """Exact matches for plain array elements: strings, numbers, booleans and null."""
    strings: set[str] = set()
    addresses: set[IpAddress] = set()
    numbers: set[float] = set()
    other_numbers: set[Decimal] = set()
    constants: list[Any] = []  # None, True, False: compared by identity
    for value in values:
        if isinstance(value, str):
            # event-ruler turns an IP-literal string into a one-address range, so it matches
            # any spelling of that address (JsonRuleCompiler.writeRules, CIDR.ipToRangeIfPossible).
            address = ip_of(value)
            if address is not None:
                addresses.add(address)
            else:
                strings.add(value)
        elif value is None or isinstance(value, bool):
            constants.append(value)
        elif is_number(value) and finite(value):
            number = comparable(value)
            if number is not None:
                numbers.add(number)
            else:  # outside the comparable range event-ruler matches the number's text only
                other_numbers.add(exact_decimal(value))
        else:
            raise InvalidFilterPatternError(
                f"{where}: match values must be strings, numbers, true, false or null"
            )
    frozen_strings, frozen_numbers = frozenset(strings), frozenset(numbers)
    if not (addresses or numbers or other_numbers or constants):
        return lambda v: isinstance(v, str) and v in frozen_strings

    def test(value: Any) -> bool:
        if isinstance(value, str):
            if value in frozen_strings:
                return True
            return bool(addresses) and ip_of(value) in addresses
        if value is None or isinstance(value, bool):
            return any(value is constant for constant in constants)
        number = comparable(value)
        if number is not None:
            return number in frozen_numbers
        return (
            bool(other_numbers)
            and is_number(value)
            and finite(value)
            and (exact_decimal(value) in other_numbers)
        )

    return test


class JsonObject:
    """A JSON object of pattern text as its (key, value) pairs in document order, duplicates
    included (``json.loads`` object_pairs_hook): event-ruler's streaming parser sees every
    pair, where a dict would keep only the last of a repeated key."""

    __slots__ = ("pairs",)

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        self.pairs = pairs


def object_items(value: Any) -> list[tuple[str, Any]] | None:
    """The (key, value) pairs of a JSON object (JsonObject or Mapping), or None."""
    if isinstance(value, JsonObject):
        return value.pairs
    if isinstance(value, Mapping):
        return list(value.items())
    return None


def compile_leaf_list(values: Any, where: str) -> LeafRule:
    """Compile one pattern array, e.g. ``["a", 5, {"prefix": "x"}, {"exists": false}]``."""
    if not isinstance(values, list) or not values:
        raise InvalidFilterPatternError(f"{where}: empty arrays are not allowed")
    tests: list[LeafTest] = []
    allow_absent = False
    plain: list[Any] = []
    for value in values:
        pairs = object_items(value)
        if pairs is None:
            if isinstance(value, list):
                raise InvalidFilterPatternError(
                    f"{where}: match values must be strings, numbers, true, false or null"
                )
            plain.append(value)
            continue
        test = _operator_test(pairs, where)
        if test is None:
            allow_absent = True
        else:
            tests.append(test)
    if plain:
        tests.insert(0, _exact_test(plain, where))
    if _present in tests:
        tests = [_present]
    return LeafRule(test=_any_of(tests) if tests else None, allow_absent=allow_absent)
