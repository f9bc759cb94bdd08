"""Routes: what a route matches on, compiled into small checks, and the targets it feeds.

See ``streamkit.routing.router`` for the semantics; this module only builds and validates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypedDict, TypeVar

from streamkit.exceptions import InvalidFilterPatternError
from streamkit.filters import FilterPattern
from streamkit.records import StreamRecord
from streamkit.routing.exceptions import InvalidRouteError
from streamkit.routing.image_pattern import ImagePattern
from streamkit.routing.predicates import Predicate, is_ttl_delete, key_prefix

__all__ = ["EVENT_NAMES", "MatchOptions", "Route", "RouteOptions", "Target"]

EVENT_NAMES: Final = ("INSERT", "MODIFY", "REMOVE")


class MatchOptions(TypedDict, total=False):
    """What a route matches on: every condition given must hold."""

    table: str | Iterable[str]
    events: str | Iterable[str]
    ttl_delete: bool
    key_prefix: Mapping[str, str]
    pattern: str | Mapping[str, Any]
    raw_pattern: str | Mapping[str, Any]
    when: Predicate


class RouteOptions(MatchOptions, total=False):
    """``MatchOptions`` plus the route's name (default: the handler's qualified name)."""

    name: str


@dataclass(frozen=True, slots=True)
class Target:
    """One handler a matching record is delivered to. ``name`` is unique in its router and
    ``namespace`` keys its idempotency markers."""

    name: str
    namespace: str
    handler: Callable[..., Any]
    takes_context: bool

    def __call__(self, record: StreamRecord, context: Any) -> Any:
        if self.takes_context:
            return self.handler(record, context)
        return self.handler(record)


class Route:
    """A compiled route: its conditions and its targets."""

    __slots__ = (
        "_checks",
        "applies",
        "events",
        "fan_out",
        "key_prefixes",
        "name",
        "pattern",
        "raw_pattern",
        "tables",
        "targets",
        "ttl_delete",
        "when",
    )

    def __init__(self, name: str, options: MatchOptions, *, fan_out: bool) -> None:
        self.name = name
        self.fan_out = fan_out
        self.targets: list[Target] = []
        self.tables = _names(options.get("table"), "table", name)
        events = _names(options.get("events"), "events", name)
        if events is not None:
            unknown = sorted(events - set(EVENT_NAMES))
            if unknown:
                raise InvalidRouteError(
                    f"unknown event name(s) {unknown}; expected INSERT, MODIFY or REMOVE",
                    route=name,
                )
        self.events = events
        ttl_delete = options.get("ttl_delete")
        if ttl_delete is not None and not isinstance(ttl_delete, bool):
            raise InvalidRouteError("ttl_delete must be True, False or None", route=name)
        if ttl_delete and events is not None and "REMOVE" not in events:
            raise InvalidRouteError("ttl_delete=True needs the REMOVE event", route=name)
        self.ttl_delete = ttl_delete
        self.key_prefixes = _key_prefixes(options.get("key_prefix"), name)
        self.raw_pattern = _compile(options.get("raw_pattern"), name, FilterPattern.parse)
        self.pattern = _compile(options.get("pattern"), name, ImagePattern)
        when = options.get("when")
        if when is not None and not isinstance(when, Predicate):
            raise InvalidRouteError(
                "when= takes a Predicate (changed(), became(), where(fn)...), "
                f"not {type(when).__name__}",
                route=name,
            )
        self.when = when
        self._checks = self._compile_checks()
        # ``applies(record, table)``: whether the record meets every condition except the
        # event name (the router's index has checked that already).
        self.applies: Callable[[StreamRecord, str | None], bool] = _all_of(self._checks)

    @property
    def needs_table(self) -> bool:
        return self.tables is not None

    def _option_predicates(self) -> list[Predicate]:
        """``ttl_delete`` and ``key_prefix`` as the predicates of the same names, so each
        check exists once (in ``streamkit.routing.predicates``)."""
        predicates: list[Predicate] = []
        if self.ttl_delete is not None:
            predicates.append(is_ttl_delete() if self.ttl_delete else ~is_ttl_delete())
        predicates.extend(key_prefix(attribute, prefix) for attribute, prefix in self.key_prefixes)
        return predicates

    def _compile_checks(self) -> tuple[Callable[[StreamRecord, str | None], bool], ...]:
        """One small function per condition given, cheap ones first: dispatch then runs
        only what the route asks for."""
        checks: list[Callable[[StreamRecord, str | None], bool]] = []
        tables = self.tables
        if tables is not None:
            checks.append(lambda record, table: table in tables)
        checks.extend(_on_record(predicate) for predicate in self._option_predicates())
        if self.raw_pattern is not None:
            raw_matches = self.raw_pattern.matches
            checks.append(lambda record, table: raw_matches(record.raw))
        if self.pattern is not None:
            pattern = self.pattern
            checks.append(lambda record, table: pattern(record))
        if self.when is not None:
            when = self.when
            checks.append(lambda record, table: when(record))
        return tuple(checks)

    def __repr__(self) -> str:
        parts = [f"{self.name!r}"]
        for label in ("tables", "events", "ttl_delete", "key_prefixes", "pattern", "when"):
            value = getattr(self, label)
            if value:
                parts.append(f"{label}={value!r}")
        if self.raw_pattern is not None:
            parts.append(f"raw_pattern={self.raw_pattern.source}")
        parts.append(f"targets={[t.name for t in self.targets]}")
        return f"Route({', '.join(parts)})"


def _on_record(predicate: Predicate) -> Callable[[StreamRecord, str | None], bool]:
    def check(record: StreamRecord, table: str | None) -> bool:
        return predicate(record)

    return check


def _always(record: StreamRecord, table: str | None) -> bool:
    return True


def _all_of(
    checks: Sequence[Callable[[StreamRecord, str | None], bool]],
) -> Callable[[StreamRecord, str | None], bool]:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]

    def every(record: StreamRecord, table: str | None) -> bool:
        for check in checks:  # noqa: SIM110 - a loop beats all() over a generator here
            if not check(record, table):
                return False
        return True

    return every


def _names(value: str | Iterable[str] | None, what: str, route: str) -> frozenset[str] | None:
    if value is None:
        return None
    values = [value] if isinstance(value, str) else list(value)
    if not values or not all(isinstance(v, str) and v for v in values):
        raise InvalidRouteError(f"{what} must be a non-empty string or list of them", route=route)
    return frozenset(values)


def _key_prefixes(value: Mapping[str, str] | None, route: str) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping) or not value:
        raise InvalidRouteError("key_prefix takes {key attribute: prefix}", route=route)
    for attribute, prefix in value.items():
        if not isinstance(attribute, str) or not attribute:
            raise InvalidRouteError("key_prefix attribute names must be strings", route=route)
        if not isinstance(prefix, str) or not prefix:
            raise InvalidRouteError(
                f"key_prefix[{attribute!r}] must be a non-empty string", route=route
            )
    return tuple(value.items())


_P = TypeVar("_P")


def _compile(
    pattern: str | Mapping[str, Any] | None,
    route: str,
    parse: Callable[[str | Mapping[str, Any]], _P],
) -> _P | None:
    if pattern is None:
        return None
    try:
        return parse(pattern)
    except InvalidFilterPatternError as exc:
        raise InvalidRouteError(
            f"invalid pattern {exc.pattern or pattern!r}: {exc.detail}", route=route
        ) from exc
