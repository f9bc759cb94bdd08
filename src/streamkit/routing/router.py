"""The Router: declarative dispatch of stream records to handlers, and fan-out.

::

    router = Router("orders", idempotency=DynamoDBIdempotencyStore("idempotency"))

    @router.route(table="orders", when=became("status", "PAID"))
    def send_receipt(record): ...

    changed = router.fan_out("order-changed", events=["INSERT", "MODIFY"])

    @changed.target("email")
    def email(record): ...

    @changed.target("analytics")
    def analytics(record): ...

    def handler(event, context):
        return router.handle(event, context)      # the ReportBatchItemFailures response

Matching. A route applies to a record when every condition it names holds: ``table`` (from
the record's eventSourceARN), ``events`` (INSERT/MODIFY/REMOVE), ``ttl_delete`` (True: only
deletes by DynamoDB's TTL process; False: never those), ``key_prefix`` ({key attribute:
prefix}, for single-table designs), ``raw_pattern`` (a FilterCriteria pattern over the record
as Lambda delivers it), ``pattern`` (the same engine over the deserialized images, see
``image_pattern``) and ``when`` (a predicate, see ``predicates``). Everything is validated when
the route is registered: an invalid pattern or predicate fails at import time.

With ``match="all"`` (default) every matching route runs, in registration order; with
``match="first"`` only the first, like an if/elif chain. A record that matches no route is
counted (``stats``) and, with ``on_unmatched="fail"``, fails instead of being ignored.

Targets and failures. Each route has targets: a plain route has one (its handler), a fan-out
several. Every target of a record runs, in registration order, even after another failed, so
one failure hides no other result (``RoutedBatch.outcomes``, per-target ``stats``). The record
fails (``TargetsFailedError``, reported in ``batchItemFailures``) when any target failed.

Idempotency per target. With ``idempotency=store``, each target has its own namespace,
``"<router>.<target>"``, and its own completion marker per record: on a redelivery, the
targets that completed are skipped and only the failed ones run again. ``handle`` reads the
markers of a whole batch at once (one read per 100 records per target, one write per 25
completions per target); markers are written even for a record that failed, so its completed
targets count as done. Target side effects are then effectively once, in the sense of
``streamkit.idempotency``: at-least-once in the window between a side effect and the marker
write (a crash, a timeout). A fan-out requires a store; without one every target of a failed
record runs again on redelivery.

Ordering: ``ordering="fail_fast"`` (default) or ``"per_key"``, exactly as ``process_batch``.

``Router`` is also a per-record handler, so ``process_batch(event, router)`` works; with a
store it then reads and writes markers per record instead of per batch (use ``handle``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, TypeVar, Unpack, overload

from streamkit.batch import BatchResponse, BatchResult, IdempotencyProvider, Ordering, run_batch
from streamkit.records import NumberMode, StreamRecord
from streamkit.routing._callables import check_handler, check_name, default_name, takes_context
from streamkit.routing._dispatch import Invocation
from streamkit.routing.exceptions import InvalidRouteError
from streamkit.routing.predicates import event_name_of
from streamkit.routing.results import (
    CumulativeStats,
    RoutedBatch,
    counted_as_already_completed,
)
from streamkit.routing.routes import EVENT_NAMES, MatchOptions, Route, RouteOptions, Target

if TYPE_CHECKING:
    from streamkit.observability import RecordWrapper

__all__ = ["FanOut", "MatchOptions", "Route", "RouteOptions", "Router", "Target"]

F = TypeVar("F", bound=Callable[..., Any])
Match = Literal["all", "first"]
Unmatched = Literal["ignore", "fail"]


class FanOut:
    """The targets of one fan-out route (``Router.fan_out``): every matching record goes to
    all of them, in registration order, each with its own idempotency namespace."""

    def __init__(self, router: Router, route: Route) -> None:
        self._router = router
        self.route = route

    @property
    def name(self) -> str:
        return self.route.name

    def target(self, name: str | None = None) -> Callable[[F], F]:
        """Decorator: ``@fanout.target("email")``; the function is returned unchanged."""

        def register(handler: F) -> F:
            self.add_target(handler, name=name)
            return handler

        return register

    def add_target(self, handler: Callable[..., Any], *, name: str | None = None) -> Target:
        check_handler(handler, f"fan-out {self.name!r} target")
        short = check_name(name or default_name(handler), "target")
        return self._router._add_target(self.route, f"{self.name}.{short}", handler)


class Router:
    """Routes records to handlers; see the module docstring."""

    def __init__(
        self,
        name: str = "router",
        *,
        match: Match = "all",
        on_unmatched: Unmatched = "ignore",
        idempotency: IdempotencyProvider | None = None,
        ordering: Ordering = "fail_fast",
        numbers: NumberMode = "decimal",
    ) -> None:
        self.name = check_name(name, "router")
        if match not in ("all", "first"):
            raise InvalidRouteError(f"match must be 'all' or 'first', not {match!r}")
        if on_unmatched not in ("ignore", "fail"):
            raise InvalidRouteError(
                f"on_unmatched must be 'ignore' or 'fail', not {on_unmatched!r}"
            )
        if ordering not in ("fail_fast", "per_key"):
            raise InvalidRouteError(f"ordering must be 'fail_fast' or 'per_key', not {ordering!r}")
        if numbers not in ("decimal", "native"):
            raise InvalidRouteError(f"numbers must be 'decimal' or 'native', not {numbers!r}")
        self.match: Match = match
        self.on_unmatched: Unmatched = on_unmatched
        self.idempotency = idempotency
        self.ordering: Ordering = ordering
        self.numbers: NumberMode = numbers
        self.stats = CumulativeStats()
        self._routes: list[Route] = []
        self._target_names: set[str] = set()
        # event name -> (candidate routes, whether any of them needs the table name)
        self._index: dict[str, tuple[tuple[Route, ...], bool]] | None = None
        self._tables: dict[str | None, str | None] = {}

    # --- registration -----------------------------------------------------------------------

    @overload
    def route(self, handler: F, /, **options: Unpack[RouteOptions]) -> F: ...

    @overload
    def route(
        self, handler: None = None, /, **options: Unpack[RouteOptions]
    ) -> Callable[[F], F]: ...

    def route(
        self, handler: F | None = None, /, **options: Unpack[RouteOptions]
    ) -> F | Callable[[F], F]:
        """Decorator registering a handler: ``@router.route(table="orders", events="INSERT")``.
        The function is returned unchanged (still callable and testable on its own)."""

        def register(function: F) -> F:
            self.add_route(function, **options)
            return function

        return register if handler is None else register(handler)

    def add_route(self, handler: Callable[..., Any], **options: Unpack[RouteOptions]) -> Route:
        """Register ``handler`` (``(record)`` or ``(record, context)``) for the records the
        options match; the call form of ``route``."""
        check_handler(handler, "route handler")
        name = check_name(options.get("name") or default_name(handler), "route")
        route = self._new_route(name, options, fan_out=False)
        self._add_target(route, name, handler)
        return route

    def fan_out(self, name: str, **options: Unpack[MatchOptions]) -> FanOut:
        """A route delivering each matching record to several targets (``.target(name)``)."""
        check_name(name, "fan-out")
        if self.idempotency is None:
            raise InvalidRouteError(
                "a fan-out needs Router(idempotency=store): without per-target completion "
                "markers a retry would run every target again, not only the failed ones",
                route=name,
            )
        return FanOut(self, self._new_route(name, options, fan_out=True))

    def _new_route(self, name: str, options: MatchOptions, *, fan_out: bool) -> Route:
        if any(route.name == name for route in self._routes) or name in self._target_names:
            raise InvalidRouteError("a route or target with this name already exists", route=name)
        route = Route(name, options, fan_out=fan_out)
        self._routes.append(route)
        self._index = None
        return route

    def _add_target(self, route: Route, name: str, handler: Callable[..., Any]) -> Target:
        if name in self._target_names or any(
            r.name == name and r is not route for r in self._routes
        ):
            raise InvalidRouteError(f"target name {name!r} is already used", route=route.name)
        target = Target(name, f"{self.name}.{name}", handler, takes_context(handler))
        route.targets.append(target)
        self._target_names.add(name)
        return target

    @property
    def routes(self) -> tuple[Route, ...]:
        return tuple(self._routes)

    def validate(self) -> None:
        """Raise ``InvalidRouteError`` if the router cannot run (a fan-out without targets).
        Runs before the first dispatch; call it at the end of the module to fail at import."""
        for route in self._routes:
            if not route.targets:
                raise InvalidRouteError("fan-out has no targets", route=route.name)

    # --- matching ---------------------------------------------------------------------------

    def _compiled(self) -> dict[str, tuple[tuple[Route, ...], bool]]:
        index = self._index
        if index is None:
            self.validate()
            index = {}
            for name in EVENT_NAMES:
                routes = tuple(r for r in self._routes if r.events is None or name in r.events)
                index[name] = (routes, any(r.needs_table for r in routes))
            self._index = index
        return index

    def matching_routes(self, record: StreamRecord) -> list[Route]:
        """The routes that apply to ``record``, in registration order (only the first with
        ``match="first"``). Raises what reading the record raises (a malformed field, an
        image the stream view type left out)."""
        candidates, needs_table = (self._index or self._compiled())[event_name_of(record)]
        if not candidates:
            return []
        table = self._table_of(record) if needs_table else None
        if self.match == "first":
            for route in candidates:
                if route.applies(record, table):
                    return [route]
            return []
        return [route for route in candidates if route.applies(record, table)]

    def _table_of(self, record: StreamRecord) -> str | None:
        arn = record.event_source_arn
        try:
            return self._tables[arn]
        except KeyError:
            table = record.table_name
            self._tables[arn] = table
            return table

    # --- running ----------------------------------------------------------------------------

    def handle(self, event: Any, context: Any | None = None) -> BatchResponse:
        """The Lambda handler body: route every record, return the partial batch response."""
        result, invocation = self._run(event, context)
        self.stats.add(invocation.stats())
        return result.response()

    def run(self, event: Any, context: Any | None = None) -> RoutedBatch:
        """``handle`` returning everything: batch accounting, per-record outcomes, counters."""
        result, invocation = self._run(event, context)
        stats = invocation.stats()
        self.stats.add(stats)
        return RoutedBatch(result, invocation.outcomes(), stats)

    def run_wrapped(self, event: Any, context: Any | None, wrap: RecordWrapper) -> BatchResult:
        """``handle`` for an observer (``streamkit.observability.ObservedConsumer``): each
        record's dispatch runs through ``wrap``. Returns the batch accounting, in which a
        record whose every target had already completed counts as already completed (for
        ``handle`` and ``run`` it is a success: ``response()`` is the same)."""
        result, invocation = self._run(event, context, wrap)
        self.stats.add(invocation.stats())
        return counted_as_already_completed(result, invocation.already_completed())

    def _run(
        self, event: Any, context: Any | None, wrap: RecordWrapper | None = None
    ) -> tuple[BatchResult, Invocation]:
        self._compiled()  # an invalid router fails the invocation loudly, before any record
        invocation = Invocation(self, context)
        # dispatch takes the record only: the context is the invocation's.
        dispatch = invocation.dispatch if wrap is None else wrap(invocation.dispatch)
        result = run_batch(
            event,
            dispatch,
            ordering=self.ordering,
            context=context,
            idempotency=invocation if self.idempotency is not None else None,
            idempotency_namespace=self.name,
            numbers=self.numbers,
        )
        return result, invocation

    def __call__(self, record: StreamRecord, context: Any | None = None) -> dict[str, Any]:
        """Route one record (a handler for ``process_batch``); returns ``{target: result}``.
        Raises ``TargetsFailedError`` or ``UnmatchedRecordError`` when the record fails."""
        self._compiled()
        invocation = Invocation(self, context)
        try:
            if self.idempotency is not None:
                invocation.prepare([record])
            return invocation.dispatch(record)
        finally:
            if self.idempotency is not None:
                # Logged by flush; the side effects happened, so as in process_batch the
                # record does not fail for it.
                with contextlib.suppress(Exception):
                    invocation.flush()
            self.stats.add(invocation.stats())

    def __repr__(self) -> str:
        return f"Router({self.name!r}, routes={[r.name for r in self._routes]})"
