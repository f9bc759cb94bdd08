"""The load test's balance (scripts/loadtest/accounting.py) with the contract's formulas:
a run that adds up balances; every way of not adding up is named."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from loadtest.accounting import settle
from loadtest.readback import AuditArchive, CacheCheck, DeadLetters


def _order(status: str, version: int, total: str = "10", skus: tuple[str, ...] = ("A",)) -> Any:
    return {
        "pk": "x",
        "status": status,
        "version": Decimal(version),
        "total": Decimal(total),
        "lines": [{"sku": s, "qty": Decimal(1)} for s in skus],
    }


def _run(**overrides: Any) -> Any:
    orders = {
        "o1": _order("SHIPPED", 5, "10", ("A", "B")),
        "o2": _order("CANCELLED", 2),
        "o3": _order("REJECTED", 2),
        "o4": _order("PLACED", 1),  # poison: in the workflow's on-failure queue
    }
    inputs: dict[str, Any] = {
        "placed": dict.fromkeys(orders, 0),
        "orders": orders,
        "dead": DeadLetters(messages={"workflow": 1}, order_ids={"workflow": {"o4"}}),
        "products_put": 3,
        # 5 + 2 + 2 + 1 order versions, 3 product puts, 2 stock updates of the shipped order
        "audit": AuditArchive(lines=15),
        "emails": _run_inputs_emails(),
        "sms": None,
        "cache": CacheCheck(
            entries=2, generations={"o1": 5, "o2": 2, "o3": 2, "o4": 1}, checked=True
        ),
        "aggregates": [
            {"pk": "STATUS#SHIPPED", "count": 1},
            {"pk": "STATUS#CANCELLED", "count": 1},
            {"pk": "STATUS#REJECTED", "count": 1},
            {"pk": "STATUS#PLACED", "count": 1},
            {"pk": "REVENUE#2026-12-06T04:00", "revenue": Decimal("10"), "orders": 1},
        ],
    }
    inputs.update(overrides)
    return settle(**inputs)


def test_a_run_that_adds_up_balances() -> None:
    account = _run()
    assert account.problems == []
    assert account.balanced
    assert (account.shipped, account.cancelled, account.rejected, account.in_dlq) == (1, 1, 1, 1)
    assert account.changes_written == account.audit_lines == 15
    assert account.emails_sent == account.emails_expected == 6
    assert account.aggregates_match


def test_an_order_that_went_nowhere_is_named() -> None:
    account = _run(dead=DeadLetters(messages={}, order_ids={}))
    assert not account.balanced
    assert account.missing == ["o4"]
    assert "o4" in account.problems[0]


def test_each_sink_that_does_not_add_up_is_a_problem() -> None:
    account = _run(
        audit=AuditArchive(lines=16, duplicate_event_ids=1),
        emails=[{"subject": "Order o1 placed"}],
        cache=CacheCheck(entries=2, stale=["order:o1"], generations={"o2": 1}, checked=True),
        aggregates=[{"pk": "STATUS#SHIPPED", "count": 2}],
    )
    text = "\n".join(account.problems)
    assert "audit lines 16 != changes written 15" in text
    assert "repeat an event id" in text
    assert "distinct emails sent 1 != expected 6" in text
    assert "order:o1" in text
    assert account.invalidations_missed == ["o2"]
    assert "STATUS#SHIPPED count 2 != 1" in text
    assert "revenue 0 != 10" in text
    assert not account.aggregates_match


def _repeated_email_and_invalidation(**overrides: Any) -> Any:
    """The clean run, plus one email and one invalidation of o1 that ran twice."""
    return _run(
        emails=[*_run_inputs_emails(), {"subject": "Order o1 shipped"}],
        cache=CacheCheck(entries=2, generations={"o1": 6, "o2": 2, "o3": 2, "o4": 1}, checked=True),
        **overrides,
    )


def _run_inputs_emails() -> list[dict[str, str]]:
    return [
        {"subject": f"Order {oid} {kind}"}
        for oid, kind in (
            ("o1", "placed"),
            ("o2", "placed"),
            ("o3", "placed"),
            ("o4", "placed"),
            ("o1", "shipped"),
            ("o2", "cancelled"),
        )
    ]


def test_repeats_within_failed_invokes_are_allowed_and_reported() -> None:
    # One failed fan-out invoke of one record: each kind may repeat once.
    account = _repeated_email_and_invalidation(failed_fan_out_records=1)
    assert account.balanced, account.problems
    assert account.duplicates == {"emails": 1, "invalidations": 1}
    assert account.duplicates_unexpected == 0
    assert account.emails_sent == 7  # every message sent, repeats included
    assert any("at-least-once window" in note for note in account.notes)
    assert account.as_json()["duplicates"]["allowed_at_most"] == 1


def test_repeats_without_a_failed_invoke_are_unexpected() -> None:
    account = _repeated_email_and_invalidation(failed_fan_out_records=0)
    assert not account.balanced
    assert account.duplicates_unexpected == 2
    assert "2 unexpected repeated side effects" in "\n".join(account.problems)
    # A repeat is not a lost invalidation.
    assert account.invalidations_missed == []
