"""Real-time analytics: revenue per minute and orders per status, as exactly-once counters.

Aggregates (one item each in the aggregates table, hash key ``pk``, ``ADD``-ed):

- ``REVENUE#<yyyy-mm-ddThh:mm>``: ``revenue`` (sum of ``total``) and ``orders`` (count) of the
  orders that became SHIPPED in that minute (the stream record's creation time, UTC);
- ``STATUS#<status>``: ``count`` of orders currently in that status (+1 on entering, -1 on
  leaving, -1 when an order is deleted).

``streamkit.CounterAggregator`` commits each record's deltas with its per-record marker in one
transaction, so redeliveries, bisection and re-cut batches never count a record twice;
``AnalyticsTarget`` runs it for one record as a fan-out target.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from orderplatform.changes import ORDER_PREFIX, is_noop
from streamkit import CounterAggregator, Delta, StreamRecord, became, changed

__all__ = ["AnalyticsTarget", "order_metrics"]

_became_shipped = became("status", "SHIPPED")
_status_changed = changed("status")


def order_metrics(record: StreamRecord) -> Iterator[Delta]:
    if not str(record.keys.get("pk", "")).startswith(ORDER_PREFIX) or is_noop(record):
        return
    if _became_shipped(record):
        minute = record.approximate_creation_time.strftime("%Y-%m-%dT%H:%M")
        total = (record.new_image or {})["total"]
        yield Delta({"pk": f"REVENUE#{minute}"}, {"revenue": total, "orders": 1})
    if _status_changed(record):
        before = (record.old_image or {}).get("status")
        after = (record.new_image or {}).get("status")
        if isinstance(before, str):
            yield Delta({"pk": f"STATUS#{before}"}, {"count": -1})
        if isinstance(after, str):
            yield Delta({"pk": f"STATUS#{after}"}, {"count": 1})


class AnalyticsTarget:
    """The analytics fan-out target: the record's deltas and marker, in one transaction."""

    def __init__(self, *, table: str, fence_table: str, client: Any) -> None:
        self.counters = CounterAggregator(
            "order-metrics",
            table=table,
            fence_table=fence_table,
            deltas=order_metrics,
            client=client,
        )

    def __call__(self, record: StreamRecord) -> int:
        result = self.counters.run({"Records": [record.raw]})
        if result.response()["batchItemFailures"]:
            raise RuntimeError(f"aggregating {record.item_identifier} failed; retried")
        return 1
