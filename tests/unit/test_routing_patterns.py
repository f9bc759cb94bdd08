"""Image patterns: the route pattern engine on deserialized images against the mapping filter
engine on the records as Lambda delivers them.

The differential check: a generated plain pattern (over ``{"eventName", "keys", "new",
"old"}``) and its translation to the DynamoDB-JSON form (over ``{"eventName", "dynamodb":
{"Keys", "NewImage", "OldImage"}}``, what a mapping's FilterCriteria sees) must agree on
generated records. Items follow one schema (each attribute keeps its DynamoDB type), and
numbers are written canonically, as DynamoDB writes them; that is the domain in which the two
forms mean the same (see streamkit/routing/image_pattern.py). Everything the plain form adds,
``numeric`` on N values, is checked against a Python oracle instead.
"""

from __future__ import annotations

import operator
import random
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.helpers.stream_data import lambda_record

from streamkit.codec import serialize
from streamkit.exceptions import ImageNotAvailableError, InvalidFilterPatternError
from streamkit.filters import FilterCriteria, FilterPattern
from streamkit.records import StreamRecord, parse_event
from streamkit.routing import ImagePattern, matches, record_view

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000"

# attribute -> DynamoDB type; M and L hold the nested schemas below.
SCHEMA = {
    "status": "S", "email": "S", "qty": "N", "total": "N", "flag": "BOOL", "note": "NULL",
    "tags": "SS", "nums": "NS", "blob": "B", "addr": "M", "lines": "L",
}  # fmt: skip
ADDR = {"city": "S", "zip": "N"}
LINE = {"sku": "S", "qty": "N"}
KEYS = {"pk": "S", "sk": "S"}
NESTED = {"addr": ADDR, "lines": LINE}

STRINGS = [
    "PAID",
    "PLACED",
    "paid",
    "Pa",
    "ORDER#1",
    "ORDER#2",
    "x",
    "PAID_LATE",
    "aPAID",
    "Oslo",
    "",
]
NUMBERS = [0, 1, 2, 5, 7, 10, 100, Decimal("2.5"), Decimal("-1.25"), Decimal("0.1")]
AFFIXES = ["P", "PA", "ORDER#", "D", "LATE", "a", "x"]


def canonical(number: int | Decimal) -> str:
    """DynamoDB's spelling of a number (it normalizes what it stores)."""
    value = Decimal(number)
    return "0" if value.is_zero() else format(value.normalize(), "f")


# --- generated items and records ---------------------------------------------------------------


def scalar(rng: random.Random, kind: str) -> Any:
    if kind == "S":
        return rng.choice([s for s in STRINGS if s])  # DynamoDB keys/sets dislike ""; values ok
    if kind == "N":
        return rng.choice(NUMBERS)
    if kind == "BOOL":
        return rng.random() < 0.5
    if kind == "NULL":
        return None
    if kind == "SS":
        return set(rng.sample([s for s in STRINGS if s], rng.randint(1, 3)))
    if kind == "NS":
        return set(rng.sample(NUMBERS, rng.randint(1, 3)))
    if kind == "B":
        return rng.randbytes(3)
    raise AssertionError(kind)


def item(rng: random.Random, schema: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in schema.items():
        if rng.random() < 0.35:
            continue
        if kind == "M":
            out[name] = item(rng, NESTED[name])
        elif kind == "L":
            out[name] = [item(rng, NESTED[name]) for _ in range(rng.randint(0, 3))]
        else:
            out[name] = scalar(rng, kind)
    return out


def to_attribute(value: Any, kind: str, name: str) -> dict[str, Any]:
    """DynamoDB JSON with canonical number text, as Lambda delivers it."""
    if kind == "N":
        return {"N": canonical(value)}
    if kind == "NS":
        return {"NS": [canonical(v) for v in value]}
    if kind == "M":
        return {"M": {k: to_attribute(v, NESTED[name][k], k) for k, v in value.items()}}
    if kind == "L":
        return {"L": [to_attribute(v, "M", name) for v in value]}
    return serialize({"v": value}, binary="base64")["v"]


def image_json(image: dict[str, Any], schema: dict[str, str]) -> dict[str, Any]:
    return {k: to_attribute(v, schema[k], k) for k, v in image.items()}


def stream_record(rng: random.Random, seq: int) -> dict[str, Any]:
    name = rng.choice(["INSERT", "MODIFY", "REMOVE"])
    keys = {"pk": rng.choice(["ORDER#1", "ORDER#2", "USER#1"]), "sk": rng.choice(["A", "PAID"])}
    schema = {**KEYS, **SCHEMA}
    new = image_json({**keys, **item(rng, SCHEMA)}, schema) if name != "REMOVE" else None
    old = image_json({**keys, **item(rng, SCHEMA)}, schema) if name != "INSERT" else None
    return lambda_record(
        seq,
        keys=image_json(keys, KEYS),
        event_name=name,
        new_image=new,
        old_image=old,
        event_id=f"e{seq}",
        size_bytes=100,
        arn=ARN,
    )


# --- generated patterns, and their DynamoDB-JSON translation ------------------------------------


def leaf_rules(rng: random.Random, kind: str) -> list[Any]:
    """One pattern array for an attribute of ``kind`` (plain form)."""
    rules: list[Any] = []
    for _ in range(rng.randint(1, 2)):
        roll = rng.random()
        if roll < 0.12:
            rules.append({"exists": rng.random() < 0.6})
        elif kind in ("S", "SS"):
            choice = rng.randrange(6 if kind == "S" else 3)
            if choice == 0:
                rules.append(rng.choice(STRINGS))
            elif choice == 1:
                rules.append({"prefix": rng.choice(AFFIXES)})
            elif choice == 2:
                rules.append({"suffix": rng.choice(AFFIXES)})
            elif choice == 3:
                rules.append({"equals-ignore-case": rng.choice(STRINGS[:4])})
            elif choice == 4:
                rules.append({"anything-but": rng.sample([s for s in STRINGS if s], 2)})
            else:
                rules.append({"prefix": {"equals-ignore-case": rng.choice(AFFIXES)}})
        elif kind in ("N", "NS"):
            if kind == "N" and rng.random() < 0.3:
                rules.append({"anything-but": rng.sample(NUMBERS, 2)})
            else:
                rules.append(rng.choice(NUMBERS))
        elif kind == "BOOL":
            rules.append(rng.random() < 0.5)
        elif kind == "NULL":
            rules.append(None)
        else:  # B: patterns cannot spell bytes, only ask for presence
            rules.append({"exists": rng.random() < 0.6})
    return rules


def image_pattern(rng: random.Random, schema: dict[str, str], depth: int = 0) -> dict[str, Any]:
    pattern: dict[str, Any] = {}
    names = rng.sample(sorted(schema), rng.randint(1, min(3, len(schema))))
    for name in names:
        kind = schema[name]
        if kind in ("M", "L"):
            pattern[name] = image_pattern(rng, NESTED[name], depth + 1)
        else:
            pattern[name] = leaf_rules(rng, kind)
    if depth == 0 and rng.random() < 0.2:
        used = set(pattern)
        free = [n for n in sorted(schema) if n not in used and schema[n] not in ("M", "L")]
        if len(free) >= 2:
            a, b = rng.sample(free, 2)
            pattern["$or"] = [{a: leaf_rules(rng, schema[a])}, {b: leaf_rules(rng, schema[b])}]
    return pattern


def plain_pattern(rng: random.Random) -> dict[str, Any]:
    pattern: dict[str, Any] = {}
    for section in rng.sample(["new", "old", "keys", "eventName"], rng.randint(1, 2)):
        if section == "eventName":
            pattern["eventName"] = rng.sample(["INSERT", "MODIFY", "REMOVE"], rng.randint(1, 2))
        elif section == "keys":
            pattern["keys"] = image_pattern(rng, KEYS)
        else:
            pattern[section] = image_pattern(rng, SCHEMA)
    if rng.random() < 0.15:
        pattern = {"$or": [pattern, {"new": image_pattern(rng, SCHEMA)}]}
    return pattern


def raw_leaf(rules: list[Any], kind: str) -> list[Any]:
    out: list[Any] = []
    for rule in rules:
        if isinstance(rule, dict):
            ((op, operand),) = rule.items()
            if op == "anything-but" and isinstance(operand, list) and kind in ("N", "NS"):
                out.append({op: [canonical(v) for v in operand]})
            else:
                out.append(rule)
        elif kind == "NULL":
            out.append(True)  # {"NULL": true}
        elif kind in ("N", "NS") and not isinstance(rule, bool):
            out.append(canonical(rule))
        else:
            out.append(rule)
    return out


def raw_image_pattern(pattern: dict[str, Any], schema: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in pattern.items():
        if name == "$or":
            out["$or"] = [raw_image_pattern(alt, schema) for alt in value]
            continue
        kind = schema[name]
        if kind == "M":
            out[name] = {"M": raw_image_pattern(value, NESTED[name])}
        elif kind == "L":
            out[name] = {"L": {"M": raw_image_pattern(value, NESTED[name])}}
        else:
            out[name] = {kind: raw_leaf(value, kind)}
    return out


def to_raw(pattern: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sections = {"new": ("NewImage", SCHEMA), "old": ("OldImage", SCHEMA), "keys": ("Keys", KEYS)}
    for name, value in pattern.items():
        if name == "$or":
            out["$or"] = [to_raw(alt) for alt in value]
        elif name == "eventName":
            out["eventName"] = value
        else:
            section, schema = sections[name]
            full = {**KEYS, **schema} if name != "keys" else schema
            out.setdefault("dynamodb", {})[section] = raw_image_pattern(value, full)
    return out


# --- the differential check ---------------------------------------------------------------------


def test_plain_patterns_agree_with_the_mapping_filter_engine_on_generated_records() -> None:
    rng = random.Random(20240601)
    records = parse_event({"Records": [stream_record(rng, seq) for seq in range(1, 41)]})
    outcomes = {True: 0, False: 0}
    for case in range(400):
        plain = plain_pattern(rng)
        ours = ImagePattern(plain)
        theirs = FilterCriteria.from_api(
            {"Filters": [{"Pattern": FilterPattern.parse(to_raw(plain)).source}]}
        )
        for record in records:
            expected = theirs.matches(record.raw)
            got = ours(record)
            assert got == expected, (
                f"case {case}: plain {plain} -> {got}, raw {to_raw(plain)} -> {expected}\n"
                f"record {record.raw}"
            )
            outcomes[got] += 1
    # Both answers are common, so the agreement is not vacuous.
    assert min(outcomes.values()) > 0.1 * sum(outcomes.values()), outcomes


@settings(max_examples=150, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.integers(min_value=0, max_value=2**32))
def test_plain_and_raw_forms_agree_for_hypothesis_seeds(
    pattern_seed: int, record_seed: int
) -> None:
    pattern_rng, record_rng = random.Random(pattern_seed), random.Random(record_seed)
    plain = plain_pattern(pattern_rng)
    raw = FilterPattern.parse(to_raw(plain))
    for record in parse_event({"Records": [stream_record(record_rng, s) for s in range(1, 6)]}):
        assert ImagePattern(plain)(record) == raw.matches(record.raw)


# --- what only the plain form can do: numeric, checked against Python ---------------------------

COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


def order_with(**attributes: Any) -> StreamRecord:
    """An INSERT of order ``o`` whose NewImage also holds ``attributes`` (DynamoDB JSON)."""
    keys = {"pk": {"S": "o"}}
    raw = lambda_record(
        1, keys=keys, event_name="INSERT", new_image={**keys, **attributes}, event_id="e", arn=ARN
    )
    return parse_event({"Records": [raw]})[0]


def test_numeric_matching_on_images_follows_decimal_arithmetic() -> None:
    rng = random.Random(7)
    bounds = [Decimal(x) for x in ("-1.25", "0", "0.1", "2", "2.5", "5", "99.99", "100")]
    for _ in range(300):
        op = rng.choice(sorted(COMPARISONS))
        bound = rng.choice(bounds)
        total = rng.choice([*bounds, Decimal("2.50"), Decimal("100.000"), Decimal("5e1")])
        record = order_with(total={"N": str(total)})
        pattern = matches({"new": {"total": [{"numeric": [op, bound]}]}})
        assert pattern(record) is COMPARISONS[op](total, bound), (op, bound, total)
        # The DynamoDB-JSON form cannot express it: N values are strings there.
        assert not FilterPattern.parse(
            {"dynamodb": {"NewImage": {"total": {"N": [{"numeric": [op, bound]}]}}}}
        ).matches(record.raw)


def test_plain_numbers_match_by_value_whatever_the_spelling() -> None:
    record = order_with(qty={"N": "5.0"})
    assert matches({"new": {"qty": [5]}})(record)
    assert not matches({"new": {"qty": ["5"]}})(record)  # a number is not a string
    assert not FilterPattern.parse({"dynamodb": {"NewImage": {"qty": {"N": ["5"]}}}}).matches(
        record.raw
    )


# --- the view and its validation ----------------------------------------------------------------


def one(raw: dict[str, Any]) -> StreamRecord:
    return parse_event({"Records": [raw]})[0]


def test_the_view_holds_plain_values_and_only_the_fields_a_pattern_reads() -> None:
    raw = stream_record(random.Random(3), 9)
    raw["eventName"] = "MODIFY"
    raw["dynamodb"]["NewImage"] = image_json(
        {"pk": "ORDER#1", "sk": "A", "total": Decimal("2.5")}, {**KEYS, **SCHEMA}
    )
    raw["dynamodb"]["OldImage"] = image_json({"pk": "ORDER#1", "sk": "A"}, {**KEYS, **SCHEMA})
    raw["dynamodb"]["Keys"] = image_json({"pk": "ORDER#1", "sk": "A"}, KEYS)
    record = one(raw)
    assert record_view(record) == {
        "eventName": "MODIFY",
        "table": "orders",
        "keys": {"pk": "ORDER#1", "sk": "A"},
        "new": {"pk": "ORDER#1", "sk": "A", "total": Decimal("2.5")},
        "old": {"pk": "ORDER#1", "sk": "A"},
    }
    pattern = ImagePattern(
        {"table": ["orders"], "$or": [{"new": {"total": [2.5]}}, {"old": {"total": [1]}}]}
    )
    assert pattern.fields == ("table", "new", "old")
    assert pattern(record)
    assert matches({"table": ["orders"], "keys": {"pk": [{"prefix": "ORDER#"}]}})(record)


@pytest.mark.parametrize(
    "pattern",
    [
        {"NewImage": {"status": ["PAID"]}},
        {"dynamodb": {"NewImage": {"status": {"S": ["PAID"]}}}},
        {"$or": [{"new": {"a": ["x"]}}, {"New": {"a": ["y"]}}]},
        '{"new": {"status": ["PAID"]}, "typo": ["x"]}',
    ],
)
def test_unknown_view_fields_are_rejected(pattern: Any) -> None:
    with pytest.raises(InvalidFilterPatternError) as info:
        ImagePattern(pattern)
    assert "unknown field" in info.value.detail


def test_syntax_errors_are_the_filter_engines_errors() -> None:
    with pytest.raises(InvalidFilterPatternError) as info:
        ImagePattern({"new": {"total": [{"numeric": [">", "x"]}]}})
    assert str(info.value) == "Invalid filter pattern definition."


def test_a_record_lacking_an_image_its_view_type_left_out_raises() -> None:
    raw = stream_record(random.Random(1), 1)
    raw["eventName"] = "MODIFY"
    raw["dynamodb"]["NewImage"] = {"pk": {"S": "ORDER#1"}, "sk": {"S": "A"}}
    raw["dynamodb"].pop("OldImage", None)
    raw["dynamodb"]["StreamViewType"] = "NEW_IMAGE"
    record = one(raw)
    with pytest.raises(ImageNotAvailableError):
        matches({"old": {"status": [{"exists": False}]}})(record)
    assert matches({"new": {"sk": ["A"]}})(record)  # patterns not reading "old" are fine
    remove = stream_record(random.Random(2), 2)
    remove["eventName"] = "REMOVE"
    remove["dynamodb"].pop("NewImage", None)
    remove["dynamodb"]["OldImage"] = {"pk": {"S": "ORDER#1"}}
    # A REMOVE has no new image by definition: it is simply absent.
    assert matches({"new": {"pk": [{"exists": False}]}})(one(remove))
