"""Real-time analytics: revenue per minute and orders per status, as exactly-once counters.

Consumes the ``orders`` stream. Env: ``AGGREGATES_TABLE`` (hash key ``pk`` S), ``FENCE_TABLE``
(the per-record markers of ``CounterAggregator``: hash key ``id`` S, TTL ``expiration``, the
idempotency table format; the idempotency table itself can serve).

Aggregates (one item each, ``ADD``-ed):

- ``REVENUE#<yyyy-mm-ddThh:mm>``: ``revenue`` (sum of ``total``) and ``orders`` (count) of the
  orders that became PAID in that minute (the stream record's creation time, UTC);
- ``STATUS#<status>``: ``count`` of orders currently in that status (+1 on entering, -1 on
  leaving, -1 when an order is deleted).

Each record's deltas and its marker commit in one transaction, so redeliveries, bisection and
parallel lanes never count a record twice (``streamkit.routing.counters``).

Observed like every reference handler: JSON logs, one EMF document per invocation in
``METRICS_NAMESPACE`` (default ``streamkit``) with ``Service=analytics``, X-Ray subsegments
when aws-xray-sdk is present.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import boto3

from streamkit import CounterAggregator, Delta, StreamRecord, became, changed
from streamkit.observability import ObservedConsumer

SERVICE = "analytics"
METRICS_NAMESPACE = os.environ.get("METRICS_NAMESPACE") or "streamkit"

ORDER_PREFIX = "ORDER#"
_became_paid = became("status", "PAID")
_status_changed = changed("status")


def order_metrics(record: StreamRecord) -> Iterator[Delta]:
    if not str(record.keys.get("pk", "")).startswith(ORDER_PREFIX):
        return
    if _became_paid(record):
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


counters = CounterAggregator(
    "order-metrics",
    table=os.environ["AGGREGATES_TABLE"],
    fence_table=os.environ["FENCE_TABLE"],
    deltas=order_metrics,
    client=boto3.client("dynamodb"),
)
handler = ObservedConsumer(counters, namespace=METRICS_NAMESPACE, service=SERVICE)
