"""Attribute predicates: small objects that say whether a route applies to a record.

They compose with ``&``, ``|`` and ``~`` and are validated when built, so a mistake fails at
import time::

    changed("status") & ~became("status", "CANCELLED")
    transition("status", "PLACED", "PAID") | became("priority", True)
    key_prefix("pk", "ORDER#")

Values are compared the way DynamoDB compares them: numbers by value (``5 == Decimal("5.0")``),
but never across types (``True`` is not ``1``, ``"5"`` is not ``5``). An attribute absent
from an image is ``MISSING`` (a NULL attribute is ``None``): ``transition("status", MISSING,
"PLACED")`` matches the INSERT of a placed order, ``transition("coupon", to=MISSING)`` the
removal of a coupon.

Images: INSERT records have no old image and REMOVE records no new one, by definition. A
predicate whose answer needs an image the record lacks for any other reason (the stream's
view type is not NEW_AND_OLD_IMAGES) raises ``ImageNotAvailableError``: the record fails
loudly instead of silently matching nothing. Comparisons of old and new need
NEW_AND_OLD_IMAGES.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from streamkit.exceptions import ImageNotAvailableError
from streamkit.records import MISSING, StreamRecord
from streamkit.routing.exceptions import InvalidRouteError

__all__ = [
    "ANY",
    "MISSING",
    "Predicate",
    "became",
    "changed",
    "is_ttl_delete",
    "key_prefix",
    "same_value",
    "transition",
    "where",
]


class _Any:
    """Placeholder for "any value" in ``transition``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ANY"


ANY: Final = _Any()

_SCALARS = (str, int, Decimal, bool, bytes, type(None))


class Predicate:
    """Base of every predicate: ``predicate(record) -> bool``; combine with ``&``, ``|``, ``~``."""

    __slots__ = ()

    def __call__(self, record: StreamRecord) -> bool:
        raise NotImplementedError

    def __and__(self, other: object) -> Predicate:
        if not isinstance(other, Predicate):
            return NotImplemented
        return _AllOf(_flatten(_AllOf, self, other))

    def __or__(self, other: object) -> Predicate:
        if not isinstance(other, Predicate):
            return NotImplemented
        return _AnyOf(_flatten(_AnyOf, self, other))

    def __invert__(self) -> Predicate:
        return _Not(self)

    def __repr__(self) -> str:
        return self.describe()

    def describe(self) -> str:
        return type(self).__name__


def _flatten(kind: type[_AllOf | _AnyOf], *parts: Predicate) -> tuple[Predicate, ...]:
    flat: list[Predicate] = []
    for part in parts:
        flat.extend(part.parts if isinstance(part, kind) else (part,))
    return tuple(flat)


class _AllOf(Predicate):
    __slots__ = ("parts",)

    def __init__(self, parts: tuple[Predicate, ...]) -> None:
        self.parts = parts

    def __call__(self, record: StreamRecord) -> bool:
        return all(part(record) for part in self.parts)

    def describe(self) -> str:
        return "(" + " & ".join(p.describe() for p in self.parts) + ")"


class _AnyOf(Predicate):
    __slots__ = ("parts",)

    def __init__(self, parts: tuple[Predicate, ...]) -> None:
        self.parts = parts

    def __call__(self, record: StreamRecord) -> bool:
        return any(part(record) for part in self.parts)

    def describe(self) -> str:
        return "(" + " | ".join(p.describe() for p in self.parts) + ")"


class _Not(Predicate):
    __slots__ = ("inner",)

    def __init__(self, inner: Predicate) -> None:
        self.inner = inner

    def __call__(self, record: StreamRecord) -> bool:
        return not self.inner(record)

    def describe(self) -> str:
        return f"~{self.inner.describe()}"


# --- reading one attribute of either image ------------------------------------------------------

_EVENT_NAMES: Final = frozenset({"INSERT", "MODIFY", "REMOVE"})


def event_name_of(record: StreamRecord) -> str:
    """``record.event_name``, read straight from the raw record when it is valid (the common
    case: routing reads it several times per record); the property decides, and raises
    precisely, otherwise."""
    try:
        name = record.raw["eventName"]
    except Exception:
        name = None
    return name if name in _EVENT_NAMES else record.event_name


def old_value(record: StreamRecord, attribute: str, event_name: str | None = None) -> Any:
    """The attribute before the change: MISSING for an INSERT or an absent attribute."""
    if (event_name or event_name_of(record)) == "INSERT":
        return MISSING
    image = record.old_image
    if image is None:
        raise image_not_available(record, "OldImage")
    return image.get(attribute, MISSING)


def new_value(record: StreamRecord, attribute: str, event_name: str | None = None) -> Any:
    """The attribute after the change: MISSING for a REMOVE or an absent attribute."""
    if (event_name or event_name_of(record)) == "REMOVE":
        return MISSING
    image = record.new_image
    if image is None:
        raise image_not_available(record, "NewImage")
    return image.get(attribute, MISSING)


def image_not_available(record: StreamRecord, image: str) -> ImageNotAvailableError:
    body = record.raw.get("dynamodb") if isinstance(record.raw, dict) else None
    view = body.get("StreamViewType") if isinstance(body, dict) else None
    return ImageNotAvailableError(image, view, record.sequence_number)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def same_value(a: Any, b: Any) -> bool:
    """Equality as DynamoDB sees it: numbers by value, no cross-type equality (``True`` is
    not ``1``), maps and lists element by element, sets as sets."""
    if a is b:
        return True
    kind = type(a)
    if kind is not type(b):
        return _is_number(a) and _is_number(b) and a == b
    if kind is dict:
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if kind is list:
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def _matches_expected(expected: Any, value: Any) -> bool:
    if expected is MISSING:
        return value is MISSING
    return value is not MISSING and same_value(expected, value)


# --- the predicates -----------------------------------------------------------------------------


def _check_attribute(attribute: object, what: str) -> str:
    if not isinstance(attribute, str) or not attribute:
        raise InvalidRouteError(f"{what}: the attribute name must be a non-empty string")
    return attribute


def _check_value(value: object, what: str) -> Any:
    if value is MISSING:
        return value
    if isinstance(value, float):
        raise InvalidRouteError(
            f"{what}: float {value!r} does not compare exactly with DynamoDB numbers; "
            "use int or Decimal"
        )
    if not isinstance(value, _SCALARS):
        raise InvalidRouteError(
            f"{what}: compare with a str, int, Decimal, bool, bytes or None value, "
            f"not {type(value).__name__}"
        )
    return value


class _Changed(Predicate):
    __slots__ = ("attribute",)

    def __init__(self, attribute: str) -> None:
        self.attribute = attribute

    def __call__(self, record: StreamRecord) -> bool:
        name = event_name_of(record)
        return not _matches_expected(
            old_value(record, self.attribute, name), new_value(record, self.attribute, name)
        )

    def describe(self) -> str:
        return f"changed({self.attribute!r})"


def changed(attribute: str) -> Predicate:
    """The attribute differs between the old and the new image (added and removed count; an
    INSERT changes every attribute it has, a REMOVE every attribute it had)."""
    return _Changed(_check_attribute(attribute, "changed()"))


class _Transition(Predicate):
    __slots__ = ("attribute", "from_", "to")

    def __init__(self, attribute: str, from_: Any, to: Any) -> None:
        self.attribute = attribute
        self.from_ = from_
        self.to = to

    def __call__(self, record: StreamRecord) -> bool:
        # The new side first: it is usually the selective one, and it does not need the old
        # image, so a NEW_IMAGE stream only fails on records whose answer needs OldImage.
        name = event_name_of(record)
        after = new_value(record, self.attribute, name)
        if self.to is not ANY and not _matches_expected(self.to, after):
            return False
        before = old_value(record, self.attribute, name)
        if self.from_ is not ANY and not _matches_expected(self.from_, before):
            return False
        return not _matches_expected(before, after)

    def describe(self) -> str:
        return f"transition({self.attribute!r}, {self.from_!r}, {self.to!r})"


def transition(attribute: str, from_: Any = ANY, to: Any = ANY) -> Predicate:
    """The attribute changed from ``from_`` to ``to`` (``ANY`` leaves a side open; ``MISSING``
    means absent): ``transition("status", "PLACED", "PAID")``."""
    what = f"transition({attribute!r}, {from_!r}, {to!r})"
    _check_attribute(attribute, what)
    if from_ is not ANY:
        _check_value(from_, what)
    if to is not ANY:
        _check_value(to, what)
    if from_ is not ANY and to is not ANY and _matches_expected(from_, to):
        raise InvalidRouteError(f"{what}: a transition to the same value never happens")
    return _Transition(attribute, from_, to)


def became(attribute: str, value: Any) -> Predicate:
    """The attribute now equals ``value`` and did not before (an INSERT with that value
    counts): ``became("status", "PAID")``."""
    what = f"became({attribute!r}, {value!r})"
    _check_attribute(attribute, what)
    if value is MISSING:
        raise InvalidRouteError(f"{what}: use transition(attribute, to=MISSING) for a removal")
    _check_value(value, what)
    return _Became(attribute, value)


class _Became(_Transition):
    __slots__ = ()

    def __init__(self, attribute: str, value: Any) -> None:
        super().__init__(attribute, ANY, value)

    def describe(self) -> str:
        return f"became({self.attribute!r}, {self.to!r})"


class _KeyPrefix(Predicate):
    __slots__ = ("attribute", "prefix")

    def __init__(self, attribute: str, prefix: str) -> None:
        self.attribute = attribute
        self.prefix = prefix

    def __call__(self, record: StreamRecord) -> bool:
        value = record.keys.get(self.attribute)
        return isinstance(value, str) and value.startswith(self.prefix)

    def describe(self) -> str:
        return f"key_prefix({self.attribute!r}, {self.prefix!r})"


def key_prefix(attribute: str, prefix: str) -> Predicate:
    """The key attribute is a string starting with ``prefix``, for single-table designs:
    ``key_prefix("pk", "ORDER#")``."""
    what = f"key_prefix({attribute!r}, {prefix!r})"
    _check_attribute(attribute, what)
    if not isinstance(prefix, str) or not prefix:
        raise InvalidRouteError(f"{what}: the prefix must be a non-empty string")
    return _KeyPrefix(attribute, prefix)


class _TtlDelete(Predicate):
    __slots__ = ()

    def __call__(self, record: StreamRecord) -> bool:
        return record.is_ttl_delete

    def describe(self) -> str:
        return "is_ttl_delete()"


def is_ttl_delete() -> Predicate:
    """The record is a delete made by DynamoDB's TTL process."""
    return _TtlDelete()


class _Where(Predicate):
    __slots__ = ("function", "name")

    def __init__(self, function: Callable[[StreamRecord], bool], name: str) -> None:
        self.function = function
        self.name = name

    def __call__(self, record: StreamRecord) -> bool:
        return bool(self.function(record))

    def describe(self) -> str:
        return f"where({self.name})"


def where(function: Callable[[StreamRecord], bool], name: str | None = None) -> Predicate:
    """Any ``function(record) -> bool`` as a predicate, to compose with the others."""
    if not callable(function):
        raise InvalidRouteError(f"where(): expected a callable, got {type(function).__name__}")
    if inspect.iscoroutinefunction(function):
        raise InvalidRouteError("where(): predicates must be synchronous")
    label = name or getattr(function, "__qualname__", None) or repr(function)
    return _Where(function, label)
