"""Pipelines as state machines on an item attribute, driven by the item's own stream.

::

    wf = Workflow("order-pipeline", table="orders")          # status + version attributes

    @wf.stage("PLACED", next="VALIDATED", on_error="REJECTED")
    def validate(record): ...                                  # return None: the one next state

    @wf.stage("VALIDATED", next="PAID", on_error="PAYMENT_FAILED")
    def take_payment(record, ctx):
        charge = payments.charge(record.new_image["total"], idempotency_key=ctx.idempotency_key)
        return Next("PAID", attributes={"payment_id": charge.id})

    @wf.compensation("CANCEL_REQUESTED", next="CANCELLED")
    def cancel(record): ...                                    # refund if it was paid

    wf.terminal("SHIPPED", "REJECTED", "PAYMENT_FAILED", "CANCELLED")

    def handler(event, context):
        return wf.handle(event, context)

How a stage runs. A record whose new image *entered* a state (an INSERT with that state, or a
MODIFY whose old image had another) runs that state's stage. The stage returns the next state
(or ``Next(state, attributes={...})``), and the workflow writes it back with one conditional
UpdateItem::

    SET status = :next, version = :v + 1, <attributes>  [REMOVE workflow_error]
    CONDITION status = :state AND version = :v      (attribute_not_exists(version) for none)

where ``:state`` and ``:v`` come from the triggering record's NewImage. That write is the next
stream record, which runs the next stage. The condition is the fence: a stale or duplicated
delivery (a redelivered batch, a record of an item that has moved on) finds another state or
version, its write fails the condition, and it is counted ``stale`` and treated as success.
So an item never moves backwards and never skips a stage, whatever the delivery order or
count. With ``precheck=True`` (default) a consistent GetItem (1 read unit) checks the state
and version *before* the stage runs, so a redelivery of an already-advanced stage does not
even repeat its side effects.

Failures. A stage that raises moves the item, with the same fence, to its ``on_error`` state
(the workflow's ``failure_state``, ``FAILED``, by default) and records what happened in
``workflow_error``: ``{stage, type, message, at, version}``. That is a defined, inspectable
state; a stage registered for it (``compensation``) runs next, e.g. a refund, and keeps
``workflow_error`` for inspection (any other successful stage clears it). Raising
``RetryStage`` (or an exception listed in ``retry_on``) instead leaves the item untouched and
fails the record, so Lambda redelivers it and the stage runs again (transient errors). A
redrive is a write that puts the item back into a stage's state.

Guarantees. The state write is exactly once per (state, version). Stage side effects are at
least once in the window between a side effect and its state write (a crash, a timeout, a
lost race with a concurrent write): pass ``ctx.idempotency_key`` (stable for one stage run of
one item version) to external services. Needs NEW_AND_OLD_IMAGES (to tell entering a state
from another change); records of different items are independent, so ``handle`` runs with
``ordering="per_key"`` by default.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from streamkit._aws import DefaultClient
from streamkit.batch import BatchResponse, BatchResult, Ordering, process_batch, run_batch
from streamkit.codec import serialize_value
from streamkit.records import StreamRecord
from streamkit.routing._callables import check_handler, is_async, takes_context
from streamkit.routing._workflow_table import StateTable
from streamkit.routing.exceptions import InvalidTransitionError, InvalidWorkflowError, RetryStage
from streamkit.routing.predicates import image_not_available
from streamkit.routing.results import counted_as_already_completed

if TYPE_CHECKING:
    from streamkit.observability import RecordWrapper

__all__ = ["Next", "Stage", "StageContext", "StageOutcome", "Workflow"]

logger = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])
OutcomeStatus = Literal["advanced", "failed", "stale", "terminal", "ignored", "unknown_state"]
_MESSAGE_LIMIT: Final = 1000


@dataclass(frozen=True, slots=True)
class Next:
    """A stage's answer: the next state, plus attributes to write in the same update."""

    state: str
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StageContext:
    """What a stage may want besides the record (a stage taking two arguments gets it)."""

    workflow: str
    state: str
    version: int | None
    keys: dict[str, Any]
    idempotency_key: str
    lambda_context: Any


@dataclass(frozen=True, slots=True)
class StageOutcome:
    """What one record did to its item. ``status``: ``advanced`` (moved to ``next_state``),
    ``failed`` (moved to its failure state, ``error`` says why), ``stale`` (the item had moved
    on: nothing written), ``terminal`` / ``ignored`` / ``unknown_state`` (no stage to run)."""

    status: OutcomeStatus
    state: str | None = None
    next_state: str | None = None
    version: int | None = None
    error: BaseException | None = None


@dataclass(frozen=True, slots=True)
class Stage:
    state: str
    next: tuple[str, ...]
    on_error: str
    function: Callable[..., Any]
    takes_context: bool
    compensation: bool
    retry_on: tuple[type[BaseException], ...]


class Workflow:
    """A state machine over ``state_attribute`` of the items of ``table``; see the module."""

    def __init__(
        self,
        name: str,
        *,
        table: str | None = None,
        state_attribute: str = "status",
        version_attribute: str = "version",
        error_attribute: str = "workflow_error",
        failure_state: str = "FAILED",
        retry_on: Iterable[type[BaseException]] = (),
        precheck: bool = True,
        ordering: Ordering = "per_key",
        client: Any | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        stamp_attribute: str | None = None,
    ) -> None:
        self.name = _state_name(name, name, "workflow name")
        attributes = (state_attribute, version_attribute, error_attribute)
        if not all(isinstance(a, str) and a for a in attributes) or len(set(attributes)) != 3:
            raise InvalidWorkflowError(
                name, "state, version and error attributes must be three distinct names"
            )
        if stamp_attribute is not None and (
            not isinstance(stamp_attribute, str)
            or not stamp_attribute
            or stamp_attribute in attributes
        ):
            raise InvalidWorkflowError(
                name, "stamp_attribute must be a name other than the state, version and error ones"
            )
        # Every state write also sets it to the write's time, epoch milliseconds (from
        # ``clock``): consumers measure change -> handler latency from it
        # (streamkit.observability.ChangeLatency).
        self.stamp_attribute = stamp_attribute
        self.table = table
        self.state_attribute = state_attribute
        self.version_attribute = version_attribute
        self.error_attribute = error_attribute
        self.failure_state = _state_name(name, failure_state, "failure_state")
        self.retry_on = _exception_types(name, retry_on)
        self.precheck = precheck
        self.ordering: Ordering = ordering
        self.clock = clock
        self._client = client
        self._table = StateTable(
            state_attribute, version_attribute, error_attribute, lambda: self.client
        )
        self._stages: dict[str, Stage] = {}
        self._terminal: set[str] = set()
        self._validated = False
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    # --- definition -------------------------------------------------------------------------

    def stage(
        self,
        state: str,
        *,
        next: str | Iterable[str],  # shadows the builtin: reads as the machine it declares
        on_error: str | None = None,
        retry_on: Iterable[type[BaseException]] = (),
    ) -> Callable[[F], F]:
        """Decorator: the function runs when an item enters ``state`` and returns one of
        ``next`` (or ``Next``; ``None`` when there is exactly one)."""
        return self._register(state, next, on_error, retry_on, compensation=False)

    def compensation(
        self,
        state: str,
        *,
        next: str | Iterable[str],
        on_error: str | None = None,
        retry_on: Iterable[type[BaseException]] = (),
    ) -> Callable[[F], F]:
        """A stage that undoes work (refund, release stock), run when an item enters a failure
        or cancellation state; same semantics as ``stage``, marked for readers and docs."""
        return self._register(state, next, on_error, retry_on, compensation=True)

    def terminal(self, *states: str) -> None:
        """Declare end states: entering one runs nothing."""
        for state in states:
            _state_name(self.name, state, "terminal state")
            if state in self._stages:
                raise InvalidWorkflowError(self.name, f"{state!r} has a stage; it is not terminal")
            self._terminal.add(state)
        self._validated = False

    def _register(
        self,
        state: str,
        next_states: str | Iterable[str],
        on_error: str | None,
        retry_on: Iterable[type[BaseException]],
        *,
        compensation: bool,
    ) -> Callable[[F], F]:
        _state_name(self.name, state, "stage state")
        if state in self._stages:
            raise InvalidWorkflowError(self.name, f"state {state!r} already has a stage")
        if state in self._terminal:
            raise InvalidWorkflowError(self.name, f"state {state!r} is terminal")
        nexts = (next_states,) if isinstance(next_states, str) else tuple(next_states)
        if not nexts:
            raise InvalidWorkflowError(self.name, f"stage {state!r} needs at least one next state")
        for candidate in nexts:
            _state_name(self.name, candidate, f"next state of {state!r}")
        if state in nexts:
            raise InvalidWorkflowError(self.name, f"stage {state!r} cannot move to itself")
        failure = _state_name(self.name, on_error or self.failure_state, f"on_error of {state!r}")
        if failure == state:
            raise InvalidWorkflowError(
                self.name, f"stage {state!r} cannot fail into itself: pass another on_error="
            )
        stage_retry_on = _exception_types(self.name, retry_on)

        def register(function: F) -> F:
            check_handler(function, f"stage {state!r}")
            if is_async(function):  # pragma: no cover - check_handler already refuses it
                raise InvalidWorkflowError(self.name, "stages must be synchronous")
            self._stages[state] = Stage(
                state,
                nexts,
                failure,
                function,
                takes_context(function),
                compensation,
                stage_retry_on,
            )
            self._validated = False
            return function

        return register

    @property
    def stages(self) -> dict[str, Stage]:
        return dict(self._stages)

    @property
    def terminal_states(self) -> frozenset[str]:
        return frozenset(self._terminal | self._implicit_terminal())

    def _implicit_terminal(self) -> set[str]:
        # The default failure state ends the workflow unless a compensation handles it.
        return set() if self.failure_state in self._stages else {self.failure_state}

    def validate(self) -> None:
        """Check the whole graph: every next and on_error state has a stage or is terminal.
        Runs before the first record; call it at the end of the module to fail at import."""
        if not self._stages:
            raise InvalidWorkflowError(self.name, "no stages")
        known = set(self._stages) | self.terminal_states
        for stage in self._stages.values():
            for target in (*stage.next, stage.on_error):
                if target not in known:
                    raise InvalidWorkflowError(
                        self.name,
                        f"stage {stage.state!r} can move to {target!r}, which has no stage "
                        "and is not terminal",
                    )
        self._validated = True

    # --- running ----------------------------------------------------------------------------

    # The client given at construction, or a default one with short timeouts, made on first use.
    client = DefaultClient()

    def handle(self, event: Any, context: Any | None = None) -> BatchResponse:
        """The Lambda handler body: run the stages of a batch (``ordering``, per_key default)."""
        self._ensure_valid()
        return process_batch(event, self, ordering=self.ordering, context=context)

    def run(self, event: Any, context: Any | None = None) -> BatchResult:
        """``handle`` returning the batch accounting (a ``stale`` record counts as already
        completed; the response is ``handle``'s)."""
        return self.run_wrapped(event, context, _unwrapped)

    def run_wrapped(self, event: Any, context: Any | None, wrap: RecordWrapper) -> BatchResult:
        """``handle`` for an observer (``streamkit.observability.ObservedConsumer``): each
        record's stage runs through ``wrap``. Returns the batch accounting, in which a
        ``stale`` record (the version fence found its stage done, or the item moved on)
        counts as already completed (for ``handle`` it is a success: same response)."""
        self._ensure_valid()
        stale = 0

        def run_stage(record: StreamRecord) -> StageOutcome:
            nonlocal stale
            outcome = self(record, context)
            if outcome.status == "stale":
                stale += 1
            return outcome

        result = run_batch(event, wrap(run_stage), ordering=self.ordering, context=context)
        return counted_as_already_completed(result, stale)

    def counts(self) -> dict[str, int]:
        """How many records ended in each outcome status, over this workflow's life."""
        with self._lock:
            return dict(self._counts)

    def __call__(self, record: StreamRecord, context: Any | None = None) -> StageOutcome:
        """Run the stage ``record`` triggers, if any (a handler for process_batch/Router)."""
        outcome = self._run(record, context)
        with self._lock:
            self._counts[outcome.status] += 1
        if outcome.status == "stale":
            logger.info(
                "workflow %s: record %s is stale (item no longer %s at version %s); skipped",
                self.name,
                record.item_identifier,
                outcome.state,
                outcome.version,
            )
        elif outcome.status == "unknown_state":
            logger.warning(
                "workflow %s: item entered state %r, which has no stage and is not terminal",
                self.name,
                outcome.state,
            )
        return outcome

    def _run(self, record: StreamRecord, context: Any | None) -> StageOutcome:
        self._ensure_valid()
        entered = self._entered_state(record)
        if entered is None:
            return StageOutcome("ignored")
        state, new_image = entered
        if state in self._terminal or (state == self.failure_state and state not in self._stages):
            return StageOutcome("terminal", state)
        stage = self._stages.get(state)
        if stage is None:
            return StageOutcome("unknown_state", state)
        version = self._version_of(record, new_image)
        table = self._table_for(record)
        keys = record.raw_keys
        if self.precheck and not self._table.is_current(table, keys, state, version):
            return StageOutcome("stale", state, version=version)
        stage_context = StageContext(
            self.name,
            state,
            version,
            record.keys,
            f"{self.name}:{record.item_key}:{state}:{version if version is not None else 0}",
            context,
        )
        try:
            returned = (
                stage.function(record, stage_context)
                if stage.takes_context
                else stage.function(record)
            )
            next_state, attributes = self._resolve(stage, returned, record)
        except RetryStage:
            raise
        except Exception as exc:
            if isinstance(exc, stage.retry_on + self.retry_on):
                raise
            return self._fail(table, keys, stage, version, exc)
        # A compensation keeps the error it compensates (why was this refunded?); any other
        # successful stage clears it, e.g. after a redrive.
        written = self._table.transition(
            table,
            keys,
            state,
            version,
            next_state,
            self._stamped(attributes),
            clear_error=not stage.compensation,
        )
        if not written:
            return StageOutcome("stale", state, version=version)
        return StageOutcome("advanced", state, next_state, version)

    def _ensure_valid(self) -> None:
        if not self._validated:
            self.validate()

    def _entered_state(self, record: StreamRecord) -> tuple[str, dict[str, Any]] | None:
        name = record.event_name
        if name == "REMOVE":
            return None
        new_image = record.new_image
        if new_image is None:
            raise image_not_available(record, "NewImage")
        state = new_image.get(self.state_attribute)
        if not isinstance(state, str):
            return None
        if name == "MODIFY":
            old_image = record.old_image
            if old_image is None:  # needed to tell "entered the state" from "other change"
                raise image_not_available(record, "OldImage")
            if old_image.get(self.state_attribute) == state:
                return None
        return state, new_image

    def _version_of(self, record: StreamRecord, image: Mapping[str, Any]) -> int | None:
        version = image.get(self.version_attribute)
        if version is None:
            return None
        if isinstance(version, bool) or not isinstance(version, int | Decimal):
            raise ValueError(
                f"workflow {self.name}: {self.version_attribute} of record "
                f"{record.item_identifier} is {version!r}, not a number"
            )
        if isinstance(version, Decimal) and version != version.to_integral_value():
            raise ValueError(f"workflow {self.name}: version {version} is not an integer")
        return int(version)

    def _table_for(self, record: StreamRecord) -> str:
        table = self.table or record.table_name
        if not table:
            raise ValueError(
                f"workflow {self.name}: no table= and record {record.item_identifier} has no "
                "eventSourceARN to take it from"
            )
        return table

    def _resolve(
        self, stage: Stage, returned: Any, record: StreamRecord
    ) -> tuple[str, Mapping[str, Any]]:
        if returned is None:
            if len(stage.next) != 1:
                raise InvalidTransitionError(stage.state, returned, stage.next)
            return stage.next[0], {}
        if isinstance(returned, Next):
            next_state, attributes = returned.state, returned.attributes
        elif isinstance(returned, str):
            next_state, attributes = returned, {}
        else:
            raise InvalidTransitionError(stage.state, returned, stage.next)
        if next_state not in stage.next:
            raise InvalidTransitionError(stage.state, next_state, stage.next)
        reserved = {self.state_attribute, self.version_attribute, self.error_attribute}
        if self.stamp_attribute is not None:
            reserved.add(self.stamp_attribute)
        clash = sorted((set(attributes) & reserved) | (set(attributes) & set(record.raw_keys)))
        if clash:
            raise InvalidWorkflowError(
                self.name, f"stage {stage.state!r} may not write {clash} (keys or workflow state)"
            )
        # Serialized here, so that a value DynamoDB cannot store is the stage's failure.
        return next_state, {name: serialize_value(value) for name, value in attributes.items()}

    def _stamped(self, attributes: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.stamp_attribute is None:
            return attributes
        stamp = int(self.clock().timestamp() * 1000)
        return {**attributes, self.stamp_attribute: {"N": str(stamp)}}

    def _fail(
        self,
        table: str,
        keys: dict[str, Any],
        stage: Stage,
        version: int | None,
        error: Exception,
    ) -> StageOutcome:
        logger.warning(
            "workflow %s: stage %s failed (%s: %s); moving the item to %s",
            self.name,
            stage.state,
            type(error).__name__,
            error,
            stage.on_error,
        )
        details = {
            "stage": stage.state,
            "type": type(error).__name__,
            "message": str(error)[:_MESSAGE_LIMIT],
            "at": self.clock().isoformat(),
            "version": version if version is not None else 0,
        }
        written = self._table.transition(
            table,
            keys,
            stage.state,
            version,
            stage.on_error,
            self._stamped({self.error_attribute: serialize_value(details)}),
            clear_error=False,
        )
        if not written:
            return StageOutcome("stale", stage.state, version=version, error=error)
        return StageOutcome("failed", stage.state, stage.on_error, version, error)

    # --- outside writes -------------------------------------------------------------------

    def start(self, item: Mapping[str, Any], *, state: str, table: str | None = None) -> bool:
        """Create ``item`` (plain values, keys included) in ``state`` at version 1, unless an
        item with that key already exists in a workflow state; True when it was created."""
        if state not in self._stages:
            raise InvalidWorkflowError(self.name, f"cannot start in {state!r}: it has no stage")
        return self._table.create(self._table_or(table), item, state)

    def request(
        self,
        keys: Mapping[str, Any],
        state: str,
        *,
        from_states: Iterable[str],
        table: str | None = None,
    ) -> bool:
        """An outside transition (e.g. a cancellation from an API): move the item to
        ``state`` if it is in one of ``from_states``, bumping the version so that a stage run
        for the old version is fenced out. True when it moved."""
        sources = list(from_states)
        if not sources:
            raise InvalidWorkflowError(self.name, "request() needs from_states")
        _state_name(self.name, state, "requested state")
        return self._table.move(self._table_or(table), keys, state, sources)

    def _table_or(self, table: str | None) -> str:
        chosen = table or self.table
        if not chosen:
            raise InvalidWorkflowError(self.name, "no table: pass table= here or to Workflow()")
        return chosen

    def __repr__(self) -> str:
        return f"Workflow({self.name!r}, stages={list(self._stages)})"


def _state_name(workflow: str, state: object, what: str) -> str:
    if not isinstance(state, str) or not state:
        raise InvalidWorkflowError(str(workflow), f"{what} must be a non-empty string")
    return state


def _exception_types(
    workflow: str, types: Iterable[type[BaseException]]
) -> tuple[type[BaseException], ...]:
    result = tuple(types)
    for kind in result:
        if not (isinstance(kind, type) and issubclass(kind, BaseException)):
            raise InvalidWorkflowError(workflow, f"retry_on takes exception classes, not {kind!r}")
    return result


def _unwrapped(call: Callable[..., Any]) -> Callable[[StreamRecord], Any]:
    return call
