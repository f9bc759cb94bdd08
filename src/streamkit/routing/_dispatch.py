"""One invocation of a Router: per-target idempotency sessions, dispatch, and the outcome log."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from streamkit.batch import IdempotencySession
from streamkit.records import StreamRecord
from streamkit.routing.exceptions import TargetsFailedError, UnmatchedRecordError
from streamkit.routing.results import DispatchStats, RecordOutcome, TargetOutcome
from streamkit.routing.routes import Route, Target

if TYPE_CHECKING:
    from streamkit.routing.router import Router

__all__ = ["Invocation"]

logger = logging.getLogger("streamkit.routing")


class Invocation:
    """One batch: the routes each record matched, one idempotency session per target, the
    outcomes and counters. It is also the ``IdempotencyProvider`` handed to ``run_batch``,
    which calls ``open_batch`` once with every record before any runs: the hook that lets
    each target read its markers for the whole batch at once."""

    def __init__(self, router: Router, context: Any | None) -> None:
        self.router = router
        self.context = context
        self._log: list[
            tuple[
                str,
                Sequence[Route],
                dict[str, Any],
                dict[str, Exception] | None,
                list[str] | None,
            ]
        ] = []
        self._matches: dict[int, list[Route] | Exception] = {}
        self._sessions: dict[str, IdempotencySession | Exception] = {}
        self._records: list[StreamRecord] = []  # keeps ids in _matches from being reused

    # --- IdempotencyProvider / IdempotencySession ---------------------------------------------

    def open_batch(
        self, records: Sequence[StreamRecord], *, namespace: str, context: Any | None
    ) -> IdempotencySession:
        self.prepare(records)
        return self

    def is_completed(self, record: StreamRecord) -> bool:
        return False  # decided per target in dispatch

    def record_success(self, record: StreamRecord, result: Any) -> None:
        pass  # each target's marker is buffered as soon as that target succeeds

    def flush(self) -> None:
        first_error: Exception | None = None
        for name, session in self._sessions.items():
            if isinstance(session, Exception):
                continue
            try:
                session.flush()
            except Exception as exc:
                logger.error(
                    "router %s: writing completion markers of target %s failed (%s: %s); a "
                    "redelivery may run it again",
                    self.router.name,
                    name,
                    type(exc).__name__,
                    exc,
                )
                first_error = first_error or exc
        if first_error is not None:
            raise first_error

    def prepare(self, records: Sequence[StreamRecord]) -> None:
        """Match every record, then open each target's session with the records it gets."""
        store = self.router.idempotency
        assert store is not None
        self._records.extend(records)
        per_target: dict[str, tuple[Target, list[StreamRecord]]] = {}
        for record in records:
            try:
                routes = self.router.matching_routes(record)
            except Exception as exc:  # that record fails when it is dispatched
                self._matches[id(record)] = exc
                continue
            self._matches[id(record)] = routes
            for route in routes:
                for target in route.targets:
                    per_target.setdefault(target.name, (target, []))[1].append(record)
        for name, (target, target_records) in per_target.items():
            try:
                self._sessions[name] = store.open_batch(
                    target_records, namespace=target.namespace, context=self.context
                )
            except Exception as exc:  # the target fails for these records: never unprotected
                logger.error(
                    "router %s: idempotency store unavailable for target %s (%s: %s)",
                    self.router.name,
                    name,
                    type(exc).__name__,
                    exc,
                )
                self._sessions[name] = exc

    # --- dispatch ---------------------------------------------------------------------------

    def dispatch(self, record: StreamRecord) -> dict[str, Any]:
        """Run every target of every route ``record`` matches; ``{target: result}``.

        What happened is logged compactly, ``(sequence number, routes, results, failures,
        already completed)``; ``outcomes()`` and the counters are built from the log once
        per invocation, off the per-record path."""
        matched = self._matches.pop(id(record), None) if self._matches else None
        if matched is None:
            routes = self.router.matching_routes(record)
        elif isinstance(matched, Exception):
            raise matched
        else:
            routes = matched
        results: dict[str, Any] = {}
        if not routes:
            self._log.append((record.item_identifier, (), results, None, None))
            if self.router.on_unmatched == "fail":
                raise UnmatchedRecordError(
                    self.router.name, record.item_identifier, record.raw.get("eventName")
                )
            return results
        context = self.context
        tracked = self.router.idempotency is not None
        failures: dict[str, Exception] | None = None
        completed: list[str] | None = None
        for route in routes:
            for target in route.targets:
                session = None
                try:
                    if tracked:
                        session = self._session_for(target, record)
                        if session.is_completed(record):
                            if completed is None:
                                completed = []
                            completed.append(target.name)
                            continue
                    if target.takes_context:
                        result = target.handler(record, context)
                    else:
                        result = target.handler(record)
                except Exception as exc:
                    if failures is None:
                        failures = {}
                    failures[target.name] = exc
                    continue
                results[target.name] = result
                if session is not None:
                    self._record_success(session, target, record, result)
        self._log.append((record.item_identifier, routes, results, failures, completed))
        if failures:
            raise TargetsFailedError(
                record.item_identifier, failures, list(results), completed or ()
            )
        return results

    def stats(self) -> DispatchStats:
        """Counters from the log (no outcome objects built)."""
        stats = DispatchStats(records=len(self._log))
        counters = stats.targets
        for _, routes, results, failures, completed in self._log:
            if not routes:
                stats.unmatched += 1
                continue
            for name in results:
                target = counters.get(name) or stats.target(name)
                target.matched += 1
                target.succeeded += 1
            for name in failures or ():
                target = counters.get(name) or stats.target(name)
                target.matched += 1
                target.failed += 1
            for name in completed or ():
                target = counters.get(name) or stats.target(name)
                target.matched += 1
                target.already_completed += 1
        return stats

    def already_completed(self) -> int:
        """Records for which nothing ran: every target they matched had completed in an
        earlier delivery."""
        return sum(
            1
            for _, routes, results, failures, completed in self._log
            if routes and completed and not results and not failures
        )

    def outcomes(self) -> list[RecordOutcome]:
        """Every dispatched record's outcome, targets in the order they ran."""
        built = []
        for sequence_number, routes, results, failures, completed in self._log:
            outcome = RecordOutcome(sequence_number, unmatched=not routes)
            for route in routes:
                outcome.routes.append(route.name)
                for target in route.targets:
                    name = target.name
                    if name in results:
                        outcome.targets[name] = TargetOutcome("succeeded", results[name])
                    elif failures and name in failures:
                        outcome.targets[name] = TargetOutcome("failed", error=failures[name])
                    elif completed and name in completed:
                        outcome.targets[name] = TargetOutcome("already_completed")
            built.append(outcome)
        return built

    def _session_for(self, target: Target, record: StreamRecord) -> IdempotencySession:
        store = self.router.idempotency
        assert store is not None
        session = self._sessions.get(target.name)
        if session is None:  # not prepared (the record's match was computed late): open now
            session = store.open_batch([record], namespace=target.namespace, context=self.context)
            self._sessions[target.name] = session
        if isinstance(session, Exception):
            raise session
        return session

    def _record_success(
        self, session: IdempotencySession, target: Target, record: StreamRecord, result: Any
    ) -> None:
        try:
            session.record_success(record, result)
        except Exception as exc:
            # The side effect happened; failing the record would certainly repeat it.
            logger.error(
                "router %s: could not record completion of target %s for %s (%s: %s); a "
                "redelivery may run it again",
                self.router.name,
                target.name,
                record.item_identifier,
                type(exc).__name__,
                exc,
            )
