"""Refusing wildcard patterns that would make the matcher too complex, as EventBridge does.

EventBridge (event-ruler's ``MachineComplexityEvaluator``) rejects a pattern whose wildcards let
one input string keep too many matcher states alive at once, with "Event pattern is not valid.
Reason: Rule is too complex - try using fewer wildcard characters or fewer repeating character
sequences after a wildcard character"
(https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html#eb-filtering-wildcard-matching
warns about such patterns). The measure, per field: explore every set of wildcard positions an
input can reach (each ``*`` a state that loops on any character, each literal a step), and
count the states alive together; over :data:`MAX_COMPLEXITY` is too complex. All wildcards of
one field count together, across ``$or`` alternatives, as event-ruler builds one machine per
field. Strings are taken with their enclosing quotes, as event-ruler matches JSON text.

AWS does not document the limit; 10 is the figure a public reimplementation of EventBridge's
admission check uses (wildcardComplexityLimit), and this count of live states is a close
approximation of event-ruler's weighted one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from streamkit.exceptions import InvalidFilterPatternError
from streamkit.filters._leaf import object_items

__all__ = ["MAX_COMPLEXITY", "TOO_COMPLEX", "check_wildcard_complexity"]

MAX_COMPLEXITY = 10
TOO_COMPLEX = (
    "Rule is too complex - try using fewer wildcard characters or fewer repeating character "
    "sequences after a wildcard character"
)
_STAR = -1
_OTHER = -2  # any character no pattern names
_MAX_SETS = 20000  # exploring more sets than this is itself "too complex"


def _tokens(pattern: str) -> list[int]:
    out = [ord('"')]
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            out.append(_STAR)
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            out.append(ord(pattern[index]))
        else:
            out.append(ord(char))
        index += 1
    out.append(ord('"'))
    return out


def _wildcards(leaf: list[Any]) -> Iterator[str]:
    for element in leaf:
        pairs = object_items(element)
        if pairs is None or len(pairs) != 1:
            continue
        name, operand = pairs[0]
        if name == "anything-but":
            inner = object_items(operand)
            if inner is None or len(inner) != 1 or inner[0][0] != "wildcard":
                continue
            name, operand = inner[0]
        if name == "wildcard":
            values = operand if isinstance(operand, list) else [operand]
            yield from (v for v in values if isinstance(v, str))


def _fields(node: Any, path: tuple[str, ...], out: dict[tuple[str, ...], list[str]]) -> None:
    pairs = object_items(node)
    if pairs is None:
        return
    for key, value in pairs:
        if key == "$or" and isinstance(value, list):
            for alternative in value:
                _fields(alternative, path, out)
        elif isinstance(value, list):
            out.setdefault((*path, *str(key).split(".")), []).extend(_wildcards(value))
        else:
            _fields(value, (*path, *str(key).split(".")), out)


def _closure(states: set[tuple[int, int]], machines: list[list[int]]) -> frozenset[tuple[int, int]]:
    # A star may match nothing: being before it is also being after it.
    pending = list(states)
    seen = set(states)
    while pending:
        machine, position = pending.pop()
        tokens = machines[machine]
        if position < len(tokens) and tokens[position] == _STAR:
            after = (machine, position + 1)
            if after not in seen:
                seen.add(after)
                pending.append(after)
    return frozenset(seen)


def complexity(patterns: list[str]) -> int:
    """The most matcher states one input keeps alive at once, over every input."""
    machines = [_tokens(p) for p in patterns]
    alphabet = [*sorted({t for m in machines for t in m if t != _STAR}), _OTHER]
    start = _closure({(m, 0) for m in range(len(machines))}, machines)
    worst, seen, pending = 0, {start}, [start]
    while pending:
        current = pending.pop()
        for char in alphabet:
            moved: set[tuple[int, int]] = set()
            for machine, position in current:
                tokens = machines[machine]
                if position >= len(tokens):
                    continue
                token = tokens[position]
                if token == _STAR:
                    moved.add((machine, position))  # the star consumes it and stays
                elif token == char:
                    moved.add((machine, position + 1))
            if not moved:
                continue
            reached = _closure(moved, machines)
            alive = sum(1 for m, p in reached if p > 0)
            if alive > MAX_COMPLEXITY or len(seen) > _MAX_SETS:
                return max(alive, MAX_COMPLEXITY + 1)
            worst = max(worst, alive)
            if reached not in seen:
                seen.add(reached)
                pending.append(reached)
    return worst


def check_wildcard_complexity(definition: Any) -> None:
    """Raise InvalidFilterPatternError(TOO_COMPLEX) for a pattern EventBridge would refuse."""
    fields: dict[tuple[str, ...], list[str]] = {}
    _fields(definition, (), fields)
    for patterns in fields.values():
        if patterns and complexity(sorted(set(patterns))) > MAX_COMPLEXITY:
            raise InvalidFilterPatternError(TOO_COMPLEX)
