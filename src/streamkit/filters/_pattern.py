"""Compiling a whole pattern and matching it against an event.

A pattern compiles the way event-ruler's JsonRuleCompiler compiles it: into *branches*, one per
combination of ``$or`` alternatives, each a set of leaf paths (``("dynamodb", "NewImage",
"status", "S")``) with the :class:`~streamkit.filters._leaf.LeafRule` each must satisfy. An
event matches when every field of some branch does.

Structure rules (event-ruler JsonRuleCompiler / RuleCompiler, GenericMachine.addRule):

- a pattern is a non-empty object; each value is a non-empty array (a leaf) or a non-empty
  object (descend);
- ``"$or": [obj, obj, ...]`` (two or more objects, none naming an operator such as ``prefix``
  as a field) ORs the objects, each merged with the fields around it. When a pattern breaks
  these rules, event-ruler retries it with ``$or`` as an ordinary field name, so e.g.
  ``{"$or": {"a": ["x"]}}`` is the field ``$or.a``;
- a field repeated (via ``$or``) keeps its last definition, as in event-ruler.

Field names are dotted paths, as event-ruler flattens them: ``{"a.b": [...]}`` in a pattern is
``{"a": {"b": [...]}}``, and an event key ``"a.b"`` holds what ``{"a": {"b": ...}}`` would.

Matching follows event-ruler's array-consistent matcher (``rulesForJSONEvent``):

- only leaves count: a field whose value is an object or an empty array does not "exist";
- an array matches when any element does, and two fields of one branch must come from the
  same element of any array they both descend through;
- ``{"exists": false}`` holds when no leaf at that path is consistent with the array elements
  the fields before it (in event-ruler's sorted field order) have chosen.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import partial
from typing import Any

from streamkit.exceptions import InvalidFilterPatternError
from streamkit.filters._leaf import (
    JsonObject,
    LeafRule,
    LeafTest,
    compile_leaf_list,
    object_items,
)

Path = tuple[str, ...]
# (path, test for a present leaf or None, whether absence matches)
Field = tuple[Path, LeafTest | None, bool]
Branch = tuple[Field, ...]

OR_KEYWORD = "$or"
# event-ruler Constants.RESERVED_FIELD_NAMES_IN_OR_RELATIONSHIP: not allowed as field names
# inside $or objects (such a pattern falls back to $or-as-a-field-name).
_RESERVED_IN_OR = frozenset(
    {
        "exactly", "equals-ignore-case", "prefix", "suffix", "anything-but", "exists",
        "wildcard", "numeric", "cidr", "=", "<", "<=", ">", ">=", "regex", "not-wildcard",
        "not-equals-ignore-case", "date-after", "date-on-or-after", "date-before",
        "date-on-or-before", "in-date-range", "ip-address-in-range", "ip-address-not-in-range",
    }
)  # fmt: skip
# Nested $or multiply branches; a 4096-character pattern could otherwise ask for 2**100 of
# them. event-ruler has no such cap; this one only refuses patterns no real filter needs.
MAX_BRANCHES = 1024

_ABSENT: Any = object()  # no leaf at the path
_ACROSS_ARRAY: Any = object()  # the path crosses an array: the slow, array-aware walk decides
_ARRAYS = (list, tuple, set, frozenset)  # sets: deserialized SS/NS/BS in routed images


# --- compiling -------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def load_pattern_text(text: str) -> Any:
    """Parse pattern JSON keeping duplicate keys (JsonObject) and exact decimals."""
    try:
        return json.loads(
            text,
            object_pairs_hook=JsonObject,
            parse_float=Decimal,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError) as exc:
        raise InvalidFilterPatternError(f"malformed JSON: {exc}") from None


def _write_leaf(rules: list[dict[Path, LeafRule]], path: Path, leaf: LeafRule) -> None:
    if not rules:
        rules.append({})
    for rule in rules:
        rule[path] = leaf


def _parse_object(
    rules: list[dict[Path, LeafRule]], path: Path, node: Any, *, with_or: bool, in_or: bool
) -> None:
    pairs = object_items(node)
    if pairs is None:
        raise InvalidFilterPatternError(
            f"{'.'.join(path) or '<root>'}: a pattern must be a JSON object"
        )
    if not pairs:
        raise InvalidFilterPatternError(
            f"{'.'.join(path) or '<root>'}: empty objects are not allowed"
        )
    for key, value in pairs:
        if not isinstance(key, str):
            raise InvalidFilterPatternError(
                f"{'.'.join(path)}: field names must be strings, got {key!r}"
            )
        if with_or and key == OR_KEYWORD:
            _parse_or(rules, path, value)
            continue
        if in_or and key in _RESERVED_IN_OR:
            raise InvalidFilterPatternError(
                f"{key!r} is a reserved word and cannot be a field name inside $or"
            )
        # event-ruler flattens patterns and events to dotted field names, so a key with dots
        # is the same field as the nested path it spells: {"a.b": [...]} is {"a": {"b": [...]}}.
        child = (*path, *key.split("."))
        if object_items(value) is not None:
            _parse_object(rules, child, value, with_or=with_or, in_or=in_or)
        elif isinstance(value, list):
            _write_leaf(rules, child, compile_leaf_list(value, ".".join(child)))
        else:
            raise InvalidFilterPatternError(f"{'.'.join(child)}: must be an object or an array")
        if len(rules) > MAX_BRANCHES:
            raise InvalidFilterPatternError(f"$or combinations exceed {MAX_BRANCHES} branches")


def _parse_or(rules: list[dict[Path, LeafRule]], path: Path, value: Any) -> None:
    """Fork every branch so far once per ``$or`` object (JsonRuleCompiler.parseIntoOrRelationship)."""
    where = ".".join((*path, OR_KEYWORD))
    if not isinstance(value, list):
        raise InvalidFilterPatternError(f"{where}: $or must be followed by an array")
    if len(value) < 2:
        raise InvalidFilterPatternError(f"{where}: $or needs at least 2 objects")
    before = [dict(rule) for rule in rules]
    rules.clear()
    for alternative in value:
        if object_items(alternative) is None:
            raise InvalidFilterPatternError(
                f"{where}: only JSON objects are allowed in a $or array"
            )
        forked = [dict(rule) for rule in before] or [{}]
        _parse_object(forked, path, alternative, with_or=True, in_or=True)
        rules.extend(forked)
        if len(rules) > MAX_BRANCHES:
            raise InvalidFilterPatternError(f"$or combinations exceed {MAX_BRANCHES} branches")


def _ruler_order(path: Path) -> bytes:
    """event-ruler sorts a rule's field names (dotted) as Java Strings: by UTF-16 code unit."""
    return ".".join(path).encode("utf-16-be")


def compile_branches(definition: Any) -> tuple[Branch, ...]:
    """Validate a parsed pattern and compile it into branches."""
    rules: list[dict[Path, LeafRule]] = []
    try:
        _parse_object(rules, (), definition, with_or=True, in_or=False)
    except RecursionError:
        raise InvalidFilterPatternError("the pattern is nested too deeply") from None
    except InvalidFilterPatternError as strict_error:
        if OR_KEYWORD not in _all_keys(definition):
            raise
        # GenericMachine.addRule: if JsonRuleCompiler refuses the rule, RuleCompiler (which
        # knows no $or) gets a go; the first error is the more telling one.
        rules = []
        try:
            _parse_object(rules, (), definition, with_or=False, in_or=False)
        except InvalidFilterPatternError:
            raise strict_error from None
    return tuple(
        tuple(
            (path, leaf.test, leaf.allow_absent)
            for path, leaf in sorted(rule.items(), key=lambda item: _ruler_order(item[0]))
        )
        for rule in rules
    )


# Lambda's operator table leaves these EventBridge operators out, and EventBridge's own table
# marks exactly them "Pipe support: No" (Pipes filter the same stream and queue sources):
# https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html#filtering-syntax
# https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html
# ("exactly" is event-ruler's own, documented by neither.)
_NOT_IN_LAMBDA = frozenset({"wildcard", "cidr", "exactly"})


def check_lambda_operators(definition: Any) -> None:
    """Refuse operators Lambda event filtering does not support (for an already valid pattern).

    Any one-key object inside an array is an operator here: ``$or`` alternatives cannot use
    operator names as fields (they are reserved), so they never look like one.
    """
    stack = [definition]
    while stack:
        node = stack.pop()
        pairs = object_items(node)
        if pairs is not None:
            stack.extend(value for _, value in pairs)
        elif isinstance(node, list):
            for element in node:
                pairs = object_items(element)
                if pairs is not None and len(pairs) == 1:
                    name, operand = pairs[0]
                    if name in _NOT_IN_LAMBDA or (
                        name == "anything-but" and object_items(operand) is not None
                    ):
                        shown = name if name in _NOT_IN_LAMBDA else "anything-but with an object"
                        raise InvalidFilterPatternError(
                            f"{shown!s} is not supported by Lambda event filtering"
                        )
                stack.append(element)


def _all_keys(node: Any) -> set[str]:
    keys: set[str] = set()
    stack = [node]
    while stack:
        current = stack.pop()
        pairs = object_items(current)
        if pairs is not None:
            keys.update(k for k, _ in pairs if isinstance(k, str))
            stack.extend(v for _, v in pairs)
        elif isinstance(current, list):
            stack.extend(current)
    return keys


# --- matching --------------------------------------------------------------------------------


_SCALAR, _OBJECT, _ARRAY = 0, 1, 2


def _kind(node: Any) -> int:
    """_OBJECT, _ARRAY or _SCALAR; exact types first, as events are plain JSON."""
    kind = type(node)
    if kind is dict:
        return _OBJECT
    if kind is list:
        return _ARRAY
    if kind is str or kind is int or kind is float or kind is bool or node is None:
        return _SCALAR
    if isinstance(node, _ARRAYS):
        return _ARRAY
    return _OBJECT if isinstance(node, Mapping) else _SCALAR


def _leaf_at(node: Any, path: Path) -> Any:
    """The one leaf at ``path`` if no array is in the way; else _ABSENT or _ACROSS_ARRAY.
    Any Mapping is an object, and tuples and sets are arrays (routing's deserialized images)."""
    for key in path:
        if type(node) is dict:
            node = node.get(key, _ABSENT)
            if node is _ABSENT:
                return _ABSENT
            continue
        kind = _kind(node)
        if kind == _OBJECT:
            node = node.get(key, _ABSENT)
            if node is _ABSENT:
                return _ABSENT
        elif kind == _ARRAY:
            return _ACROSS_ARRAY
        else:
            return _ABSENT  # a scalar where the path wants an object
    kind = _kind(node)
    if kind == _SCALAR:
        return node
    # An object is not a leaf ("exists matching only works on leaf nodes").
    return _ABSENT if kind == _OBJECT else _ACROSS_ARRAY


def _collect_leaves(
    node: Any, path: Path, depth: int, chosen: dict[int, int], out: list[tuple[Any, dict[int, int]]]
) -> None:
    """Every leaf at ``path`` consistent with ``chosen`` (array id -> element index), each with
    the element choices it adds. Arrays are told apart by ``id``: the event is alive meanwhile."""
    last = len(path)
    while True:
        kind = _OBJECT if type(node) is dict else _ARRAY if type(node) is list else _kind(node)
        if kind == _OBJECT:
            if depth == last:
                return  # an object is not a leaf
            # An event key with dots stands for the nested path it spells (event-ruler
            # flattens events to dotted names): {"a.b": 1} holds a leaf at ("a", "b").
            joined = path[depth]
            for end in range(depth + 1, last):
                joined += "." + path[end]
                dotted = node.get(joined, _ABSENT)
                if dotted is not _ABSENT:
                    _collect_leaves(dotted, path, end + 1, chosen, out)
            node = node.get(path[depth], _ABSENT)
            if node is _ABSENT:
                return
            depth += 1
        elif kind == _ARRAY:
            array = id(node)
            pinned = chosen.get(array)
            for index, element in enumerate(node):
                if pinned is None:
                    _collect_leaves(element, path, depth, {**chosen, array: index}, out)
                elif index == pinned:
                    _collect_leaves(element, path, depth, chosen, out)
            return
        else:
            if depth == last:
                out.append((node, chosen))
            return


_NO_CHOICES: dict[int, int] = {}


def _match_fields(
    fields: Branch, start: int, event: Any, chosen: dict[int, int] = _NO_CHOICES
) -> bool:
    """Whether ``fields[start:]`` all hold, their array elements consistent with ``chosen``."""
    for index in range(start, len(fields)):
        path, test, allow_absent = fields[index]
        # Hot path, inlined: plain dicts all the way down (what json.loads produces).
        leaf = event
        for key in path:
            if type(leaf) is not dict:
                leaf = _leaf_at(event, path)
                break
            leaf = leaf.get(key, _ABSENT)
            if leaf is _ABSENT:
                break
        else:
            kind = type(leaf)
            if not (kind is str or kind is int or kind is float or leaf is None or kind is bool):
                leaf = _leaf_at(event, path)
        if leaf is _ABSENT and len(path) > 1:
            leaf = _ACROSS_ARRAY  # the event may spell the path with a dotted key
        if leaf is _ACROSS_ARRAY:
            leaves: list[tuple[Any, dict[int, int]]] = []
            _collect_leaves(event, path, 0, chosen, leaves)
            if test is not None:
                for value, choices in leaves:
                    if test(value) and _match_fields(fields, index + 1, event, choices):
                        return True
            return allow_absent and not leaves and _match_fields(fields, index + 1, event, chosen)
        if leaf is _ABSENT:
            if not allow_absent:
                return False
        elif test is None or not test(leaf):
            return False
    return True


def matcher_for(branches: tuple[Branch, ...]) -> Callable[[Any], bool]:
    """One function answering "does the event match any branch?"."""
    if len(branches) == 1:
        return partial(_match_fields, branches[0], 0)

    def match_any(event: Any) -> bool:
        # A plain loop: any() over a generator costs more, and this runs per record.
        for branch in branches:  # noqa: SIM110
            if _match_fields(branch, 0, event):
                return True
        return False

    return match_any


def to_json_text(definition: Mapping[str, Any]) -> str:
    """Pattern text for a pattern given as a Mapping (Decimals written as JSON numbers)."""

    def number(value: Any) -> Any:
        if isinstance(value, Decimal):
            return int(value) if value == value.to_integral_value() else float(value)
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    try:
        return json.dumps(definition, separators=(",", ":"), default=number, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidFilterPatternError(f"not expressible as JSON: {exc}") from None
