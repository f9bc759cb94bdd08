"""The balance a run must strike, with the platform contract's formulas.

- orders written = SHIPPED + CANCELLED + rejected (REJECTED, PAYMENT_FAILED) + in the workflow's
  on-failure queue; any other order is *missing*, by id.
- audit lines = changes written = Σ final order versions (every write of an order bumps its
  version by one; the INSERT is version 1) + product puts + Σ over SHIPPED orders of their
  distinct skus (one stock update each).
- emails sent = orders written + shipped + cancelled (PLACED for every order, then SHIPPED or
  CANCELLED); SMS the same over orders with a phone.
- no entry in Redis differs from its item, and every invalidation reached Redis: an order's
  ``gen:order:<id>`` (one INCR per real change) equals its final version.
- aggregates: ``STATUS#<s>.count`` = orders whose final status is s; Σ ``REVENUE#*`` revenue =
  Σ total of SHIPPED orders, Σ orders = shipped.

Duplicates, split in two. The fan-out functions write their completion markers when an invoke
ends (batched idempotency, see streamkit.idempotency.stream): an invoke that never returns (a
timeout, a crashed worker) leaves its side effects without markers, and Lambda's redelivery
repeats the non-conditional ones (emails, SMS, invalidations). The docs allow exactly that:
at-least-once in that window. So each distinct notification must be there exactly once, and
repeats are *allowed* up to the records of the fan-out invokes that failed (each can repeat its
batch once per failure); any repeat beyond that, or any when no invoke failed, is *unexpected*
and unbalances the account. The audit trail and the aggregates are exactly-once by construction
(conditional put, transactional fence): a repeat there is always unexpected.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from loadtest.readback import TERMINAL, AuditArchive, CacheCheck, DeadLetters

_SUBJECT_ID = re.compile(r"^Order (\S+) ")


@dataclass
class Account:
    orders_written: int = 0
    shipped: int = 0
    cancelled: int = 0
    rejected: int = 0
    in_dlq: int = 0
    missing: list[str] = field(default_factory=list)
    changes_written: int = 0
    audit_lines: int = 0
    emails_expected: int = 0
    emails_sent: int | None = None
    sms_expected: int = 0
    sms_sent: int | None = None
    cache_entries: int = 0
    stale_cache_entries: list[str] = field(default_factory=list)
    invalidations_missed: list[str] = field(default_factory=list)
    aggregates_match: bool = False
    aggregate_differences: list[str] = field(default_factory=list)
    final_status: dict[str, int] = field(default_factory=dict)
    duplicates: dict[str, int] = field(default_factory=dict)
    """kind (emails, sms, invalidations) -> repeats of one change's side effect"""
    duplicate_window_records: int = 0
    """records of fan-out invokes that failed: the repeats the docs allow, at most"""
    duplicates_unexpected: int = 0
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def balanced(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "balanced": self.balanced,
            "orders_written": self.orders_written,
            "shipped": self.shipped,
            "cancelled": self.cancelled,
            "rejected": self.rejected,
            "in_dlq": self.in_dlq,
            "missing": self.missing,
            "changes_written": self.changes_written,
            "audit_lines": self.audit_lines,
            "emails_expected": self.emails_expected,
            "emails_sent": self.emails_sent,
            "aggregates_match": self.aggregates_match,
            "sms_expected": self.sms_expected,
            "sms_sent": self.sms_sent,
            "cache_entries_checked": self.cache_entries,
            "stale_cache_entries": self.stale_cache_entries,
            "invalidations_missed": self.invalidations_missed,
            "aggregate_differences": self.aggregate_differences,
            "final_status": self.final_status,
            "duplicates": {
                "by_kind": self.duplicates,
                "allowed_at_most": self.duplicate_window_records,
                "unexpected": self.duplicates_unexpected,
            },
            "problems": self.problems,
            "notes": self.notes,
        }


def settle(
    placed: dict[str, int],
    orders: dict[str, dict[str, Any]],
    dead: DeadLetters,
    products_put: int,
    audit: AuditArchive,
    emails: list[dict[str, Any]] | None,
    sms: list[dict[str, Any]] | None,
    cache: CacheCheck,
    aggregates: list[dict[str, Any]],
    failed_fan_out_records: int = 0,
) -> Account:
    """``failed_fan_out_records``: records in fan-out invokes that failed (failed invokes x
    their batch size), the window in which the docs allow a side effect to repeat."""
    account = Account(orders_written=len(placed))
    account.duplicate_window_records = failed_fan_out_records
    ours = {oid: orders.get(oid) for oid in placed}
    workflow_dlq = dead.order_ids.get("workflow", set())
    status_counts: Counter[str] = Counter()
    for order_id, item in sorted(ours.items()):
        status = str(item["status"]) if item else "ABSENT"
        status_counts[status] += 1
        if status == "SHIPPED":
            account.shipped += 1
        elif status == "CANCELLED":
            account.cancelled += 1
        elif status in ("REJECTED", "PAYMENT_FAILED"):
            account.rejected += 1
        elif order_id in workflow_dlq:
            account.in_dlq += 1
        else:
            account.missing.append(order_id)
    account.final_status = dict(sorted(status_counts.items()))
    if account.missing:
        shown = ", ".join(account.missing[:20]) + (" ..." if len(account.missing) > 20 else "")
        account.problems.append(
            f"{len(account.missing)} orders neither terminal nor in the on-failure queue: {shown}"
        )
    for name, ids in dead.order_ids.items():
        if name != "workflow" and ids:
            account.problems.append(f"{len(ids)} orders' changes in {name}'s on-failure queue")

    shipped_items = [item for item in ours.values() if item and item["status"] == "SHIPPED"]
    account.changes_written = (
        sum(int(item["version"]) for item in ours.values() if item)
        + products_put
        + sum(len({line["sku"] for line in item.get("lines", [])}) for item in shipped_items)
    )
    account.audit_lines = audit.lines
    if account.audit_lines != account.changes_written:
        account.problems.append(
            f"audit lines {account.audit_lines} != changes written {account.changes_written} "
            f"(by table: {audit.by_table})"
        )
    if audit.duplicate_event_ids:
        account.problems.append(f"{audit.duplicate_event_ids} audit lines repeat an event id")
    if audit.pii_leaks:
        account.problems.append(f"{audit.pii_leaks} audit lines carry a redacted field's value")

    account.emails_expected = account.orders_written + account.shipped + account.cancelled
    with_phone = [item for item in ours.values() if item and item.get("phone")]
    account.sms_expected = len(with_phone) + sum(
        1 for item in with_phone if item["status"] in ("SHIPPED", "CANCELLED")
    )
    if emails is None:
        account.notes.append("emails not checked: the endpoint has no SES read-back route")
    else:
        sent = Counter(
            str(message.get("subject"))
            for message in emails
            if (m := _SUBJECT_ID.match(str(message.get("subject", "")))) and m.group(1) in placed
        )
        account.emails_sent = sum(sent.values())
        account.duplicates["emails"] = account.emails_sent - len(sent)
        if len(sent) != account.emails_expected:
            account.problems.append(
                f"distinct emails sent {len(sent)} != expected {account.emails_expected}"
            )
    if sms is not None:
        phones = {item["phone"] for item in with_phone}
        texts = Counter(
            (str(message.get("phone_number")), str(message.get("message")))
            for message in sms
            if message.get("phone_number") in phones
        )
        account.sms_sent = sum(texts.values())
        account.duplicates["sms"] = account.sms_sent - len(texts)
        if len(texts) != account.sms_expected:
            account.problems.append(
                f"distinct SMS sent {len(texts)} != expected {account.sms_expected}"
            )

    if cache.checked:
        account.cache_entries = cache.entries
        account.stale_cache_entries = cache.stale
        if cache.stale:
            account.problems.append(
                f"{len(cache.stale)} stale Redis entries: {', '.join(cache.stale[:10])}"
            )
        # One invalidation per real change: an order's generation is its final version. Fewer
        # is a lost invalidation; more is a repeated one (see "Duplicates" above).
        account.invalidations_missed = sorted(
            oid
            for oid, item in ours.items()
            if item and oid in cache.generations and cache.generations[oid] < int(item["version"])
        )
        account.duplicates["invalidations"] = sum(
            cache.generations[oid] - int(item["version"])
            for oid, item in ours.items()
            if item and oid in cache.generations and cache.generations[oid] > int(item["version"])
        )
        if account.invalidations_missed:
            account.problems.append(
                f"{len(account.invalidations_missed)} orders' invalidations did not all reach "
                f"Redis (gen:order:<id> != version): {', '.join(account.invalidations_missed[:10])}"
            )
    else:
        account.notes.append("Redis not checked: no --redis-url for this platform")

    repeated = sum(account.duplicates.values())
    # Each kind may repeat once per record of a failed invoke: the allowance is per kind.
    account.duplicates_unexpected = sum(
        max(0, n - account.duplicate_window_records) for n in account.duplicates.values()
    )
    if account.duplicates_unexpected:
        account.problems.append(
            f"{account.duplicates_unexpected} unexpected repeated side effects "
            f"({account.duplicates}; failed fan-out invokes held at most "
            f"{account.duplicate_window_records} records)"
        )
    elif repeated:
        account.notes.append(
            f"{repeated} repeated side effects ({account.duplicates}), all within the "
            f"at-least-once window the docs allow: failed fan-out invokes held "
            f"{account.duplicate_window_records} records"
        )

    account.aggregate_differences = _aggregate_differences(aggregates, ours, status_counts)
    account.aggregates_match = not account.aggregate_differences
    if account.aggregate_differences:
        account.problems.append("aggregates differ: " + "; ".join(account.aggregate_differences))
    return account


def _aggregate_differences(
    aggregates: list[dict[str, Any]],
    ours: dict[str, dict[str, Any] | None],
    status_counts: Counter[str],
) -> list[str]:
    differences = []
    counted = {
        str(item["pk"]).removeprefix("STATUS#"): int(item.get("count", 0))
        for item in aggregates
        if str(item.get("pk", "")).startswith("STATUS#")
    }
    for status in sorted(set(counted) | set(status_counts) - {"ABSENT"}):
        if counted.get(status, 0) != status_counts.get(status, 0):
            differences.append(
                f"STATUS#{status} count {counted.get(status, 0)} != "
                f"{status_counts.get(status, 0)} orders"
            )
    revenue_items = [item for item in aggregates if str(item.get("pk", "")).startswith("REVENUE#")]
    revenue = sum((Decimal(str(item.get("revenue", 0))) for item in revenue_items), Decimal(0))
    counted_orders = sum(int(item.get("orders", 0)) for item in revenue_items)
    shipped = [item for item in ours.values() if item and item["status"] == "SHIPPED"]
    expected = sum((Decimal(str(item["total"])) for item in shipped), Decimal(0))
    if revenue != expected:
        differences.append(f"revenue {revenue} != {expected} (Σ total of SHIPPED orders)")
    if counted_orders != len(shipped):
        differences.append(f"revenue orders {counted_orders} != {len(shipped)} shipped")
    return differences


__all__ = ["TERMINAL", "Account", "settle"]
