"""Numbers as event-ruler compares them.

event-ruler (the matcher behind EventBridge patterns) compares numbers numerically only
within +/-5e9 and to six decimal places (its ComparableNumber); EventBridge documents the same:
"Numeric matching ... is limited to values between -5.0e9 and +5.0e9 inclusive, with 15 digits
of precision, or six digits to the right of the decimal point."
https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html

A pattern operand outside those limits is invalid; an event number outside them never matches
``numeric`` (event-ruler cannot convert it) and equals only the very same number.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from streamkit.exceptions import InvalidFilterPatternError

NUMERIC_LIMIT = 5_000_000_000
NUMERIC_DECIMALS = 6


def comparable(value: Any) -> float | None:
    """The value as a float if it is a number event-ruler compares numerically, else None.

    Within +/-5e9 and six decimals, float comparison is exact: 5e9 * 1e6 < 2**53, and two
    distinct six-decimal values there are more than one float spacing apart, so rounding to
    float neither merges nor reorders them.
    """
    kind = type(value)
    if kind is int:
        return float(value) if -NUMERIC_LIMIT <= value <= NUMERIC_LIMIT else None
    if kind is float:
        # round() is correctly rounded, so it is a no-op exactly when repr has <= 6 decimals.
        number: float = value
        if -NUMERIC_LIMIT <= number <= NUMERIC_LIMIT and round(number, NUMERIC_DECIMALS) == number:
            return number
        return None
    if kind is bool or not isinstance(value, int | float | Decimal):
        return None
    if isinstance(value, Decimal):
        if not value.is_finite() or not -NUMERIC_LIMIT <= value <= NUMERIC_LIMIT:
            return None
        exponent = value.normalize().as_tuple().exponent
        return float(value) if isinstance(exponent, int) and exponent >= -NUMERIC_DECIMALS else None
    return comparable(float(value) if isinstance(value, float) else int(value))


def is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def exact_decimal(value: Any) -> Decimal:
    """A number's exact decimal value, reading floats the way JSON wrote them (shortest repr)."""
    if isinstance(value, Decimal):
        return value
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(int(value))


def finite(value: Any) -> bool:
    return not isinstance(value, float | Decimal) or (
        value.is_finite() if isinstance(value, Decimal) else math.isfinite(value)
    )


def numeric_operand(value: Any, where: str) -> float:
    """A numeric operand of the pattern (``numeric``, ``anything-but``): event-ruler rejects
    operands outside +/-5e9 or with more than six decimals (ComparableNumber.generate)."""
    if not is_number(value):
        raise InvalidFilterPatternError(f"{where}: expected a number, got {value!r}")
    number = comparable(value) if finite(value) else None
    if number is None:
        raise InvalidFilterPatternError(
            f"{where}: {value!r} is outside -5e9..5e9 or has more than "
            f"{NUMERIC_DECIMALS} decimal places"
        )
    return number


def numeric_test(operand: Any, where: str) -> Callable[[Any], bool]:
    """``["=", n]``, ``[">"|">=", n]``, ``["<"|"<=", n]`` or ``[">"|">=", a, "<"|"<=", b]``
    with a < b (event-ruler's processNumericMatchExpression and Range.between)."""
    terms = list(operand) if isinstance(operand, list) else None
    if not terms or not isinstance(terms[0], str):
        raise InvalidFilterPatternError(f"{where}: numeric takes [operator, number, ...]")
    if len(terms) == 2 and terms[0] == "=":
        target = numeric_operand(terms[1], where)
        return lambda v: comparable(v) == target
    lower_ops, upper_ops = (">", ">="), ("<", "<=")
    lower: tuple[float, bool] | None = None  # (bound, inclusive)
    upper: tuple[float, bool] | None = None
    if len(terms) == 2 and terms[0] in upper_ops:
        upper = (numeric_operand(terms[1], where), terms[0] == "<=")
    elif len(terms) in (2, 4) and terms[0] in lower_ops:
        lower = (numeric_operand(terms[1], where), terms[0] == ">=")
        if len(terms) == 4:
            if terms[2] not in upper_ops:
                raise InvalidFilterPatternError(f"{where}: bad numeric range operator {terms[2]!r}")
            upper = (numeric_operand(terms[3], where), terms[2] == "<=")
            if upper[0] <= lower[0]:
                raise InvalidFilterPatternError(
                    f"{where}: bottom of a numeric range must be less than its top"
                )
    else:
        raise InvalidFilterPatternError(f"{where}: unrecognised numeric expression {terms!r}")
    low, low_inclusive = lower if lower else (-math.inf, True)
    high, high_inclusive = upper if upper else (math.inf, True)

    def test(value: Any) -> bool:
        number = comparable(value)
        if number is None:
            return False
        above = number >= low if low_inclusive else number > low
        return above and (number <= high if high_inclusive else number < high)

    return test
