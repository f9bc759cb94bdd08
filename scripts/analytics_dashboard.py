#!/usr/bin/env python3
"""The order platform's analytics as a picture: revenue per minute and orders per status.

On AWS the CloudWatch dashboard shows the pipeline; the business figures live in the
aggregates table (``REVENUE#<yyyy-mm-ddThh:mm>`` {revenue, orders}, ``STATUS#<status>``
{count}: handlers/orderplatform/analytics.py). This renders them as one PNG::

    from scripts.analytics_dashboard import read_aggregates, render_dashboard
    render_dashboard(read_aggregates(dynamodb, "aggregates"), "results/analytics.png")

    python scripts/analytics_dashboard.py --endpoint-url URL --table aggregates -o out.png
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

__all__ = ["orders_per_status", "read_aggregates", "render_dashboard", "revenue_per_minute"]


def read_aggregates(dynamodb: Any, table: str) -> list[dict[str, Any]]:
    """Every item of the aggregates table, as plain values (a consistent scan)."""
    from streamkit import deserialize

    pages = dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return [deserialize(item) for page in pages for item in page["Items"]]


def revenue_per_minute(
    aggregates: Iterable[Mapping[str, Any]],
) -> list[tuple[datetime, Decimal, int]]:
    """``(minute, revenue, orders)`` sorted by minute."""
    rows = []
    for item in aggregates:
        pk = str(item.get("pk", ""))
        if pk.startswith("REVENUE#"):
            minute = datetime.strptime(pk.removeprefix("REVENUE#"), "%Y-%m-%dT%H:%M")
            rows.append((minute, Decimal(item.get("revenue", 0)), int(item.get("orders", 0))))
    return sorted(rows)


def orders_per_status(aggregates: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``{status: orders currently in it}`` for the statuses that hold any."""
    counts = {
        str(item["pk"]).removeprefix("STATUS#"): int(item.get("count", 0))
        for item in aggregates
        if str(item.get("pk", "")).startswith("STATUS#")
    }
    return {status: n for status, n in sorted(counts.items()) if n}


def render_dashboard(aggregates: Iterable[Mapping[str, Any]], path: str | Path) -> Path:
    """Write the two-panel PNG to ``path`` (parents created); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    items = list(aggregates)
    revenue = revenue_per_minute(items)
    statuses = orders_per_status(items)
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    if revenue:
        minutes = [m for m, _, _ in revenue]
        left.bar(minutes, [float(r) for _, r, _ in revenue], width=1 / 1440 * 0.8)
        for minute, amount, orders in revenue:
            left.annotate(
                f"{orders}", (minute, float(amount)), ha="center", va="bottom", fontsize=8
            )
        left.xaxis.set_major_formatter(matplotlib.dates.DateFormatter("%H:%M"))
    else:
        left.text(
            0.5, 0.5, "no shipped orders yet", ha="center", va="center", transform=left.transAxes
        )
    left.set_title("Revenue per minute (shipped orders; labels: orders)")
    left.set_xlabel("minute (UTC)")
    left.set_ylabel("revenue")
    if statuses:
        right.bar(list(statuses), list(statuses.values()), color="tab:green")
        right.tick_params(axis="x", rotation=30)
    else:
        right.text(0.5, 0.5, "no orders", ha="center", va="center", transform=right.transAxes)
    right.set_title("Orders per status (now)")
    right.set_ylabel("orders")
    figure.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out


def main(argv: list[str] | None = None) -> int:
    import boto3

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint-url", default=None, help="AWS endpoint (default: AWS)")
    parser.add_argument("--table", required=True, help="the aggregates table")
    parser.add_argument("-o", "--output", type=Path, default=Path("results/analytics.png"))
    args = parser.parse_args(argv)
    dynamodb = boto3.client("dynamodb", endpoint_url=args.endpoint_url)
    print(render_dashboard(read_aggregates(dynamodb, args.table), args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
