"""Workflow definitions are checked when written: each stage when it is registered, the whole
graph by ``validate()`` (and before the first record). Running stages against DynamoDB is in
tests/integration/test_routing_workflow.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from streamkit.records import StreamRecord
from streamkit.routing import InvalidRouteError, InvalidWorkflowError, Workflow


def noop(record: StreamRecord) -> None:
    return None


def pipeline() -> Workflow:
    wf = Workflow("orders", table="orders")
    wf.stage("PLACED", next="VALIDATED", on_error="REJECTED")(noop)
    wf.stage("VALIDATED", next=["PAID", "PAYMENT_FAILED"])(noop)
    wf.terminal("PAID", "PAYMENT_FAILED", "REJECTED")
    return wf


def test_a_consistent_graph_validates_and_knows_its_end_states() -> None:
    wf = pipeline()
    wf.validate()
    assert set(wf.stages) == {"PLACED", "VALIDATED"}
    assert wf.stages["VALIDATED"].next == ("PAID", "PAYMENT_FAILED")
    assert wf.stages["VALIDATED"].on_error == "FAILED"  # the workflow's failure state
    # FAILED ends the workflow unless a compensation handles it.
    assert wf.terminal_states == {"PAID", "PAYMENT_FAILED", "REJECTED", "FAILED"}
    with pytest.raises(InvalidWorkflowError, match="fail into itself"):
        wf.compensation("FAILED", next="PAYMENT_FAILED")(noop)
    wf.compensation("FAILED", next="PAYMENT_FAILED", on_error="NEEDS_OPERATOR")(noop)
    assert "FAILED" not in wf.terminal_states
    assert wf.stages["FAILED"].compensation
    with pytest.raises(InvalidWorkflowError, match="NEEDS_OPERATOR"):
        wf.validate()
    wf.terminal("NEEDS_OPERATOR")
    wf.validate()


@pytest.mark.parametrize(
    ("define", "message"),
    [
        (lambda wf: wf.stage("PLACED", next="X")(noop), "already has a stage"),
        (lambda wf: wf.stage("PAID", next="X")(noop), "terminal"),
        (lambda wf: wf.stage("NEW", next="NEW")(noop), "cannot move to itself"),
        (lambda wf: wf.stage("NEW", next=[])(noop), "at least one next state"),
        (lambda wf: wf.stage("NEW", next="PAID", on_error="NEW")(noop), "fail into itself"),
        (lambda wf: wf.stage("", next="PAID")(noop), "non-empty string"),
        (lambda wf: wf.stage("NEW", next="PAID", retry_on=[ValueError, "x"])(noop), "retry_on"),
        (lambda wf: wf.terminal("VALIDATED"), "has a stage"),
    ],
)
def test_invalid_stages_fail_when_registered(
    define: Callable[[Workflow], Any], message: str
) -> None:
    wf = pipeline()
    before = dict(wf.stages)
    with pytest.raises(InvalidWorkflowError, match=message):
        define(wf)
    assert wf.stages == before


def test_async_or_uncallable_stages_are_refused() -> None:
    wf = pipeline()

    async def charge(record: StreamRecord) -> str:
        return "PAID"

    with pytest.raises(InvalidRouteError, match="async"):
        wf.stage("NEW", next="PAID")(charge)
    with pytest.raises(InvalidRouteError, match="callable"):
        wf.stage("NEW", next="PAID")(42)  # type: ignore[arg-type]


def test_validate_finds_states_nobody_handles() -> None:
    wf = Workflow("orders")
    with pytest.raises(InvalidWorkflowError, match="no stages"):
        wf.validate()
    wf.stage("PLACED", next="VALIDATED")(noop)
    with pytest.raises(InvalidWorkflowError, match="'VALIDATED', which has no stage"):
        wf.validate()
    wf.terminal("VALIDATED")
    wf.validate()
    wf.stage("SHIPPING", next="SHIPPED", on_error="LOST")(noop)  # registering invalidates
    with pytest.raises(InvalidWorkflowError, match="'SHIPPED'"):
        wf.handle({"Records": []})  # checked before any record runs


def test_attribute_names_and_outside_writes_are_checked() -> None:
    with pytest.raises(InvalidWorkflowError, match="distinct"):
        Workflow("orders", state_attribute="status", version_attribute="status")
    wf = pipeline()
    with pytest.raises(InvalidWorkflowError, match="no stage"):
        wf.start({"pk": "ORDER#1"}, state="PAID")
    with pytest.raises(InvalidWorkflowError, match="from_states"):
        wf.request({"pk": "ORDER#1"}, "CANCEL_REQUESTED", from_states=[])
    with pytest.raises(InvalidWorkflowError, match="no table"):
        Workflow("t").request({"pk": "ORDER#1"}, "X", from_states=["Y"])


def test_the_stamp_attribute_is_checked_and_reserved_for_the_workflow() -> None:
    with pytest.raises(InvalidWorkflowError, match="stamp_attribute"):
        Workflow("orders", stamp_attribute="status")
    with pytest.raises(InvalidWorkflowError, match="stamp_attribute"):
        Workflow("orders", stamp_attribute="")
    wf = Workflow("orders", table="orders", stamp_attribute="updated_at")
    assert wf.stamp_attribute == "updated_at"
    # The stamp is computed from the workflow's clock, in epoch milliseconds.
    from datetime import UTC, datetime

    wf.clock = lambda: datetime(2026, 1, 1, tzinfo=UTC)
    stamped = wf._stamped({"payment_id": {"S": "p"}})
    assert stamped == {"payment_id": {"S": "p"}, "updated_at": {"N": "1767225600000"}}
    assert Workflow("orders")._stamped({"a": {"S": "b"}}) == {"a": {"S": "b"}}
