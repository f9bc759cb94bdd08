"""EventBridge-style filter patterns, as Lambda event filtering applies them.

The local event source mapping runner uses :class:`FilterCriteria` to apply a mapping's
``FilterCriteria`` to DynamoDB stream records, and routing uses :class:`FilterPattern` to match
records. Patterns validate and compile once; ``matches`` is then a few dictionary lookups.

For a DynamoDB record the pattern sees the record as Lambda delivers it, images in DynamoDB
JSON, so patterns name the attribute type::

    {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": ["PAID"]}}}}

Operators in both dialects (``dialect=`` of :meth:`FilterPattern.parse`):

- exact values: strings, numbers, ``true``/``false``, ``null`` (``[null]`` needs an explicit
  null, ``[""]`` an empty string);
- ``{"prefix": s}``, ``{"suffix": s}``, ``{"equals-ignore-case": s}``, and
  ``{"prefix"|"suffix": {"equals-ignore-case": s}}``;
- ``{"anything-but": v | [v, ...]}`` (strings only or numbers only);
- ``{"numeric": ["=", n]}`` and ranges such as ``[">", 0, "<=", 5]``;
- ``{"exists": true|false}`` (leaves only: a field holding an object does not "exist");
- ``{"$or": [pattern, pattern, ...]}``.

Only in the "eventbridge" dialect: ``{"anything-but": {"prefix"|"suffix"|"equals-ignore-case"|
"wildcard": s | [s, ...]}}``, ``{"wildcard": s}``, ``{"cidr": s}`` and event-ruler's
``{"exactly": s}``. Lambda's operator table does not list them
(https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html#filtering-syntax),
and EventBridge's marks exactly these as unsupported by Pipes, which filter the same stream
and queue sources (https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-create-pattern-operators.html).
:class:`FilterCriteria` (a mapping's filters) uses the "lambda" dialect, so that a filter that
works locally also deploys; :class:`FilterPattern` defaults to "eventbridge" (routing).

As in event-ruler, the engine behind EventBridge, a key with dots names the nested path it
spells (``{"detail": {"state.status": [...]}}`` matches ``{"detail": {"state": {"status":
...}}}``), and wildcard patterns that would make the matcher too complex are refused with AWS's
"Rule is too complex" reason in the error's ``detail`` (see ``_complexity``).

Known differences from event-ruler (all deliberate):

- a number outside +/-5e9 or with more than six decimals equals only the same number
  (event-ruler compares such numbers by their JSON text, which a parsed event no longer has);
- ``$or`` may not expand to more than 1024 branches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from streamkit.exceptions import InvalidFilterPatternError, InvalidParameterValueError
from streamkit.filters._complexity import check_wildcard_complexity
from streamkit.filters._pattern import (
    check_lambda_operators,
    compile_branches,
    load_pattern_text,
    matcher_for,
    to_json_text,
)

__all__ = [
    "MAX_FILTERS",
    "MAX_PATTERN_LENGTH",
    "Dialect",
    "FilterCriteria",
    "FilterPattern",
    "InvalidFilterPatternError",
    "validate_pattern",
]

# "By default, you can define up to five different filters for a single event source mapping"
# (raisable to 10 by quota request); Filter.Pattern: "Maximum length of 4096".
# https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html
# https://docs.aws.amazon.com/lambda/latest/api/API_Filter.html
MAX_FILTERS = 5
MAX_PATTERN_LENGTH = 4096

# Which operators a pattern may use: see the module docstring.
Dialect = Literal["eventbridge", "lambda"]


class FilterPattern:
    """One compiled pattern. Build it with :meth:`parse`; ``source`` is its JSON text."""

    __slots__ = ("_match", "source")

    def __init__(self, source: str, definition: Any, dialect: Dialect = "eventbridge") -> None:
        self.source = source
        self._match = matcher_for(compile_branches(definition))
        if dialect == "lambda":
            check_lambda_operators(definition)  # no wildcards: nothing can be too complex
        else:
            check_wildcard_complexity(definition)

    @classmethod
    def parse(
        cls, pattern: str | Mapping[str, Any], *, dialect: Dialect = "eventbridge"
    ) -> FilterPattern:
        """Validate and compile ``pattern`` (JSON text, or the already-parsed object).

        ``dialect="lambda"`` also refuses the operators Lambda event filtering lacks (see the
        module docstring). Raises :class:`InvalidFilterPatternError` ("Invalid filter pattern
        definition.") with the reason in ``.detail``.
        """
        if isinstance(pattern, str):
            source, definition = pattern, None
        elif isinstance(pattern, Mapping):
            source, definition = to_json_text(pattern), pattern
        else:
            raise InvalidFilterPatternError(
                f"a pattern is JSON text or a mapping, not {type(pattern).__name__}"
            )
        try:
            parsed = load_pattern_text(source) if definition is None else definition
            return cls(source, parsed, dialect)
        except InvalidFilterPatternError as error:
            error.pattern = source
            raise

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether ``event`` (e.g. one stream record, images in DynamoDB JSON) matches."""
        return self._match(event)

    def __repr__(self) -> str:
        return f"FilterPattern({self.source!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FilterPattern) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)


def validate_pattern(pattern: str | Mapping[str, Any], *, dialect: Dialect = "eventbridge") -> None:
    """Raise :class:`InvalidFilterPatternError` unless ``pattern`` is a valid pattern."""
    FilterPattern.parse(pattern, dialect=dialect)


class FilterCriteria:
    """A mapping's ``FilterCriteria``: its patterns ORed; no patterns means no filtering."""

    __slots__ = ("_matchers", "patterns")

    def __init__(self, patterns: Iterable[FilterPattern] = ()) -> None:
        self.patterns: tuple[FilterPattern, ...] = tuple(patterns)
        self._matchers = tuple(pattern._match for pattern in self.patterns)

    @classmethod
    def from_api(
        cls, criteria: Mapping[str, Any] | None, *, max_filters: int = MAX_FILTERS
    ) -> FilterCriteria:
        """Build from the Lambda API shape ``{"Filters": [{"Pattern": "<json>"}, ...]}``.

        Patterns are held to Lambda's operators (``dialect="lambda"``).
        ``None``, ``{}`` and ``{"Filters": []}`` mean no filtering (UpdateEventSourceMapping
        with ``--filter-criteria "{}"`` removes filters). More than ``max_filters`` filters (5,
        AWS's default quota) or a pattern longer than 4096 characters raise
        :class:`~streamkit.exceptions.InvalidParameterValueError`; a malformed pattern raises
        :class:`InvalidFilterPatternError`.
        """
        if criteria is None:
            return cls()
        if not isinstance(criteria, Mapping):
            raise InvalidFilterPatternError(f"FilterCriteria must be an object, not {criteria!r}")
        filters = criteria.get("Filters")
        if filters is None:
            return cls()
        if not isinstance(filters, Sequence) or isinstance(filters, str | bytes):
            raise InvalidFilterPatternError(
                f"FilterCriteria.Filters must be a list, not {filters!r}"
            )
        if len(filters) > max_filters:
            # Same wording as streamkit.local.esm.config, which validates mapping requests.
            raise InvalidParameterValueError(
                f"The number of filters ({len(filters)}) exceeds the limit of {max_filters} "
                "filters per event source mapping."
            )
        return cls(_pattern_of(item, index) for index, item in enumerate(filters, start=1))

    def matches(self, event: Mapping[str, Any]) -> bool:
        """Whether any pattern matches ``event``; always True without patterns."""
        for match in self._matchers:  # called per record: no generator, no method lookups
            if match(event):
                return True
        return not self._matchers

    def to_api(self) -> dict[str, Any] | None:
        """The Lambda API shape, or None without patterns."""
        if not self.patterns:
            return None
        return {"Filters": [{"Pattern": pattern.source} for pattern in self.patterns]}

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __len__(self) -> int:
        return len(self.patterns)

    def __repr__(self) -> str:
        return f"FilterCriteria({list(self.patterns)!r})"


def _pattern_of(item: Any, index: int) -> FilterPattern:
    pattern = item.get("Pattern") if isinstance(item, Mapping) else None
    if isinstance(pattern, Mapping):  # some endpoints echo the pattern parsed
        return FilterPattern.parse(pattern, dialect="lambda")
    if not isinstance(pattern, str):
        raise InvalidFilterPatternError(f"Filters[{index}] has no Pattern string")
    # AWS's API model counts length in UTF-16 code units, as Java strings do.
    length = len(pattern.encode("utf-16-le")) // 2
    if length > MAX_PATTERN_LENGTH:
        raise InvalidParameterValueError(
            f"1 validation error detected: Value '{pattern}' at "
            f"'filterCriteria.filters.{index}.member.pattern' failed to satisfy constraint: "
            f"Member must have length less than or equal to {MAX_PATTERN_LENGTH}",
            code="ValidationException",
        )
    return FilterPattern.parse(pattern, dialect="lambda")
