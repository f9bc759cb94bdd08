"""TumblingWindowAggregator against Lambda's documented window protocol, invoke by invoke.

Each test plays Lambda: it passes the state returned by one invoke into the next (through
JSON, as Lambda does), redelivers after failures, and checks what ``emit`` receives on the
final invoke of the window.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from tests.helpers.stream_data import lambda_record

from streamkit.codec import serialize
from streamkit.records import StreamRecord
from streamkit.routing import (
    Delta,
    InvalidDeltaError,
    InvalidWindowEventError,
    TumblingWindowAggregator,
    WindowResult,
    became,
    transition,
)

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000"
SHARD = "shardId-00000001700000000000-abcdef01"
BASE_SEQ = 2**60  # beyond JSON's safe integers, as real sequence numbers are
START = 1_704_103_500  # 2024-01-01T10:05:00Z


def revenue_per_minute(record: StreamRecord) -> Iterator[Delta]:
    if became("status", "PAID")(record):
        minute = record.approximate_creation_time.strftime("%Y-%m-%dT%H:%M")
        total = record.new_image["total"]  # type: ignore[index]
        yield Delta({"pk": f"REVENUE#{minute}"}, {"revenue": total, "orders": 1})


def status_counts(record: StreamRecord) -> Iterator[Delta]:
    if transition("status")(record):
        before = (record.old_image or {}).get("status")
        after = (record.new_image or {}).get("status")
        if before is not None:
            yield Delta({"pk": f"STATUS#{before}"}, {"count": -1})
        if after is not None:
            yield Delta({"pk": f"STATUS#{after}"}, {"count": 1})


def both(record: StreamRecord) -> Iterator[Delta]:
    yield from revenue_per_minute(record)
    yield from status_counts(record)


def order(
    n: int,
    new_status: str | None,
    old_status: str | None = None,
    total: str = "10.00",
    at: int = START,
) -> dict[str, Any]:
    name = "INSERT" if old_status is None else "REMOVE" if new_status is None else "MODIFY"
    keys = {"pk": f"ORDER#{n}"}

    def image(status: str | None) -> dict[str, Any] | None:
        return (
            None
            if status is None
            else serialize({**keys, "status": status, "total": Decimal(total)})
        )

    return lambda_record(
        BASE_SEQ + n,
        keys=serialize(keys),
        event_name=name,
        new_image=image(new_status),
        old_image=image(old_status),
        created=at,
        event_id=f"e{n}",
        size_bytes=10,
        arn=ARN,
    )


def invoke(
    aggregator: TumblingWindowAggregator,
    records: list[dict[str, Any]],
    state: Mapping[str, Any] | None,
    *,
    final: bool = False,
    early: bool = False,
) -> dict[str, Any]:
    event = {
        "Records": records,
        "window": {"start": "2024-01-01T10:05:00Z", "end": "2024-01-01T10:06:00Z"},
        "state": json.loads(json.dumps(state or {})),  # Lambda hands state over as JSON
        "shardId": SHARD,
        "eventSourceARN": ARN,
        "isFinalInvokeForWindow": final,
        "isWindowTerminatedEarly": early,
    }
    response = aggregator.handle(json.loads(json.dumps(event)))
    json.dumps(response)  # must be serializable as is
    return response


def aggregator(emitted: list[WindowResult], **kwargs: Any) -> TumblingWindowAggregator:
    kwargs.setdefault("deltas", both)
    return TumblingWindowAggregator("orders-window", emit=emitted.append, **kwargs)


def totals(result: WindowResult) -> dict[str, dict[str, Decimal]]:
    return {a.key["pk"]: a.values for a in result.totals}


def failures(response: Mapping[str, Any]) -> list[str]:
    return [f["itemIdentifier"] for f in response["batchItemFailures"]]


EXPECTED = {
    "REVENUE#2024-01-01T10:05": {"revenue": Decimal("30.00"), "orders": 3},
    "STATUS#PLACED": {"count": 1},
    "STATUS#PAID": {"count": 2},
    "STATUS#SHIPPED": {"count": 1},
}
BATCHES = [
    [order(1, "PLACED"), order(2, "PLACED"), order(3, "PAID")],
    [order(4, "PAID", "PLACED"), order(5, "PLACED")],
    [order(6, "PAID", "PLACED"), order(7, "SHIPPED", "PAID")],
]


def test_state_carries_the_window_and_emit_runs_once_on_the_final_invoke() -> None:
    emitted: list[WindowResult] = []
    agg = aggregator(emitted)
    state: Mapping[str, Any] | None = None
    for batch in BATCHES:
        response = invoke(agg, batch, state)
        assert failures(response) == []
        state = response["state"]
        assert emitted == []
    final = invoke(agg, [], state, final=True)
    assert final == {"state": {}, "batchItemFailures": []}
    assert len(emitted) == 1
    result = emitted[0]
    assert totals(result) == EXPECTED
    assert result.records == 7
    assert result.window.start == datetime(2024, 1, 1, 10, 5, tzinfo=UTC)
    assert result.shard_id == SHARD and result.event_source_arn == ARN
    assert (result.first_sequence_number, result.last_sequence_number) == (
        str(BASE_SEQ + 1),
        str(BASE_SEQ + 7),
    )
    assert result.part_id == f"2024-01-01T10:05:00+00:00#{SHARD}#{BASE_SEQ + 1}"
    assert not result.terminated_early


def test_records_of_the_final_invoke_are_folded_before_emitting() -> None:
    emitted: list[WindowResult] = []
    agg = aggregator(emitted)
    state = invoke(agg, BATCHES[0] + BATCHES[1], None)["state"]
    invoke(agg, BATCHES[2], state, final=True)
    assert totals(emitted[0]) == EXPECTED


def test_redelivered_records_are_not_counted_twice() -> None:
    emitted: list[WindowResult] = []
    agg = aggregator(emitted)
    state = invoke(agg, BATCHES[0], None)["state"]
    # A retry repeats the first batch, then one that overlaps it and goes further.
    state = invoke(agg, BATCHES[0], state)["state"]
    state = invoke(agg, BATCHES[0][1:] + BATCHES[1], state)["state"]
    state = invoke(agg, BATCHES[1] + BATCHES[2], state)["state"]
    invoke(agg, BATCHES[2], state, final=True)
    assert totals(emitted[0]) == EXPECTED
    assert emitted[0].records == 7


class Flaky:
    """A deltas function failing for one order the first ``times`` times it sees it."""

    def __init__(self, order_number: int, times: int = 1) -> None:
        self.key = f"ORDER#{order_number}"
        self.left = times

    def __call__(self, record: StreamRecord) -> Iterator[Delta]:
        if record.keys["pk"] == self.key and self.left:
            self.left -= 1
            raise ConnectionError("lookup failed")
        return both(record)


def test_a_failed_record_is_reported_and_the_state_holds_exactly_the_ones_before() -> None:
    emitted: list[WindowResult] = []
    agg = aggregator(emitted, deltas=Flaky(5))
    state = invoke(agg, BATCHES[0], None)["state"]
    response = invoke(agg, BATCHES[1] + BATCHES[2], state)
    assert failures(response) == [str(BASE_SEQ + n) for n in (5, 6, 7)]
    # Lambda retries from the failed record with the state it got back.
    response = invoke(agg, BATCHES[1][1:] + BATCHES[2], response["state"])
    assert failures(response) == []
    invoke(agg, [], response["state"], final=True)
    assert totals(emitted[0]) == EXPECTED


def test_a_retry_with_the_older_state_folds_every_record_once() -> None:
    emitted: list[WindowResult] = []
    agg = aggregator(emitted)
    state = invoke(agg, BATCHES[0], None)["state"]
    invoke(agg, BATCHES[1], state)  # its response is lost: Lambda retries with the old state
    state = invoke(agg, BATCHES[1] + BATCHES[2], state)["state"]
    invoke(agg, [], state, final=True)
    assert totals(emitted[0]) == EXPECTED


def test_the_final_invoke_fails_whole_rather_than_emit_a_window_with_a_hole() -> None:
    emitted: list[WindowResult] = []
    agg = aggregator(emitted, deltas=Flaky(7))
    state = invoke(agg, BATCHES[0] + BATCHES[1], None)["state"]
    with pytest.raises(ConnectionError):
        invoke(agg, BATCHES[2], state, final=True)
    assert emitted == []
    invoke(agg, BATCHES[2], state, final=True)  # Lambda retries the final invoke
    assert totals(emitted[0]) == EXPECTED


def test_an_emit_failure_fails_the_final_invoke_so_lambda_retries_it() -> None:
    attempts: list[WindowResult] = []

    def emit(result: WindowResult) -> None:
        attempts.append(result)
        if len(attempts) == 1:
            raise TimeoutError("table unavailable")

    agg = TumblingWindowAggregator("w", deltas=both, emit=emit)
    state = invoke(agg, BATCHES[0], None)["state"]
    with pytest.raises(TimeoutError):
        invoke(agg, [], state, final=True)
    invoke(agg, [], state, final=True)
    assert [totals(r) for r in attempts] == [totals(attempts[0])] * 2
    assert attempts[0].part_id == attempts[1].part_id  # an idempotent emit can key on it


def test_an_early_terminated_window_emits_parts_with_distinct_ids() -> None:
    emitted: list[WindowResult] = []
    agg = aggregator(emitted)
    state = invoke(agg, BATCHES[0], None)["state"]
    invoke(agg, [], state, final=True, early=True)
    state = invoke(agg, BATCHES[1] + BATCHES[2], {})["state"]  # the rest, with a fresh state
    invoke(agg, [], state, final=True)
    assert [r.terminated_early for r in emitted] == [True, False]
    assert emitted[0].part_id != emitted[1].part_id
    combined: dict[str, dict[str, Decimal]] = {}
    for result in emitted:
        for pk, values in totals(result).items():
            for name, amount in values.items():
                combined.setdefault(pk, {}).setdefault(name, Decimal(0))
                combined[pk][name] += amount
    assert combined == EXPECTED


def test_fold_mode_keeps_a_state_of_your_own_and_never_half_a_record() -> None:
    emitted: list[WindowResult] = []
    calls = {"n": 0}

    def fold(state: dict[str, Any], record: StreamRecord) -> dict[str, Any]:
        calls["n"] += 1
        state["seen"] = state.get("seen", 0) + 1  # mutated before failing: must not stick
        if record.keys["pk"] == "ORDER#2" and calls["n"] == 2:
            raise RuntimeError("transient")
        state.setdefault("keys", []).append(record.keys["pk"])
        return state

    agg = TumblingWindowAggregator(
        "fold", fold=fold, emit=emitted.append, initial=lambda: {"seen": 0}
    )
    response = invoke(agg, BATCHES[0], None)
    assert failures(response) == [str(BASE_SEQ + 2), str(BASE_SEQ + 3)]
    assert response["state"]["user"] == {"seen": 1, "keys": ["ORDER#1"]}
    response = invoke(agg, BATCHES[0], response["state"])  # redelivered from the start
    invoke(agg, [], response["state"], final=True)
    assert emitted[0].state == {"seen": 3, "keys": ["ORDER#1", "ORDER#2", "ORDER#3"]}
    assert emitted[0].totals == []


def test_invalid_deltas_fail_the_record() -> None:
    emitted: list[WindowResult] = []

    def floats(record: StreamRecord) -> Iterator[Delta]:
        yield Delta({"pk": "X"}, {"amount": 1.5})

    agg = aggregator(emitted, deltas=floats)
    response = invoke(agg, BATCHES[0], None)
    assert failures(response) == [str(BASE_SEQ + n) for n in (1, 2, 3)]
    with pytest.raises(InvalidDeltaError, match="floats"):
        invoke(agg, BATCHES[0], None, final=True)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.pop("window"), "TumblingWindowInSeconds"),
        (lambda e: e.update(window={"start": "yesterday", "end": "x"}), "bad window"),
        (
            lambda e: e.update(
                window={"start": "2024-01-01T10:05:00", "end": "2024-01-01T10:06:00"}
            ),
            "time zone",
        ),
        (lambda e: e.pop("shardId"), "shardId"),
        (lambda e: e.update(state=[1]), "state must be an object"),
        (lambda e: e.update(state={"streamkit": {"v": 99}}), "aggregator version"),
        (lambda e: e.update(isFinalInvokeForWindow="yes"), "booleans"),
    ],
)
def test_events_that_are_not_window_invocations_are_rejected(mutate: Any, message: str) -> None:
    event: dict[str, Any] = {
        "Records": [],
        "window": {"start": "2024-01-01T10:05:00Z", "end": "2024-01-01T10:06:00Z"},
        "state": {},
        "shardId": SHARD,
        "isFinalInvokeForWindow": False,
        "isWindowTerminatedEarly": False,
    }
    mutate(event)
    with pytest.raises(InvalidWindowEventError, match=message):
        aggregator([]).handle(event)


def test_exactly_one_of_deltas_and_fold() -> None:
    with pytest.raises(TypeError):
        TumblingWindowAggregator("w", emit=print)
    with pytest.raises(TypeError):
        TumblingWindowAggregator("w", emit=print, deltas=both, fold=lambda s, r: s)
