"""Property: across arbitrary failures and Lambda-style redeliveries, no record runs twice.

A small Lambda is simulated over one shard: batches start at the checkpoint; after a partial
batch response the checkpoint moves to the lowest reported SequenceNumber; after an
invocation that dies, the same batch comes again. Handlers fail at random (raise before their
side effect, as a handler that raises must not have half-applied it), invocations die at
random, and the store's reads fail at random, but every record eventually succeeds.

The one modeled exception is the documented at-least-once window: an invocation killed after
a side effect and before its markers were written (timeout, out of memory). Records whose
effect ran in such an invocation may run again; every other record runs exactly once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.helpers.stream_data import lambda_record

from streamkit.batch import process_batch
from streamkit.idempotency import (
    IdempotencyItem,
    IdempotencyStoreUnavailableError,
    LocalCache,
    MemoryIdempotencyStore,
)

MAX_FAULTS_PER_RECORD = 3
MAX_INVOCATIONS = 500


class InvocationKilled(BaseException):
    """The Lambda process died mid-invocation (not an Exception: process_batch lets it go)."""


class World(MemoryIdempotencyStore):
    """The memory store, plus the outages the simulation injects."""

    reads_down = False
    read_refused = False  # a read was attempted while down (a warm cache may need none)
    writes_lost = False  # the process is dead: buffered markers never reach the store

    def get_many(self, ids: Sequence[str]) -> dict[str, IdempotencyItem]:
        if self.reads_down:
            self.read_refused = True
            raise IdempotencyStoreUnavailableError(self.name, ids, "injected outage")
        return super().get_many(ids)

    def put_many(self, items: Sequence[IdempotencyItem]) -> None:
        if self.writes_lost:
            raise IdempotencyStoreUnavailableError(self.name, [i.id for i in items], "killed")
        super().put_many(items)


def stream_record(i: int, item: int) -> dict[str, Any]:
    """Change ``i`` (SequenceNumber ``1000+i``) of item ``item``."""
    pk = {"S": f"item-{item}"}
    return lambda_record(
        1000 + i,
        keys={"pk": pk},
        new_image={"pk": pk, "v": {"N": str(i)}},
        event_id=f"ev-{i}",
        view_type="NEW_IMAGE",
    )


# A handler call's fate: mostly success, sometimes a failure or a dying invocation.
OK, RAISE, DIE_BEFORE, DIE_AFTER = "ok", "raise", "die_before", "die_after"
FATES = [OK] * 5 + [RAISE] * 2 + [DIE_BEFORE, DIE_AFTER]


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    items=st.lists(st.integers(0, 3), min_size=1, max_size=12),
    ordering=st.sampled_from(["fail_fast", "per_key"]),
    cached=st.booleans(),
    kill_after_effects=st.booleans(),
    data=st.data(),
)
def test_no_record_runs_twice_across_failures_and_redeliveries(
    items: list[int], ordering: str, cached: bool, kill_after_effects: bool, data: st.DataObject
) -> None:
    records = [stream_record(i, item) for i, item in enumerate(items)]
    world = World(cache=LocalCache(max_items=8) if cached else None)
    effects: Counter[str] = Counter()
    first_effects: list[int] = []  # record indexes in the order their effect first happened
    faults: Counter[str] = Counter()
    may_repeat: set[str] = set()  # effects of killed invocations: markers were lost
    effects_this_invocation: list[str] = []
    fates = [f for f in FATES if kill_after_effects or f != DIE_AFTER]

    def handler(record: Any) -> None:
        fate = OK
        if faults[record.event_id] < MAX_FAULTS_PER_RECORD:
            fate = data.draw(st.sampled_from(fates), label=f"fate of {record.event_id}")
        if fate != OK:
            faults[record.event_id] += 1
        if fate == RAISE:
            raise RuntimeError("handler failed before its side effect")
        if fate == DIE_BEFORE:
            raise InvocationKilled
        effects[record.event_id] += 1
        if effects[record.event_id] == 1:
            first_effects.append(int(record.event_id.removeprefix("ev-")))
        effects_this_invocation.append(record.event_id)
        if fate == DIE_AFTER:
            world.writes_lost = True  # dead before the flush: this invocation's markers are lost
            raise InvocationKilled

    checkpoint, invocations, read_outages = 0, 0, 0
    while checkpoint < len(records):
        invocations += 1
        assert invocations < MAX_INVOCATIONS, "the stream made no progress"
        size = data.draw(st.integers(1, len(records) - checkpoint), label="batch size")
        batch = records[checkpoint : checkpoint + size]
        world.reads_down = read_outages < 2 and data.draw(st.booleans(), label="read outage")
        read_outages += world.reads_down
        world.read_refused = False
        effects_this_invocation.clear()
        try:
            response = process_batch(
                {"Records": batch},
                handler,
                ordering=ordering,  # type: ignore[arg-type]
                idempotency=world,
                idempotency_namespace="ns",
            )
        except InvocationKilled:
            if world.writes_lost:
                may_repeat.update(effects_this_invocation)
            world.writes_lost = False
            continue  # Lambda retries the whole batch
        reported = [int(f["itemIdentifier"]) - 1000 for f in response["batchItemFailures"]]
        if world.read_refused:  # nothing ran unprotected: the whole batch is reported
            assert not effects_this_invocation
            assert reported == list(range(checkpoint, checkpoint + size))
        checkpoint = min(reported) if reported else checkpoint + size

    assert set(effects) == {r["eventID"] for r in records}, "every record ran"
    repeated = {event_id for event_id, count in effects.items() if count > 1}
    assert repeated <= may_repeat, f"ran twice without a lost marker: {repeated - may_repeat}"
    # Per item, first effects happen in stream order (both orderings guarantee it).
    for item in set(items):
        order = [i for i in first_effects if items[i] == item]
        assert order == sorted(order)
