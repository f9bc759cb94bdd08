"""The filter pattern engine: every operator, their combinations, and every invalid pattern.

Expected results follow Lambda event filtering, which uses EventBridge pattern rules as
implemented by aws/event-ruler; comments cite the rule where it is not obvious.
"""

from __future__ import annotations

import json
import pickle
from decimal import Decimal
from typing import Any

import pytest
from tests.helpers.stream_data import lambda_record

from streamkit.exceptions import InvalidFilterPatternError, InvalidParameterValueError
from streamkit.filters import (
    MAX_PATTERN_LENGTH,
    FilterCriteria,
    FilterPattern,
    validate_pattern,
)

MESSAGE = "Invalid filter pattern definition."


def matches(pattern: Any, event: Any) -> bool:
    source = pattern if isinstance(pattern, str) else json.dumps(pattern)
    return FilterPattern.parse(source).matches(event)


def ddb_record(
    event_name: str = "INSERT",
    new_image: dict[str, Any] | None = None,
    old_image: dict[str, Any] | None = None,
    keys: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A DynamoDB stream record as Lambda delivers it (images in DynamoDB JSON)."""
    return lambda_record(
        "111",
        keys=keys or {"pk": {"S": "order#1"}},
        event_name=event_name,
        new_image=new_image,
        old_image=old_image,
        created=1678831218.0,
        event_id="1",
        size_bytes=26,
        arn="arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/x",
    )


ORDER = {
    "pk": {"S": "order#1"},
    "status": {"S": "PAID"},
    "total": {"N": "125.50"},
    "express": {"BOOL": True},
    "coupon": {"NULL": True},
    "tags": {"SS": ["gift", "fragile"]},
    "lines": {
        "L": [
            {"M": {"sku": {"S": "A-1"}, "qty": {"N": "2"}}},
            {"M": {"sku": {"S": "B-7"}, "qty": {"N": "1"}}},
        ]
    },
}


# --- structure -------------------------------------------------------------------------------


class TestStructure:
    def test_all_fields_must_match_and_array_values_are_alternatives(self) -> None:
        pattern = {"a": ["x", "y"], "b": {"c": [1]}}
        assert matches(pattern, {"a": "y", "b": {"c": 1}})
        assert not matches(pattern, {"a": "z", "b": {"c": 1}})
        assert not matches(pattern, {"a": "x", "b": {"c": 2}})

    def test_event_fields_not_in_the_pattern_are_ignored(self) -> None:
        assert matches({"a": ["x"]}, {"a": "x", "b": 1, "c": {"d": [1, 2]}})

    def test_a_missing_field_does_not_match(self) -> None:
        assert not matches({"a": ["x"]}, {"b": "x"})
        assert not matches({"a": {"b": ["x"]}}, {"a": {"c": "x"}})

    def test_a_scalar_where_the_pattern_descends_does_not_match(self) -> None:
        assert not matches({"a": {"b": ["x"]}}, {"a": "x"})

    def test_an_object_is_not_a_leaf_value(self) -> None:
        assert not matches({"a": ["x"]}, {"a": {"b": "x"}})

    def test_nested_descent_several_levels(self) -> None:
        pattern = {"a": {"b": {"c": {"d": ["deep"]}}}}
        assert matches(pattern, {"a": {"b": {"c": {"d": "deep"}}}})
        assert not matches(pattern, {"a": {"b": {"c": {"d": "shallow"}}}})

    def test_a_dotted_key_is_the_nested_path_it_spells(self) -> None:
        # event-ruler flattens patterns and events to dotted names, so both spellings meet.
        pattern = {"detail": {"state.status": ["running"]}}
        assert matches(pattern, {"detail": {"state": {"status": "running"}}})
        assert not matches(pattern, {"detail": {"state": {"status": "stopped"}}})
        assert matches(pattern, {"detail": {"state.status": "running"}})
        assert matches({"a": {"b": ["x"]}}, {"a.b": "x"})
        assert matches({"a.b": ["x"]}, {"a.b": "x"})
        assert matches({"a.b.c": ["x"]}, {"a": {"b.c": "x"}})
        assert not matches({"a.b": ["x"]}, {"a": "x"})

    def test_a_dotted_key_works_with_exists_and_arrays(self) -> None:
        assert matches({"a.b": [{"exists": False}]}, {"a": {"c": "x"}})
        assert not matches({"a.b": [{"exists": False}]}, {"a": {"b": "x"}})
        assert matches({"a.b": ["y"]}, {"a": [{"b": "x"}, {"b": "y"}]})


# --- exact values ----------------------------------------------------------------------------


class TestExactValues:
    def test_strings_match_exactly_and_case_sensitively(self) -> None:
        assert matches({"a": ["Alice"]}, {"a": "Alice"})
        assert not matches({"a": ["Alice"]}, {"a": "alice"})
        assert not matches({"a": ["Alice"]}, {"a": "Alice "})

    def test_empty_string(self) -> None:
        assert matches({"a": [""]}, {"a": ""})
        assert not matches({"a": [""]}, {"a": None})
        assert not matches({"a": [""]}, {})

    def test_null_needs_an_explicit_null(self) -> None:
        assert matches({"a": [None]}, {"a": None})
        assert not matches({"a": [None]}, {})
        assert not matches({"a": [None]}, {"a": "null"})
        assert not matches({"a": [None]}, {"a": ""})

    def test_numbers_compare_numerically(self) -> None:
        assert matches({"a": [5]}, {"a": 5.0})
        assert matches({"a": [5.0]}, {"a": 5})
        assert matches({"a": [300]}, {"a": 3.0e2})
        assert matches({"a": [0.1]}, {"a": Decimal("0.100")})
        assert not matches({"a": [5]}, {"a": 5.5})

    def test_strings_and_numbers_never_equal(self) -> None:
        assert not matches({"a": [5]}, {"a": "5"})
        assert not matches({"a": ["5"]}, {"a": 5})

    def test_booleans_are_not_numbers(self) -> None:
        assert matches({"a": [True]}, {"a": True})
        assert not matches({"a": [True]}, {"a": 1})
        assert not matches({"a": [1]}, {"a": True})
        assert not matches({"a": [0]}, {"a": False})
        assert not matches({"a": [False]}, {"a": 0})
        assert not matches({"a": [True]}, {"a": "true"})

    def test_numbers_beyond_the_comparable_range_equal_only_themselves(self) -> None:
        big = 123456789012345  # an account number, say: > 5e9
        assert matches({"a": [big]}, {"a": big})
        assert not matches({"a": [big]}, {"a": big + 1})
        assert matches({"a": [1.2345678]}, {"a": 1.2345678})
        assert not matches({"a": [1.2345678]}, {"a": 1.2345679})

    def test_mixed_alternatives(self) -> None:
        pattern = {"a": ["x", 7, None, False]}
        for value in ("x", 7, 7.0, None, False):
            assert matches(pattern, {"a": value}), value
        for value in ("y", 8, True, "7"):
            assert not matches(pattern, {"a": value}), value

    def test_ip_literal_patterns_match_any_spelling_of_the_address(self) -> None:
        # event-ruler turns IP-literal strings into one-address ranges.
        assert matches({"ip": ["::1"]}, {"ip": "0:0:0:0:0:0:0:1"})
        assert matches({"ip": ["10.0.0.1"]}, {"ip": "10.0.0.1"})
        assert not matches({"ip": ["10.0.0.1"]}, {"ip": "10.0.0.2"})

    def test_exactly_operator(self) -> None:
        assert matches({"a": [{"exactly": "x"}]}, {"a": "x"})
        assert not matches({"a": [{"exactly": "x"}]}, {"a": "X"})


# --- arrays in events ------------------------------------------------------------------------


class TestEventArrays:
    def test_an_array_matches_when_any_element_does(self) -> None:
        assert matches({"a": ["x"]}, {"a": ["w", "x"]})
        assert not matches({"a": ["x"]}, {"a": ["w", "y"]})

    def test_nested_arrays_are_flattened(self) -> None:
        assert matches({"a": [3]}, {"a": [[1, 2], [3]]})

    def test_an_empty_array_has_no_leaves(self) -> None:
        assert not matches({"a": [{"exists": True}]}, {"a": []})
        assert matches({"a": [{"exists": False}]}, {"a": []})

    def test_arrays_of_objects_are_descended(self) -> None:
        event = {"employees": [{"first": "John"}, {"first": "Anna"}]}
        assert matches({"employees": {"first": ["Anna"]}}, event)
        assert not matches({"employees": {"first": ["Peter"]}}, event)

    def test_fields_must_come_from_the_same_array_element(self) -> None:
        # event-ruler's array-consistent matching (rulesForJSONEvent).
        event = {
            "employees": [
                {"first": "John", "last": "Doe"},
                {"first": "Anna", "last": "Smith"},
                {"first": "Peter", "last": "Jones"},
            ]
        }
        assert matches({"employees": {"first": ["Anna"], "last": ["Smith"]}}, event)
        assert not matches({"employees": {"first": ["Anna"], "last": ["Jones"]}}, event)

    def test_consistency_spans_nested_arrays(self) -> None:
        event = {"a": [[{"x": 1, "y": 1}], [{"x": 2, "y": 2}]]}
        assert matches({"a": {"x": [2], "y": [2]}}, event)
        assert not matches({"a": {"x": [1], "y": [2]}}, event)

    def test_backtracking_finds_a_consistent_element(self) -> None:
        # The first x=1 element fails on y; a later one satisfies both.
        event = {"a": [{"x": 1, "y": 0}, {"x": 1, "y": 5}]}
        assert matches({"a": {"x": [1], "y": [5]}}, event)

    def test_tuples_and_sets_count_as_arrays(self) -> None:
        # Deserialized images (routing) hold SS/NS/BS as sets.
        assert matches({"tags": ["b"]}, {"tags": {"a", "b"}})
        assert matches({"tags": ["b"]}, {"tags": ("a", "b")})
        assert not matches({"tags": ["c"]}, {"tags": frozenset({"a", "b"})})

    def test_non_dict_mappings_are_objects(self) -> None:
        from types import MappingProxyType

        event = MappingProxyType({"a": MappingProxyType({"b": "x"})})
        assert matches({"a": {"b": ["x"]}}, event)
        assert not matches({"a": [{"exists": True}]}, event)


# --- string operators ------------------------------------------------------------------------


class TestStringOperators:
    def test_prefix(self) -> None:
        assert matches({"a": [{"prefix": "us-"}]}, {"a": "us-east-1"})
        assert not matches({"a": [{"prefix": "us-"}]}, {"a": "eu-west-1"})
        assert not matches({"a": [{"prefix": "order#"}]}, {"a": "order"})
        assert not matches({"a": [{"prefix": "1"}]}, {"a": 12})
        assert matches({"a": [{"prefix": ""}]}, {"a": "anything"})
        assert not matches({"a": [{"prefix": ""}]}, {"a": None})

    def test_suffix(self) -> None:
        assert matches({"f": [{"suffix": ".png"}]}, {"f": "cat.png"})
        assert not matches({"f": [{"suffix": ".png"}]}, {"f": "cat.PNG"})
        assert not matches({"f": [{"suffix": ".png"}]}, {"f": ".pn"})
        assert not matches({"f": [{"suffix": ".png"}]}, {"f": "png"})

    def test_equals_ignore_case(self) -> None:
        pattern = {"a": [{"equals-ignore-case": "alice"}]}
        for value in ("alice", "ALICE", "aLiCe"):
            assert matches(pattern, {"a": value})
        assert not matches(pattern, {"a": "alicia"})
        assert not matches(pattern, {"a": "alice "})

    def test_equals_ignore_case_folds_per_character_like_java(self) -> None:
        # Each pattern char matches its Java lower- or upper-case form: "ß" -> "ß" or "SS".
        assert matches({"a": [{"equals-ignore-case": "straße"}]}, {"a": "STRASSE"})
        assert matches({"a": [{"equals-ignore-case": "Ärger"}]}, {"a": "ärger"})
        # The Kelvin sign lower-cases to "k" but is neither form of "k".
        assert not matches({"a": [{"equals-ignore-case": "k"}]}, {"a": "\u212a"})
        assert not matches({"a": [{"equals-ignore-case": "straße"}]}, {"a": "strasse"})

    def test_prefix_and_suffix_ignoring_case(self) -> None:
        assert matches({"a": [{"prefix": {"equals-ignore-case": "EventB"}}]}, {"a": "eventbridge"})
        assert not matches({"a": [{"prefix": {"equals-ignore-case": "EventB"}}]}, {"a": "Event"})
        assert matches({"a": [{"suffix": {"equals-ignore-case": ".png"}}]}, {"a": "A.PNG"})
        assert not matches({"a": [{"suffix": {"equals-ignore-case": ".png"}}]}, {"a": "png"})
        assert matches({"a": [{"suffix": {"equals-ignore-case": "\u00df"}}]}, {"a": "STRASS"})
        assert not matches({"a": [{"suffix": {"equals-ignore-case": "SS"}}]}, {"a": "Stra\u00df"})
        assert matches({"a": [{"prefix": {"equals-ignore-case": "\u00df"}}]}, {"a": "SSx"})
        assert matches({"a": [{"suffix": {"equals-ignore-case": ""}}]}, {"a": "x"})

    def test_wildcard(self) -> None:
        pattern = {"p": [{"wildcard": "*/lib/*.so"}]}
        assert matches(pattern, {"p": "/usr/lib/libc.so"})
        assert matches(pattern, {"p": "/lib/.so"})
        assert not matches(pattern, {"p": "/usr/lib/libc.so.6"})
        assert matches({"p": [{"wildcard": "a*c"}]}, {"p": "ab\nc"})  # * spans any character
        assert matches({"p": [{"wildcard": "*"}]}, {"p": ""})
        assert not matches({"p": [{"wildcard": "*"}]}, {"p": 5})

    def test_wildcard_escapes(self) -> None:
        assert matches({"p": [{"wildcard": "a\\*b"}]}, {"p": "a*b"})
        assert not matches({"p": [{"wildcard": "a\\*b"}]}, {"p": "axb"})
        assert matches({"p": [{"wildcard": "a\\\\b"}]}, {"p": "a\\b"})
        assert matches({"p": [{"wildcard": "\\**"}]}, {"p": "*tail"})

    def test_cidr(self) -> None:
        pattern = {"ip": [{"cidr": "10.0.0.0/24"}]}
        assert matches(pattern, {"ip": "10.0.0.0"})
        assert matches(pattern, {"ip": "10.0.0.255"})
        assert not matches(pattern, {"ip": "10.0.1.0"})
        assert not matches(pattern, {"ip": "not-an-ip"})
        assert not matches(pattern, {"ip": "::1"})

    def test_cidr_ipv6(self) -> None:
        pattern = {"ip": [{"cidr": "2001:db8::/32"}]}
        assert matches(pattern, {"ip": "2001:db8:ffff::1"})
        assert not matches(pattern, {"ip": "2001:db9::1"})
        assert not matches(pattern, {"ip": "10.0.0.1"})

    def test_cidr_range_starts_at_the_address_as_written(self) -> None:
        # event-ruler does not mask the base address: 10.0.0.5/24 is 10.0.0.5-10.0.0.255.
        pattern = {"ip": [{"cidr": "10.0.0.5/24"}]}
        assert matches(pattern, {"ip": "10.0.0.200"})
        assert not matches(pattern, {"ip": "10.0.0.4"})


# --- anything-but ----------------------------------------------------------------------------


class TestAnythingBut:
    def test_single_string(self) -> None:
        pattern = {"s": [{"anything-but": "initializing"}]}
        assert matches(pattern, {"s": "running"})
        assert not matches(pattern, {"s": "initializing"})

    def test_string_list(self) -> None:
        pattern = {"s": [{"anything-but": ["stopped", "overloaded"]}]}
        assert matches(pattern, {"s": "running"})
        assert not matches(pattern, {"s": "stopped"})
        assert not matches(pattern, {"s": "overloaded"})

    def test_numbers(self) -> None:
        pattern = {"x": [{"anything-but": [100, 200]}]}
        assert matches(pattern, {"x": 150})
        assert not matches(pattern, {"x": 100.0})
        assert matches({"x": [{"anything-but": 123}]}, {"x": 124})
        assert not matches({"x": [{"anything-but": 123}]}, {"x": 123})

    def test_excludes_only_values_of_its_own_kind(self) -> None:
        # event-ruler fails an anything-but only on an equal value of the same kind.
        for value in (5, None, True, False, Decimal("7")):
            assert matches({"s": [{"anything-but": "x"}]}, {"s": value}), value
        for value in ("100", None, True, "abc"):
            assert matches({"x": [{"anything-but": [100]}]}, {"x": value}), value

    def test_needs_a_present_leaf(self) -> None:
        assert not matches({"s": [{"anything-but": "x"}]}, {})
        assert not matches({"s": [{"anything-but": "x"}]}, {"s": {"nested": "y"}})
        assert not matches({"s": [{"anything-but": "x"}]}, {"s": []})

    def test_arrays_match_when_any_element_is_not_excluded(self) -> None:
        pattern = {"s": [{"anything-but": ["x", "y"]}]}
        assert not matches(pattern, {"s": ["x", "y"]})
        assert matches(pattern, {"s": ["x", "z"]})

    def test_prefix(self) -> None:
        pattern = {"r": [{"anything-but": {"prefix": "us-"}}]}
        assert matches(pattern, {"r": "eu-west-1"})
        assert not matches(pattern, {"r": "us-east-1"})
        assert matches(pattern, {"r": 5})  # not a string: nothing to exclude
        assert not matches({"r": [{"anything-but": {"prefix": ["a", "b"]}}]}, {"r": "bx"})
        assert matches({"r": [{"anything-but": {"prefix": ["a", "b"]}}]}, {"r": "cx"})

    def test_suffix(self) -> None:
        pattern = {"f": [{"anything-but": {"suffix": ".png"}}]}
        assert matches(pattern, {"f": "a.jpg"})
        assert not matches(pattern, {"f": "a.png"})

    def test_equals_ignore_case(self) -> None:
        pattern = {"s": [{"anything-but": {"equals-ignore-case": ["Stopped", "x"]}}]}
        assert not matches(pattern, {"s": "STOPPED"})
        assert matches(pattern, {"s": "running"})

    def test_wildcard(self) -> None:
        pattern = {"p": [{"anything-but": {"wildcard": "*/lib/*"}}]}
        assert not matches(pattern, {"p": "/usr/lib/x"})
        assert matches(pattern, {"p": "/usr/bin/x"})

    def test_an_empty_exclusion_list_excludes_nothing(self) -> None:
        # event-ruler accepts {"prefix": []} inside anything-but; nothing is excluded.
        assert matches({"r": [{"anything-but": {"prefix": []}}]}, {"r": "x"})


# --- numeric ---------------------------------------------------------------------------------


class TestNumeric:
    def test_range(self) -> None:
        pattern = {"p": [{"numeric": [">", 0, "<=", 5]}]}
        assert matches(pattern, {"p": 5})
        assert matches(pattern, {"p": 0.000001})
        assert not matches(pattern, {"p": 0})
        assert not matches(pattern, {"p": 5.000001})

    @pytest.mark.parametrize(
        ("expression", "inside", "outside"),
        [
            (["=", 100], [100, 100.0, Decimal("1E+2")], [99.999999, 101]),
            (["<", 10], [9.999999, -5e9], [10, 11]),
            (["<=", 10], [10, -1], [10.000001]),
            ([">", 10], [10.000001, 5e9], [10, -3]),
            ([">=", 10], [10, 11], [9.999999]),
            ([">=", -1.5, "<", 2], [-1.5, 1.999999], [-1.500001, 2]),
        ],
    )
    def test_operators(self, expression: list[Any], inside: list[Any], outside: list[Any]) -> None:
        pattern = {"p": [{"numeric": expression}]}
        for value in inside:
            assert matches(pattern, {"p": value}), (expression, value)
        for value in outside:
            assert not matches(pattern, {"p": value}), (expression, value)

    def test_only_numbers_match(self) -> None:
        pattern = {"p": [{"numeric": [">", 0]}]}
        for value in ("5", True, None, [], {"N": "5"}):
            assert not matches(pattern, {"p": value}), value

    def test_dynamodb_number_values_are_strings_so_numeric_never_matches(self) -> None:
        record = ddb_record(new_image=ORDER)
        pattern = {"dynamodb": {"NewImage": {"total": {"N": [{"numeric": [">", 0]}]}}}}
        assert not matches(pattern, record)
        # The string form matches exactly, as documented for Keys ({"N": ["101"]}).
        assert matches({"dynamodb": {"NewImage": {"total": {"N": ["125.50"]}}}}, record)
        assert not matches({"dynamodb": {"NewImage": {"total": {"N": ["125.5"]}}}}, record)

    def test_numbers_at_record_level_do_match(self) -> None:
        record = ddb_record(new_image=ORDER)
        assert matches({"dynamodb": {"SizeBytes": [{"numeric": [">=", 26]}]}}, record)
        assert not matches({"dynamodb": {"SizeBytes": [{"numeric": [">", 26]}]}}, record)

    def test_event_numbers_outside_the_comparable_limits_do_not_match(self) -> None:
        # event-ruler cannot convert them (ComparableNumber), so no numeric pattern applies.
        pattern = {"p": [{"numeric": [">", 0]}]}
        assert matches(pattern, {"p": 5e9})
        assert not matches(pattern, {"p": 5e9 + 1})
        assert not matches(pattern, {"p": 0.1234567})
        assert matches(pattern, {"p": Decimal("0.1234560")})

    def test_decimals_and_ints_compare_exactly(self) -> None:
        pattern = {"p": [{"numeric": ["=", 0.3]}]}
        assert matches(pattern, {"p": Decimal("0.3")})
        assert matches(pattern, {"p": 0.3})
        assert not matches(pattern, {"p": 0.1 + 0.2})  # 0.30000000000000004

    def test_arrays_match_when_any_element_is_in_range(self) -> None:
        assert matches({"p": [{"numeric": [">", 10]}]}, {"p": [1, 20]})
        assert not matches({"p": [{"numeric": [">", 10]}]}, {"p": [1, 2]})


# --- exists ----------------------------------------------------------------------------------


class TestExists:
    def test_true_needs_a_leaf(self) -> None:
        pattern = {"a": [{"exists": True}]}
        for value in ("x", 0, None, False, [1], ""):
            assert matches(pattern, {"a": value}), value
        assert not matches(pattern, {})
        assert not matches(pattern, {"a": {"b": 1}})  # intermediate node
        assert not matches(pattern, {"a": []})
        assert not matches(pattern, {"a": [{"b": 1}]})

    def test_false_holds_when_there_is_no_leaf(self) -> None:
        pattern = {"a": [{"exists": False}]}
        assert matches(pattern, {})
        assert matches(pattern, {"a": {"b": 1}})  # "c-count isn't a leaf node" (EventBridge docs)
        assert matches(pattern, {"a": []})
        assert not matches(pattern, {"a": None})
        assert not matches(pattern, {"a": "x"})

    def test_nested_exists(self) -> None:
        assert matches({"a": {"b": [{"exists": True}]}}, {"a": {"b": 1}})
        assert not matches({"a": {"b": [{"exists": True}]}}, {"a": {"c": 1}})
        assert matches({"a": {"b": [{"exists": False}]}}, {"a": {"c": 1}})
        assert matches({"a": {"b": [{"exists": False}]}}, {"a": 5})
        assert matches({"a": {"b": [{"exists": False}]}}, {})

    def test_dynamodb_attributes_exist_through_their_type_key(self) -> None:
        record = ddb_record(new_image=ORDER)
        # The attribute itself ({"S": ...}) is an object, not a leaf:
        assert not matches({"dynamodb": {"NewImage": {"status": [{"exists": True}]}}}, record)
        assert matches({"dynamodb": {"NewImage": {"status": [{"exists": False}]}}}, record)
        # ...so name the type:
        assert matches({"dynamodb": {"NewImage": {"status": {"S": [{"exists": True}]}}}}, record)
        assert matches({"dynamodb": {"NewImage": {"gone": {"S": [{"exists": False}]}}}}, record)
        assert not matches(
            {"dynamodb": {"NewImage": {"status": {"S": [{"exists": False}]}}}}, record
        )

    def test_exists_false_or_a_value(self) -> None:
        pattern = {"a": [{"exists": False}, "x"]}
        assert matches(pattern, {})
        assert matches(pattern, {"a": "x"})
        assert not matches(pattern, {"a": "y"})

    def test_exists_true_and_false_together_match_anything(self) -> None:
        pattern = {"a": [{"exists": True}, {"exists": False}]}
        assert matches(pattern, {})
        assert matches(pattern, {"a": 1})

    def test_absence_across_arrays_ignores_only_unchosen_elements(self) -> None:
        # With no other field choosing an element, any element's leaf counts as present.
        assert not matches({"a": {"x": [{"exists": False}]}}, {"a": [{"y": 1}, {"x": 2}]})
        assert matches({"a": {"x": [{"exists": False}]}}, {"a": [{"y": 1}, {"y": 2}]})
        # "b" (sorted before "c") chooses element 0, where "c" is absent:
        assert matches(
            {"a": {"b": [1], "c": [{"exists": False}]}},
            {"a": [{"b": 1}, {"c": 2}]},
        )
        assert not matches(
            {"a": {"b": [1], "c": [{"exists": False}]}},
            {"a": [{"b": 1, "c": 3}, {"c": 2}]},
        )

    def test_absence_is_checked_in_event_ruler_field_order(self) -> None:
        # "x" sorts before "y": when "x" is checked no element is chosen yet, so the x in
        # element 1 counts and the pattern fails, although element 0 alone would satisfy it.
        pattern = {"a": {"x": [{"exists": False}], "y": [1]}}
        assert not matches(pattern, {"a": [{"y": 1}, {"x": 2}]})


# --- $or -------------------------------------------------------------------------------------


class TestOr:
    def test_top_level(self) -> None:
        pattern = {"$or": [{"a": ["x"]}, {"b": ["y"]}]}
        assert matches(pattern, {"a": "x"})
        assert matches(pattern, {"b": "y"})
        assert not matches(pattern, {"a": "y", "b": "x"})

    def test_combined_with_and(self) -> None:
        pattern = {"source": ["s"], "$or": [{"m": ["cpu"]}, {"t": ["T"], "n": ["N"]}]}
        assert matches(pattern, {"source": "s", "m": "cpu"})
        assert matches(pattern, {"source": "s", "t": "T", "n": "N"})
        assert not matches(pattern, {"source": "s", "t": "T"})
        assert not matches(pattern, {"source": "other", "m": "cpu"})

    def test_nested_inside_an_object(self) -> None:
        pattern = {
            "dynamodb": {
                "$or": [
                    {"NewImage": {"status": {"S": ["PAID"]}}},
                    {"OldImage": {"status": {"S": ["PAID"]}}},
                ]
            }
        }
        assert matches(pattern, ddb_record("REMOVE", old_image=ORDER))
        assert matches(pattern, ddb_record("INSERT", new_image=ORDER))
        unpaid = {**ORDER, "status": {"S": "NEW"}}
        assert not matches(pattern, ddb_record("MODIFY", new_image=unpaid, old_image=unpaid))

    def test_parallel_and_nested_or(self) -> None:
        pattern = {
            "$or": [{"a": [1]}, {"b": [1], "$or": [{"c": [1]}, {"d": [1]}]}],
            "e": {"$or": [{"f": [1]}, {"g": [1]}]},
        }
        assert matches(pattern, {"a": 1, "e": {"g": 1}})
        assert matches(pattern, {"b": 1, "d": 1, "e": {"f": 1}})
        assert not matches(pattern, {"b": 1, "e": {"f": 1}})
        assert not matches(pattern, {"a": 1, "e": {"h": 1}})

    def test_a_field_repeated_inside_or_keeps_the_last_definition(self) -> None:
        # event-ruler writes a field into every branch and a later write replaces it.
        pattern = '{"a": ["x"], "$or": [{"a": ["y"]}, {"b": ["z"]}]}'
        assert matches(pattern, {"a": "y"})
        assert not matches(pattern, {"a": "x"})
        assert matches(pattern, {"a": "x", "b": "z"})

    def test_or_that_is_not_an_or_is_a_field_name(self) -> None:
        # event-ruler falls back to "$or" as a plain field when it is not an array of 2+
        # objects (README: backward compatibility of "$or" as a field name).
        assert matches({"$or": {"a": ["x"]}}, {"$or": {"a": "x"}})
        assert not matches({"$or": {"a": ["x"]}}, {"a": "x"})
        assert matches({"$or": ["x", "y"]}, {"$or": "y"})
        # Operators as $or field names also fall back: here a leaf of prefix matchers.
        pattern = {"$or": [{"prefix": "a"}, {"prefix": "b"}]}
        assert matches(pattern, {"$or": "bcd"})
        assert not matches(pattern, {"a": "a"})

    def test_duplicate_keys_in_pattern_text_are_all_applied(self) -> None:
        # event-ruler parses the text as a stream: both "a" objects contribute fields.
        pattern = '{"a": {"b": ["x"]}, "a": {"c": ["y"]}}'
        assert matches(pattern, {"a": {"b": "x", "c": "y"}})
        assert not matches(pattern, {"a": {"c": "y"}})


# --- DynamoDB stream records -----------------------------------------------------------------


class TestDynamoDBRecords:
    def test_event_name_and_new_image_value(self) -> None:
        pattern = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": ["PAID"]}}}}
        assert matches(pattern, ddb_record("INSERT", new_image=ORDER))
        assert not matches(pattern, ddb_record("MODIFY", new_image=ORDER))
        assert not matches(
            pattern, ddb_record("INSERT", new_image={**ORDER, "status": {"S": "NEW"}})
        )

    def test_keys(self) -> None:
        pattern = {"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "order#"}]}}}}
        assert matches(pattern, ddb_record(new_image=ORDER))
        assert not matches(pattern, ddb_record(keys={"pk": {"S": "user#1"}}))

    def test_status_transition_with_anything_but_on_the_old_image(self) -> None:
        pattern = {
            "eventName": ["MODIFY"],
            "dynamodb": {
                "NewImage": {"status": {"S": ["SHIPPED"]}},
                "OldImage": {"status": {"S": [{"anything-but": ["SHIPPED"]}]}},
            },
        }
        shipped = {**ORDER, "status": {"S": "SHIPPED"}}
        assert matches(pattern, ddb_record("MODIFY", new_image=shipped, old_image=ORDER))
        assert not matches(pattern, ddb_record("MODIFY", new_image=shipped, old_image=shipped))
        # On INSERT there is no OldImage: anything-but needs a value, so no match.
        assert not matches({"dynamodb": pattern["dynamodb"]}, ddb_record(new_image=shipped))

    def test_bool_null_and_sets(self) -> None:
        record = ddb_record(new_image=ORDER)
        assert matches({"dynamodb": {"NewImage": {"express": {"BOOL": [True]}}}}, record)
        assert not matches({"dynamodb": {"NewImage": {"express": {"BOOL": [False]}}}}, record)
        assert matches({"dynamodb": {"NewImage": {"coupon": {"NULL": [True]}}}}, record)
        assert matches({"dynamodb": {"NewImage": {"tags": {"SS": ["fragile"]}}}}, record)

    def test_list_of_maps_is_matched_element_by_element(self) -> None:
        record = ddb_record(new_image=ORDER)
        line = {"dynamodb": {"NewImage": {"lines": {"L": {"M": {}}}}}}

        def with_line(sku: str, qty: str) -> dict[str, Any]:
            pattern = json.loads(json.dumps(line))
            pattern["dynamodb"]["NewImage"]["lines"]["L"]["M"] = {
                "sku": {"S": [sku]},
                "qty": {"N": [qty]},
            }
            return pattern

        assert matches(with_line("B-7", "1"), record)
        assert not matches(with_line("B-7", "2"), record)  # qty 2 belongs to A-1

    def test_remove_records_without_new_image(self) -> None:
        pattern = {"dynamodb": {"NewImage": {"status": {"S": [{"exists": False}]}}}}
        assert matches(pattern, ddb_record("REMOVE", old_image=ORDER))
        assert not matches(pattern, ddb_record("INSERT", new_image=ORDER))

    def test_ttl_deletes_by_user_identity(self) -> None:
        pattern = {"userIdentity": {"type": ["Service"], "principalId": ["dynamodb.amazonaws.com"]}}
        ttl = ddb_record("REMOVE", old_image=ORDER)
        ttl["userIdentity"] = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
        assert matches(pattern, ttl)
        assert not matches(pattern, ddb_record("REMOVE", old_image=ORDER))


# --- invalid patterns ------------------------------------------------------------------------

INVALID_PATTERNS = {
    # not JSON / not an object
    "malformed JSON": ('{"a": ["x"]', "malformed JSON"),
    "trailing garbage": ('{"a": ["x"]} x', "malformed JSON"),
    "empty text": ("", "malformed JSON"),
    "NaN literal": ('{"a": [NaN]}', "NaN"),
    "array root": ('["a"]', "must be a JSON object"),
    "string root": ('"a"', "must be a JSON object"),
    "null root": ("null", "must be a JSON object"),
    # structure
    "empty pattern": ("{}", "empty objects"),
    "empty nested object": ('{"a": {}}', "empty objects"),
    "leaf not an array": ('{"a": "x"}', "must be an object or an array"),
    "leaf number": ('{"a": 5}', "must be an object or an array"),
    "leaf null": ('{"a": null}', "must be an object or an array"),
    "empty array": ('{"a": []}', "empty arrays"),
    "nested array value": ('{"a": [["x"]]}', "match values"),
    # match expressions
    "empty match expression": ('{"a": [{}]}', "exactly one key"),
    "two keys in an expression": ('{"a": [{"prefix": "x", "suffix": "y"}]}', "exactly one key"),
    "repeated key in an expression": ('{"a": [{"prefix": "x", "prefix": "y"}]}', "exactly one key"),
    "unknown operator": ('{"a": [{"contains": "x"}]}', "unrecognised match type"),
    "prefix number": ('{"a": [{"prefix": 1}]}', "expected a string"),
    "prefix list": ('{"a": [{"prefix": ["x"]}]}', "expected a string"),
    "prefix unknown nested": ('{"a": [{"prefix": {"wildcard": "x"}}]}', "equals-ignore-case"),
    "prefix ignore case number": (
        '{"a": [{"prefix": {"equals-ignore-case": 1}}]}',
        "expected a string",
    ),
    "suffix null": ('{"a": [{"suffix": null}]}', "expected a string"),
    "equals-ignore-case number": ('{"a": [{"equals-ignore-case": 5}]}', "expected a string"),
    "exactly number": ('{"a": [{"exactly": 5}]}', "expected a string"),
    "exists string": ('{"a": [{"exists": "true"}]}', "true or false"),
    "exists number": ('{"a": [{"exists": 1}]}', "true or false"),
    # numeric
    "numeric not a list": ('{"a": [{"numeric": ">"}]}', "numeric takes"),
    "numeric empty": ('{"a": [{"numeric": []}]}', "numeric takes"),
    "numeric no operand": ('{"a": [{"numeric": [">"]}]}', "unrecognised numeric"),
    "numeric unknown operator": ('{"a": [{"numeric": ["!=", 1]}]}', "unrecognised numeric"),
    "numeric operand string": ('{"a": [{"numeric": [">", "1"]}]}', "expected a number"),
    "numeric operand bool": ('{"a": [{"numeric": ["=", true]}]}', "expected a number"),
    "numeric upper first": ('{"a": [{"numeric": ["<", 5, ">", 1]}]}', "unrecognised numeric"),
    "numeric equals with more": ('{"a": [{"numeric": ["=", 5, "<", 6]}]}', "unrecognised numeric"),
    "numeric two lower bounds": ('{"a": [{"numeric": [">", 1, ">=", 2]}]}', "range operator"),
    "numeric too many terms": ('{"a": [{"numeric": [">", 1, "<", 3, "<", 4]}]}', "unrecognised"),
    "numeric odd terms": ('{"a": [{"numeric": [">", 1, "<"]}]}', "unrecognised numeric"),
    "numeric empty range": ('{"a": [{"numeric": [">", 5, "<", 5]}]}', "less than its top"),
    "numeric inverted range": ('{"a": [{"numeric": [">=", 6, "<=", 5]}]}', "less than its top"),
    "numeric above limit": ('{"a": [{"numeric": [">", 5000000001]}]}', "outside"),
    "numeric below limit": ('{"a": [{"numeric": ["<", -5e9, "x", 1]}]}', "unrecognised"),
    "numeric seven decimals": ('{"a": [{"numeric": ["=", 0.1234567]}]}', "decimal places"),
    # anything-but
    "anything-but null": ('{"a": [{"anything-but": null}]}', "strings only or numbers only"),
    "anything-but bool": ('{"a": [{"anything-but": true}]}', "strings only or numbers only"),
    "anything-but empty list": ('{"a": [{"anything-but": []}]}', "strings only or numbers only"),
    "anything-but mixed list": ('{"a": [{"anything-but": ["x", 1]}]}', "strings only"),
    "anything-but list with null": ('{"a": [{"anything-but": ["x", null]}]}', "strings only"),
    "anything-but number too big": ('{"a": [{"anything-but": [1e10]}]}', "outside"),
    "anything-but unknown nested": (
        '{"a": [{"anything-but": {"numeric": [">", 1]}}]}',
        "unsupported",
    ),
    "anything-but two nested keys": (
        '{"a": [{"anything-but": {"prefix": "x", "suffix": "y"}}]}',
        "exactly one nested",
    ),
    "anything-but empty prefix": ('{"a": [{"anything-but": {"prefix": ""}}]}', "empty prefix"),
    "anything-but empty suffix in list": (
        '{"a": [{"anything-but": {"suffix": ["x", ""]}}]}',
        "empty",
    ),
    "anything-but prefix number": ('{"a": [{"anything-but": {"prefix": 1}}]}', "expected a string"),
    "anything-but bad wildcard": ('{"a": [{"anything-but": {"wildcard": "a**"}}]}', "consecutive"),
    "anything-but two keys": ('{"a": [{"anything-but": "x", "prefix": "y"}]}', "exactly one key"),
    # wildcard / cidr
    "wildcard consecutive stars": ('{"a": [{"wildcard": "a**b"}]}', "consecutive"),
    "wildcard bad escape": ('{"a": [{"wildcard": "a\\\\b"}]}', "invalid escape"),
    "wildcard trailing backslash": ('{"a": [{"wildcard": "a\\\\"}]}', "invalid escape"),
    "wildcard number": ('{"a": [{"wildcard": 1}]}', "expected a string"),
    "cidr no mask": ('{"a": [{"cidr": "10.0.0.0"}]}', "malformed CIDR"),
    "cidr mask 32": ('{"a": [{"cidr": "10.0.0.0/32"}]}', "malformed CIDR"),
    "cidr ipv6 mask 128": ('{"a": [{"cidr": "::1/128"}]}', "malformed CIDR"),
    "cidr negative mask": ('{"a": [{"cidr": "10.0.0.0/-1"}]}', "malformed CIDR"),
    "cidr bad address": ('{"a": [{"cidr": "10.0.0.256/8"}]}', "malformed CIDR"),
    "cidr hostname": ('{"a": [{"cidr": "example.com/8"}]}', "malformed CIDR"),
    "cidr two slashes": ('{"a": [{"cidr": "10.0.0.0/8/8"}]}', "malformed CIDR"),
    # $or
    "$or one object": ('{"$or": [{"a": ["x"]}]}', "at least 2"),
    "$or empty": ('{"$or": []}', "at least 2"),
    "$or scalar": ('{"$or": "x"}', "followed by an array"),
    "$or with a string element": ('{"$or": [{"a": ["x"]}, "b"]}', "only JSON objects"),
    "$or with empty object": ('{"$or": [{"a": ["x"]}, {}]}', "empty objects"),
    "$or with invalid branch": (
        '{"$or": [{"a": ["x"]}, {"b": "y"}]}',
        "must be an object or an array",
    ),
    "$or reserved field": ('{"$or": [{"numeric": [1]}, {"b": ["y"]}]}', "reserved word"),
    "$or nested reserved field": ('{"$or": [{"a": {"prefix": ["x"]}}, {"b": ["y"]}]}', "reserved"),
}


class TestInvalidPatterns:
    @pytest.mark.parametrize(
        ("pattern", "detail"), list(INVALID_PATTERNS.values()), ids=list(INVALID_PATTERNS)
    )
    def test_rejected_with_lambdas_message(self, pattern: str, detail: str) -> None:
        with pytest.raises(InvalidFilterPatternError) as caught:
            FilterPattern.parse(pattern)
        error = caught.value
        assert str(error) == MESSAGE
        assert detail in error.detail
        assert error.pattern == pattern
        assert isinstance(error, ValueError)
        with pytest.raises(InvalidFilterPatternError):
            validate_pattern(pattern)

    def test_the_detail_is_a_traceback_note(self) -> None:
        with pytest.raises(InvalidFilterPatternError) as caught:
            FilterPattern.parse('{"a": []}')
        assert any("empty arrays" in note for note in caught.value.__notes__)

    def test_errors_pickle_with_their_detail(self) -> None:
        with pytest.raises(InvalidFilterPatternError) as caught:
            FilterPattern.parse('{"a": "x"}')
        copy = pickle.loads(pickle.dumps(caught.value))
        assert str(copy) == MESSAGE
        assert copy.detail == caught.value.detail
        assert copy.pattern == '{"a": "x"}'

    @pytest.mark.parametrize("pattern", [5, None, ["a"], b'{"a": ["x"]}'])
    def test_not_text_or_mapping(self, pattern: Any) -> None:
        with pytest.raises(InvalidFilterPatternError):
            FilterPattern.parse(pattern)

    @pytest.mark.parametrize(
        "pattern",
        [
            {"a": [float("nan")]},
            {"a": [{"numeric": [">", float("inf")]}]},
            {"a": [b"x"]},
            {"a": [{"x"}]},
            {1: ["x"]},
            {"a": {"b": 1}},
        ],
        ids=["nan", "infinity", "bytes", "set", "int key", "leaf not array"],
    )
    def test_invalid_mappings(self, pattern: Any) -> None:
        with pytest.raises(InvalidFilterPatternError):
            FilterPattern.parse(pattern)

    def test_too_deeply_nested(self) -> None:
        nested: dict[str, Any] = {"a": ["x"]}
        for _ in range(5000):
            nested = {"a": nested}
        with pytest.raises(InvalidFilterPatternError):
            FilterPattern.parse(nested)
        with pytest.raises(InvalidFilterPatternError):
            FilterPattern.parse('{"a":' * 5000 + '["x"]' + "}" * 5000)

    def test_too_many_or_branches(self) -> None:
        def levels(count: int) -> dict[str, Any]:  # 2**count branches
            return {f"level{i}": {"$or": [{"f": ["x"]}, {"g": ["y"]}]} for i in range(count)}

        assert FilterPattern.parse(levels(10)).matches({f"level{i}": {"g": "y"} for i in range(10)})
        with pytest.raises(InvalidFilterPatternError) as caught:
            FilterPattern.parse(levels(11))
        assert "branches" in caught.value.detail


class TestValidPatterns:
    @pytest.mark.parametrize(
        "pattern",
        [
            '{"a": ["x"]}',
            '{"a": [{"numeric": ["=", -5e9]}]}',
            '{"a": [{"numeric": [">=", 0.000001, "<", 5000000000]}]}',
            '{"a": [{"numeric": ["=", 1.50000000]}]}',  # trailing zeros are not decimals
            '{"a": [1e20, 0.12345678]}',  # exact numbers are not range-limited
            '{"a": [{"anything-but": {"prefix": []}}]}',
            '{"a": [{"anything-but": {"equals-ignore-case": ""}}]}',
            '{"a": [{"prefix": ""}, {"suffix": ""}, {"wildcard": ""}]}',
            '{"a": [{"cidr": "10.0.0.0/0"}, {"cidr": "10.0.0.0/8/"}]}',
            '{"$or": {"a": ["x"]}}',
            '{"a": {"$or": [{"b": ["x"]}, {"c": ["y"]}]}}',
        ],
    )
    def test_accepted(self, pattern: str) -> None:
        validate_pattern(pattern)

    def test_mapping_input_matches_like_text(self) -> None:
        pattern = {"a": [Decimal("1.5"), {"numeric": [">", Decimal("2")]}]}
        compiled = FilterPattern.parse(pattern)
        assert compiled.matches({"a": 1.5})
        assert compiled.matches({"a": 3})
        assert not compiled.matches({"a": 2})
        assert json.loads(compiled.source) == {"a": [1.5, {"numeric": [">", 2]}]}

    def test_source_equality_and_repr(self) -> None:
        text = '{"a": ["x"]}'
        assert FilterPattern.parse(text) == FilterPattern.parse(text)
        assert FilterPattern.parse(text) != FilterPattern.parse('{"a": ["y"]}')
        assert len({FilterPattern.parse(text), FilterPattern.parse(text)}) == 1
        assert repr(FilterPattern.parse(text)) == f"FilterPattern({text!r})"


class TestDialects:
    LAMBDA_ONLY_REJECTS = [
        {"a": [{"wildcard": "x*"}]},
        {"a": [{"cidr": "10.0.0.0/8"}]},
        {"a": [{"exactly": "x"}]},
        {"a": [{"anything-but": {"prefix": "x"}}]},
        {"a": [{"anything-but": {"suffix": "x"}}]},
        {"a": [{"anything-but": {"equals-ignore-case": "x"}}]},
        {"a": [{"anything-but": {"wildcard": "x*"}}]},
        {"a": {"b": ["y", {"wildcard": "x*"}]}},
        {"$or": [{"a": ["x"]}, {"b": [{"cidr": "10.0.0.0/8"}]}]},
        {"$or": [{"wildcard": "a*"}, {"prefix": "b"}]},  # "$or" as a field name
    ]

    @pytest.mark.parametrize("pattern", LAMBDA_ONLY_REJECTS)
    def test_lambda_refuses_operators_it_does_not_list(self, pattern: dict[str, Any]) -> None:
        validate_pattern(pattern)  # fine for EventBridge (routing)
        with pytest.raises(InvalidFilterPatternError) as caught:
            validate_pattern(pattern, dialect="lambda")
        assert "not supported by Lambda" in caught.value.detail
        with pytest.raises(InvalidFilterPatternError):
            FilterCriteria.from_api(criteria(pattern))

    @pytest.mark.parametrize(
        "pattern",
        [
            {"a": ["x", 1, None, True, ""]},
            {"a": [{"prefix": "x"}, {"suffix": "y"}, {"equals-ignore-case": "z"}]},
            {
                "a": [
                    {"prefix": {"equals-ignore-case": "x"}},
                    {"suffix": {"equals-ignore-case": "y"}},
                ]
            },
            {"a": [{"anything-but": "x"}, {"anything-but": [1, 2]}]},
            {"a": [{"numeric": [">", 0, "<=", 5]}, {"exists": False}]},
            {"$or": [{"a": ["x"]}, {"b": {"c": [{"exists": True}]}}]},
            {"wildcard": ["a field may be called wildcard"]},
        ],
    )
    def test_lambda_accepts_its_operators(self, pattern: dict[str, Any]) -> None:
        validate_pattern(pattern, dialect="lambda")
        assert len(FilterCriteria.from_api(criteria(pattern))) == 1


# --- FilterCriteria --------------------------------------------------------------------------


def criteria(*patterns: Any) -> dict[str, Any]:
    return {"Filters": [{"Pattern": p if isinstance(p, str) else json.dumps(p)} for p in patterns]}


class TestFilterCriteria:
    @pytest.mark.parametrize("value", [None, {}, {"Filters": []}, {"Filters": None}])
    def test_no_filters_matches_everything(self, value: Any) -> None:
        built = FilterCriteria.from_api(value)
        assert not built
        assert len(built) == 0
        assert built.matches({"anything": 1})
        assert built.to_api() is None

    def test_filters_are_ored(self) -> None:
        built = FilterCriteria.from_api(
            criteria({"eventName": ["INSERT"]}, {"eventName": ["REMOVE"]})
        )
        assert built
        assert len(built) == 2
        assert built.matches(ddb_record("INSERT", new_image=ORDER))
        assert built.matches(ddb_record("REMOVE", old_image=ORDER))
        assert not built.matches(ddb_record("MODIFY", new_image=ORDER, old_image=ORDER))

    def test_round_trips_to_the_api_shape(self) -> None:
        value = criteria('{"a": ["x"]}', '{"b": [1]}')
        assert FilterCriteria.from_api(value).to_api() == value

    def test_five_filters_are_allowed_six_are_not(self) -> None:
        five = criteria(*({"a": [i]} for i in range(5)))
        assert len(FilterCriteria.from_api(five)) == 5
        with pytest.raises(InvalidParameterValueError) as caught:
            FilterCriteria.from_api(criteria(*({"a": [i]} for i in range(6))))
        assert str(caught.value) == (
            "The number of filters (6) exceeds the limit of 5 filters per event source mapping."
        )
        assert caught.value.code == "InvalidParameterValueException"

    def test_a_raised_quota(self) -> None:
        ten = criteria(*({"a": [i]} for i in range(10)))
        assert len(FilterCriteria.from_api(ten, max_filters=10)) == 10

    def test_pattern_length_limit(self) -> None:
        def pattern_of_length(length: int) -> str:
            text = '{"a": [""]}'
            return text.replace('""', '"' + "x" * (length - len(text)) + '"')

        assert len(pattern_of_length(MAX_PATTERN_LENGTH)) == MAX_PATTERN_LENGTH
        FilterCriteria.from_api(criteria(pattern_of_length(MAX_PATTERN_LENGTH)))
        with pytest.raises(InvalidParameterValueError) as caught:
            FilterCriteria.from_api(
                criteria('{"a": ["x"]}', pattern_of_length(MAX_PATTERN_LENGTH + 1))
            )
        message = str(caught.value)
        assert "'filterCriteria.filters.2.member.pattern'" in message
        assert message.endswith("Member must have length less than or equal to 4096")
        assert caught.value.code == "ValidationException"

    def test_length_counts_utf16_code_units(self) -> None:
        # AWS (Java) counts "\U0001f600" as two characters.
        text = '{"a": [""]}'
        emoji_count = (MAX_PATTERN_LENGTH - len(text)) // 2 + 1
        pattern = text.replace('""', '"' + "\U0001f600" * emoji_count + '"')
        assert len(pattern) <= MAX_PATTERN_LENGTH
        with pytest.raises(InvalidParameterValueError):
            FilterCriteria.from_api(criteria(pattern))

    def test_an_invalid_pattern_raises_lambdas_message(self) -> None:
        with pytest.raises(InvalidFilterPatternError) as caught:
            FilterCriteria.from_api(criteria('{"a": ["x"]}', '{"b": "y"}'))
        assert str(caught.value) == MESSAGE

    @pytest.mark.parametrize(
        "value",
        [
            {"Filters": [{}]},
            {"Filters": [{"Pattern": None}]},
            {"Filters": ["{}"]},
            {"Filters": "x"},
            {"Filters": {"Pattern": "{}"}},
            "Filters",
        ],
    )
    def test_malformed_criteria(self, value: Any) -> None:
        with pytest.raises(InvalidFilterPatternError):
            FilterCriteria.from_api(value)

    def test_patterns_echoed_as_objects_are_accepted(self) -> None:
        built = FilterCriteria.from_api({"Filters": [{"Pattern": {"a": ["x"]}}]})
        assert built.matches({"a": "x"})
        assert not built.matches({"a": "y"})

    def test_constructed_from_patterns(self) -> None:
        built = FilterCriteria([FilterPattern.parse('{"a": ["x"]}')])
        assert built.matches({"a": "x"})
        assert not built.matches({"a": "z"})
        assert "FilterPattern" in repr(built)
