"""``streamkit.observability.ChangeLatency``: change -> handler latency per target, as EMF."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

import pytest
from benchmarks._data import make_event, stream_record

from streamkit import MemoryIdempotencyStore, Router, parse_event
from streamkit.exceptions import InvalidMetricError
from streamkit.observability import (
    CHANGE_LATENCY_METRIC,
    ChangeLatency,
    ObservedConsumer,
    change_latency_ms,
)

NOW = 1_700_000_000.0  # epoch seconds


def record(index: int, *, stamp: Any = None, event: str = "INSERT") -> dict[str, Any]:
    item: dict[str, Any] = {"pk": f"ORDER#{index}", "status": "PLACED"}
    if stamp is not None:
        item["updated_at"] = stamp
    return stream_record(
        event_name=event,
        keys={"pk": item["pk"]},
        new_item=None if event == "REMOVE" else item,
        old_item=item if event != "INSERT" else None,
        index=index,
        rng=random.Random(index),
    )


def test_latency_is_now_minus_the_items_stamp_and_none_without_one() -> None:
    [stamped, removed, bare, text] = parse_event(make_event([
        record(1, stamp=int(NOW * 1000) - 250),
        record(2, stamp=Decimal(int(NOW * 1000) - 40), event="REMOVE"),
        record(3),
        record(4, stamp="yesterday"),
    ]))  # fmt: skip
    assert change_latency_ms(stamped, now=NOW) == 250.0
    assert change_latency_ms(removed, now=NOW) == 40.0  # from the OldImage
    assert change_latency_ms(bare, now=NOW) is None
    assert change_latency_ms(text, now=NOW) is None


def test_targets_of_a_router_are_measured_and_flushed_once_per_invocation() -> None:
    lines: list[str] = []
    latency = ChangeLatency(namespace="Shop", sink=lines.append, clock=lambda: NOW)
    router = Router("events", idempotency=MemoryIdempotencyStore())
    changes = router.fan_out("changes")
    seen: list[tuple[str, Any]] = []

    @changes.target("audit")
    @latency.target("events.audit")
    def audit(rec: Any) -> None:
        seen.append(("audit", rec.sequence_number))

    @changes.target("notify")
    @latency.target("events.notify")
    def notify(rec: Any, context: Any) -> None:  # the context still arrives
        seen.append(("notify", context))

    handler = latency.observe(ObservedConsumer(router, namespace="Shop", metrics_sink=lines.append))
    event = make_event(
        [record(1, stamp=int(NOW * 1000) - 10), record(2, stamp=int(NOW * 1000) - 30), record(3)]
    )
    assert handler(event, "ctx") == {"batchItemFailures": []}
    assert ("notify", "ctx") in seen and len(seen) == 6
    documents = [json.loads(line) for line in lines]
    by_target = {d["Target"]: d for d in documents if "Target" in d}
    assert set(by_target) == {"events.audit", "events.notify"}
    for document in by_target.values():
        assert document[CHANGE_LATENCY_METRIC] == [10.0, 30.0]  # record 3 has no stamp
        [definition] = document["_aws"]["CloudWatchMetrics"]
        assert definition["Namespace"] == "Shop"
        assert definition["Dimensions"] == [["Target"]]
        assert definition["Metrics"] == [{"Name": CHANGE_LATENCY_METRIC, "Unit": "Milliseconds"}]
    assert latency.pending() == {}

    # The redelivery: every target completed before, none runs, nothing is measured.
    lines.clear()
    assert handler(event, "ctx") == {"batchItemFailures": []}
    assert not [line for line in lines if '"Target"' in line]


def test_a_failed_invocation_still_flushes_and_bad_names_fail_early() -> None:
    lines: list[str] = []
    latency = ChangeLatency(sink=lines.append, clock=lambda: NOW)

    @latency.target("t")
    def work(rec: Any) -> None:
        raise RuntimeError("boom")

    def handler(event: Any, context: Any) -> None:
        for rec in parse_event(event):
            work(rec)

    with pytest.raises(RuntimeError):
        latency.observe(handler)(make_event([record(1, stamp=int(NOW * 1000) - 5)]), None)
    [document] = [json.loads(line) for line in lines]
    assert (document["Target"], document[CHANGE_LATENCY_METRIC]) == ("t", 5.0)
    with pytest.raises(InvalidMetricError):
        latency.target("")
    with pytest.raises(InvalidMetricError):
        ChangeLatency(namespace="")


def test_a_broken_sink_never_costs_the_record() -> None:
    def broken(line: str) -> None:
        raise OSError("stdout closed")

    latency = ChangeLatency(sink=broken, clock=lambda: NOW)
    calls = []
    measured = latency.target("t")(calls.append)
    [rec] = parse_event(make_event([record(1, stamp=int(NOW * 1000))]))
    measured(rec)
    assert calls == [rec]
    assert latency.flush() == 0 and latency.pending() == {}
