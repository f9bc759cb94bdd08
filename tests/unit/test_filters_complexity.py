"""Wildcard patterns EventBridge refuses as too complex, and the ones it accepts."""

from __future__ import annotations

from typing import Any

import pytest

from streamkit.exceptions import InvalidFilterPatternError
from streamkit.filters import FilterPattern
from streamkit.filters._complexity import MAX_COMPLEXITY, TOO_COMPLEX, complexity


@pytest.mark.parametrize(
    "pattern",
    [
        {"host": [{"wildcard": "*.example.com"}]},
        {"path": [{"wildcard": "/orders/*/lines/*"}]},
        {"a": [{"wildcard": "a*b*c*d"}], "b": [{"wildcard": "x*y*z"}]},
        {"a": [{"wildcard": "*a*"}, {"wildcard": "*b*"}]},
    ],
)
def test_ordinary_wildcards_are_accepted(pattern: dict[str, Any]) -> None:
    FilterPattern.parse(pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        # many wildcards, each followed by the same character: every '*' stays alive at once
        {"a": [{"wildcard": "*a" * 12 + "*"}]},
        # many values for one field, each with several stars
        {"a": [{"wildcard": f"*{c}*{c}*"} for c in "abcdefgh"]},
        # the same field's wildcards count together across $or alternatives
        {"$or": [{"a": [{"wildcard": f"*{c}*{c}*"}]} for c in "abcdefgh"]},
        {"a": [{"anything-but": {"wildcard": ["*x*x*x*x*x*x*x*x*x*x*x*"]}}]},
    ],
)
def test_patterns_with_too_many_live_wildcards_are_rule_is_too_complex(
    pattern: dict[str, Any],
) -> None:
    with pytest.raises(InvalidFilterPatternError) as caught:
        FilterPattern.parse(pattern)
    assert caught.value.detail == TOO_COMPLEX
    assert TOO_COMPLEX.startswith("Rule is too complex")


def test_complexity_counts_states_alive_together() -> None:
    assert complexity(["abc"]) == 1  # a literal: one state at a time
    assert complexity(["*"]) <= 3
    assert complexity(["*a*"]) < complexity(["*a*a*a*"]) <= MAX_COMPLEXITY
