"""What DynamoDB accepts as a number, shared by both walkers of both directions; and the
signal a fast walker gives up with.

https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/HowItWorks.NamingRulesDataTypes.html
"""

from __future__ import annotations

import re
from decimal import (
    Clamped,
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    Overflow,
    Rounded,
    Subnormal,
    Underflow,
)
from typing import Any, Literal

NumberMode = Literal["decimal", "native"]
BinaryMode = Literal["bytes", "base64"]

# DynamoDB number limits (see the data types page cited above).
MAX_SIGNIFICANT_DIGITS = 38
MAX_ADJUSTED_EXPONENT = 125  # largest magnitude 9.9999999999999999999999999999999999999E+125
MIN_ADJUSTED_EXPONENT = -130  # smallest non-zero magnitude 1E-130
# Lists and maps nest at most 32 deep (same page). Both walkers of both directions stop there,
# which also turns a hostile or self-referencing input into a clear error instead of a
# RecursionError (or, in the compiled walker, a C stack overflow).
MAX_NESTING_DEPTH = 32
NESTING_PROBLEM = (
    f"nested more than {MAX_NESTING_DEPTH} levels deep; DynamoDB allows at most "
    f"{MAX_NESTING_DEPTH} levels of lists and maps"
)

# What the N grammar allows; Decimal alone would also take " 1", "1_000", "NaN" and non-ASCII
# digits, none of which DynamoDB accepts.
_NUMBER_SYNTAX = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


# The fast deserializers convert a number text they have not seen with
# DYNAMODB_CONTEXT.create_decimal, which (unlike Decimal()) admits no surrounding whitespace
# and no underscores, and raises instead of rounding whenever DynamoDB could not store the
# value: more than 38 digits (Rounded), magnitude over 9.99..E+125 (Overflow) or under 1E-130
# (Subnormal). What it still lets through, digits of other scripts and NaN/Infinity, they
# catch with str.isascii() and Decimal.is_finite(). The context errs on the strict side: valid
# numbers with trailing zeros beyond 38 digits, and zeros with huge exponents, make it raise;
# the checked walker then accepts them.
DYNAMODB_CONTEXT = Context(
    prec=MAX_SIGNIFICANT_DIGITS,
    Emax=MAX_ADJUSTED_EXPONENT,
    Emin=MIN_ADJUSTED_EXPONENT,
    traps=[InvalidOperation, Overflow, Subnormal, Underflow, Rounded, Inexact, Clamped],
)

# Short number texts ("0", "1", "42", "0.00") recur everywhere: quantities, flags, versions.
# Their values are immutable, so the fast deserializers convert each once and then look it
# up. Only texts of at most SMALL_NUMBER_MAX_LEN characters are kept (a finite domain real
# data revisits constantly), and at most SMALL_NUMBERS_KEPT per table (about 1.5 MB), so
# hostile input cannot make a table grow without bound; no eviction is needed.
SMALL_NUMBER_MAX_LEN = 4
SMALL_NUMBERS_KEPT = 8192
# Longer texts (prices, timestamps, coordinates) mostly recur close together: a MODIFY
# record's OldImage repeats most of its NewImage. The pure-Python walker, for which a
# conversion is a large share of the walk, remembers the last few of those too, in a table
# emptied whenever it holds RECENT_NUMBERS_KEPT texts: enough to span a record's two images,
# too few to keep a previous batch's numbers (so repeating one batch flatters nothing).
RECENT_NUMBER_MAX_LEN = 40
RECENT_NUMBERS_KEPT = 256


class ShortNumberTables:
    """A fast deserializer's tables of converted number texts, one pair per number mode:
    short texts (kept), and recent longer ones (emptied when full)."""

    def __init__(self) -> None:
        self.decimals: dict[str, Any] = {}
        self.natives: dict[str, Any] = {}
        self.recent_decimals: dict[str, Any] = {}
        self.recent_natives: dict[str, Any] = {}

    def remembered(self) -> int:
        """How many texts are remembered, over both number modes."""
        return (
            len(self.decimals)
            + len(self.natives)
            + len(self.recent_decimals)
            + len(self.recent_natives)
        )

    def forget(self) -> None:
        """Empty every table: the state of a fresh Lambda container."""
        self.decimals.clear()
        self.natives.clear()
        self.recent_decimals.clear()
        self.recent_natives.clear()


class Unusual(Exception):
    """Raised by a fast walker for input it leaves to the checked walker."""


def abbreviated(text: str, limit: int = 48) -> str:
    """``text`` for an error message: long values are cut in the middle."""
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]}...{text[-limit // 4 :]} ({len(text)} characters)"


def number_problem(number: Decimal) -> str | None:
    """Why ``number`` is not a valid DynamoDB number, or None if it is."""
    if not number.is_finite():
        return f"{number} is not a valid DynamoDB number (NaN and Infinity are not allowed)"
    if not number:
        return None  # zero, whatever its exponent
    # Trailing zeros do not count towards the precision: DynamoDB trims them.
    significant = len("".join(map(str, number.as_tuple().digits)).rstrip("0"))
    if significant > MAX_SIGNIFICANT_DIGITS:
        return (
            f"{abbreviated(str(number))} has {significant} significant digits; "
            f"DynamoDB allows at most {MAX_SIGNIFICANT_DIGITS}"
        )
    if not MIN_ADJUSTED_EXPONENT <= number.adjusted() <= MAX_ADJUSTED_EXPONENT:
        return (
            f"{abbreviated(str(number))} is out of range; DynamoDB numbers are zero or have "
            "a magnitude from 1E-130 to 9.9999999999999999999999999999999999999E+125"
        )
    return None


def _parse_number(text: object) -> tuple[Decimal | None, str | None]:
    """``(Decimal, None)`` for valid DynamoDB number text, else ``(None, reason)``."""
    if not isinstance(text, str):
        return None, f"a number must be a string, got {type(text).__name__}"
    if _NUMBER_SYNTAX.fullmatch(text) is None:
        shown = abbreviated(repr(text))
        if text.strip().lstrip("+-").lower() in ("nan", "snan", "inf", "infinity"):
            return (
                None,
                f"{shown} is not a valid DynamoDB number (NaN and Infinity are not allowed)",
            )
        return None, f"{shown} is not a number"
    number = Decimal(text)
    problem = number_problem(number)
    return (None, problem) if problem else (number, None)


def native_number(text: str, number: Decimal) -> int | float:
    """``numbers="native"`` for a valid N text and its Decimal: int for integral values (1,
    2.0, 1E+3), float otherwise.

    Plain integer texts and fractions convert from the text, several times faster than from
    the Decimal, with the same value: int() is exact either way, and float() rounds the exact
    decimal value either way (float(Decimal) itself goes through the text).
    """
    if text.lstrip("+-").isdigit():  # ASCII digits only: the text was validated first
        return int(text)
    if number == number.to_integral_value():
        return int(number)
    return float(text)


def checked_number(text: object, numbers: NumberMode) -> Any:
    """A number from its text, fully checked; raises ValueError(reason) when invalid."""
    number, problem = _parse_number(text)
    if number is None:
        raise ValueError(problem)
    if numbers == "decimal":
        return number
    assert isinstance(text, str)  # for the type checker: _parse_number only takes text
    return native_number(text, number)
