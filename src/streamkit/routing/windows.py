"""Tumbling-window aggregation speaking Lambda's window state protocol.

With ``TumblingWindowInSeconds`` on the mapping, Lambda invokes the function with extra fields
(https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-windows.html)::

    {"Records": [...], "window": {"start": "2024-01-01T10:05:00Z", "end": "...:06:00Z"},
     "state": {...}, "shardId": "...", "eventSourceARN": "...",
     "isFinalInvokeForWindow": false, "isWindowTerminatedEarly": false}

and the function must answer ``{"state": {...}, "batchItemFailures": [...]}`` (no ``state``
counts as a failed invoke). The state carries the window's aggregate from one invoke to the
next; on the last invoke of a window (``isFinalInvokeForWindow``) the result is final.

``TumblingWindowAggregator`` folds each record into the state and calls ``emit`` once per
window, on the final invoke::

    revenue = TumblingWindowAggregator("revenue-per-minute", deltas=revenue, emit=write_totals)

    def handler(event, context):
        return revenue.handle(event, context)

Two ways to fold: ``deltas=`` (a deltas function, as for ``CounterAggregator``: exact Decimal
sums per aggregate key, kept in the state as text) or ``fold=`` (``fold(state, record) ->
state`` over a JSON state of your own, starting from ``initial()``).

Exactly-once folding. Lambda processes each record at least once; a retried batch may repeat
records the state already holds (AWS: "in rare cases, such as error handling, some records
might be processed more than once"). The state therefore also records the highest sequence
number folded per shard, and a record at or below it is skipped. Records of a shard are folded
in stream order (fail_fast: a record that fails is reported with everything after it, and the
state returned holds exactly the records before it), so state and high-water mark always
describe the same records. This relies on one batch per shard at a time: tumbling windows
require ``ParallelizationFactor`` 1.

Emission. ``emit(result)`` runs on the final invoke, after that invoke's records are folded;
if it raises, or a record of the final invoke fails, the invoke fails as a whole and Lambda
retries it with the same state, so ``emit`` must be idempotent: write the totals with a Put
keyed by ``result.part_id`` (window start, shard, first sequence number), not with ADD. When
Lambda ends a window early (state over 1 MB, ``isWindowTerminatedEarly``), the rest of the
window continues with a fresh state and is emitted as another part with its own ``part_id``;
readers sum the parts of a window.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from streamkit.records import NumberMode, StreamRecord, parse_event
from streamkit.routing.deltas import (
    Aggregate,
    AggregateKey,
    DeltasFunction,
    collect_deltas,
    key_plain,
    merge_into,
)
from streamkit.routing.exceptions import InvalidWindowEventError
from streamkit.wire import (
    IS_FINAL_INVOKE,
    IS_TERMINATED_EARLY,
    MAX_STATE_BYTES,
    STATE,
    batch_item_failures,
    state_size,
)

__all__ = ["TumblingWindowAggregator", "Window", "WindowResult"]

logger = logging.getLogger(__name__)

# "Your state can be a maximum of 1 MB per shard."
_META: Final = "streamkit"  # our part of the state: high-water marks and counters
_STATE_VERSION: Final = 1


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class WindowResult:
    """What ``emit`` receives for one window (or one part of an early-terminated window).

    ``totals`` (deltas mode) lists each aggregate's sums; ``state`` (fold mode) is the folded
    state. ``part_id`` names this emission uniquely and stably across retries."""

    name: str
    window: Window
    shard_id: str
    event_source_arn: str | None
    terminated_early: bool
    records: int
    first_sequence_number: str | None
    last_sequence_number: str | None
    totals: list[Aggregate] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)

    @property
    def part_id(self) -> str:
        return (
            f"{self.window.start.isoformat()}#{self.shard_id}#{self.first_sequence_number or '-'}"
        )


class TumblingWindowAggregator:
    """Folds records into Lambda's window state and emits once per window; see the module."""

    def __init__(
        self,
        name: str,
        *,
        emit: Callable[[WindowResult], Any],
        deltas: DeltasFunction | None = None,
        fold: Callable[[dict[str, Any], StreamRecord], dict[str, Any]] | None = None,
        initial: Callable[[], dict[str, Any]] = dict,
        numbers: NumberMode = "decimal",
    ) -> None:
        if (deltas is None) == (fold is None):
            raise TypeError("pass exactly one of deltas= or fold=")
        if not callable(emit):
            raise TypeError("emit must be a function WindowResult -> None")
        self.name = name
        self.emit = emit
        self.deltas = deltas
        self.fold = fold
        self.initial = initial
        self.numbers: NumberMode = numbers

    def run(self, event: Any, context: Any | None = None) -> dict[str, Any]:
        """``handle``: a window aggregator's response (the state and batchItemFailures) is
        everything it has to tell."""
        return self.handle(event, context)

    def handle(self, event: Any, context: Any | None = None) -> dict[str, Any]:
        """The Lambda handler body: ``{"state": ..., "batchItemFailures": [...]}``."""
        window, shard_id, final, early = _window_fields(event)
        meta, body = self._decode(event.get("state"))
        records = parse_event(event, numbers=self.numbers)
        if any(not r.item_identifier for r in records):
            raise InvalidWindowEventError("a record has no readable SequenceNumber")
        high_water = meta["hw"].get(shard_id)
        failed_from: int | None = None
        for index, record in enumerate(records):
            sequence = _sequence(record)
            if high_water is not None and sequence <= high_water:
                continue  # folded by an earlier invoke of this window: a redelivery
            try:
                body = self._fold_one(body, record)
            except Exception as exc:
                if final:  # never emit a window with a hole; retry the final invoke whole
                    raise
                logger.warning(
                    "window aggregator %s: record %s failed (%s: %s); reporting it and the %d "
                    "after it",
                    self.name,
                    record.item_identifier,
                    type(exc).__name__,
                    exc,
                    len(records) - index - 1,
                )
                failed_from = index
                break
            high_water = sequence
            meta["hw"][shard_id] = sequence
            meta["records"] += 1
            meta["first"] = meta["first"] or record.sequence_number
            meta["last"] = record.sequence_number
        if final:
            self.emit(self._result(window, shard_id, event, early, meta, body))
            return {STATE: {}, **batch_item_failures([])}
        failures = [] if failed_from is None else records[failed_from:]
        state = self._encode(meta, body)
        size = state_size(state)
        if size > MAX_STATE_BYTES:
            logger.warning(
                "window aggregator %s: state is %d bytes, over Lambda's 1 MB", self.name, size
            )
        return {STATE: state, **batch_item_failures(r.item_identifier for r in failures)}

    # --- folding ----------------------------------------------------------------------------

    def _fold_one(self, body: Any, record: StreamRecord) -> Any:
        if self.deltas is not None:
            deltas = collect_deltas(self.deltas, record)
            # Sums first, state second: a failure leaves no half of the record in the state.
            updates: dict[AggregateKey, dict[str, Decimal]] = {}
            for key, values in deltas.items():
                merged = dict(body.get(key, {}))
                merge_into({key: merged}, {key: values}, record.item_identifier)
                updates[key] = merged
            body.update(updates)
            return body
        assert self.fold is not None
        # A fold that raises half-way must not leave half a record in the state.
        folded = self.fold(copy.deepcopy(body), record)
        if not isinstance(folded, dict):
            raise TypeError(f"fold must return the new state (a dict), got {type(folded).__name__}")
        return folded

    def _result(
        self,
        window: Window,
        shard_id: str,
        event: Mapping[str, Any],
        early: bool,
        meta: dict[str, Any],
        body: Any,
    ) -> WindowResult:
        arn = event.get("eventSourceARN")
        common: dict[str, Any] = {
            "name": self.name,
            "window": window,
            "shard_id": shard_id,
            "event_source_arn": arn if isinstance(arn, str) else None,
            "terminated_early": early,
            "records": meta["records"],
            "first_sequence_number": meta["first"],
            "last_sequence_number": meta["last"],
        }
        if self.deltas is not None:
            totals = [
                Aggregate(key_plain(key), dict(values)) for key, values in sorted(body.items())
            ]
            return WindowResult(**common, totals=totals)
        return WindowResult(**common, state=body)

    # --- the state's JSON form --------------------------------------------------------------

    def _decode(self, state: Any) -> tuple[dict[str, Any], Any]:
        if state is None:
            state = {}
        if not isinstance(state, Mapping):
            raise InvalidWindowEventError(f"state must be an object, got {type(state).__name__}")
        raw_meta = state.get(_META)
        if not state or raw_meta is None:  # the window's first invoke: a fresh state
            meta: dict[str, Any] = {"hw": {}, "records": 0, "first": None, "last": None}
            return meta, ({} if self.deltas is not None else self.initial())
        if not isinstance(raw_meta, Mapping) or raw_meta.get("v") != _STATE_VERSION:
            raise InvalidWindowEventError(f"state[{_META!r}] is not from this aggregator version")
        meta = {
            "hw": {str(k): int(v) for k, v in dict(raw_meta.get("hw") or {}).items()},
            "records": int(raw_meta.get("records", 0)),
            "first": raw_meta.get("first"),
            "last": raw_meta.get("last"),
        }
        if self.deltas is None:
            return meta, dict(state.get("user") or {})
        totals: dict[AggregateKey, dict[str, Decimal]] = {}
        for entry in state.get("totals") or []:
            key = tuple((str(n), str(t), str(x)) for n, t, x in entry["key"])
            totals[key] = {str(a): Decimal(str(v)) for a, v in entry["values"].items()}
        return meta, totals

    def _encode(self, meta: dict[str, Any], body: Any) -> dict[str, Any]:
        state: dict[str, Any] = {
            _META: {
                "v": _STATE_VERSION,
                # Sequence numbers can exceed JSON's safe integers: kept as text.
                "hw": {shard: str(seq) for shard, seq in meta["hw"].items()},
                "records": meta["records"],
                "first": meta["first"],
                "last": meta["last"],
            }
        }
        if self.deltas is None:
            state["user"] = body
        else:
            state["totals"] = [
                {"key": [list(t) for t in key], "values": {a: str(v) for a, v in values.items()}}
                for key, values in body.items()
            ]
        return state


def _window_fields(event: Any) -> tuple[Window, str, bool, bool]:
    if not isinstance(event, Mapping):
        raise InvalidWindowEventError(f"expected an object, got {type(event).__name__}")
    window = event.get("window")
    if not isinstance(window, Mapping):
        raise InvalidWindowEventError(
            "no 'window' (is TumblingWindowInSeconds set on the mapping?)"
        )
    try:
        start = _timestamp(window["start"])
        end = _timestamp(window["end"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidWindowEventError(f"bad window {dict(window)!r}: {exc}") from None
    shard_id = event.get("shardId")
    if not isinstance(shard_id, str) or not shard_id:
        raise InvalidWindowEventError("no 'shardId'")
    final = event.get(IS_FINAL_INVOKE, False)
    early = event.get(IS_TERMINATED_EARLY, False)
    if not isinstance(final, bool) or not isinstance(early, bool):
        raise InvalidWindowEventError("isFinalInvokeForWindow/isWindowTerminatedEarly not booleans")
    return Window(start, end), shard_id, final, early


def _sequence(record: StreamRecord) -> int:
    try:
        return int(record.sequence_number)
    except ValueError:
        raise InvalidWindowEventError(
            f"SequenceNumber {record.sequence_number!r} is not a number"
        ) from None


def _timestamp(value: Any) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO-8601 string, got {value!r}")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return parsed
