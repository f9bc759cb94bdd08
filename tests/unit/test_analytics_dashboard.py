"""scripts/analytics_dashboard.py: the aggregates as figures and as a PNG."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

from scripts.analytics_dashboard import orders_per_status, render_dashboard, revenue_per_minute

AGGREGATES = [
    {"pk": "REVENUE#2026-12-06T04:01", "revenue": Decimal("25.50"), "orders": Decimal(1)},
    {"pk": "REVENUE#2026-12-06T04:00", "revenue": Decimal("10"), "orders": Decimal(2)},
    {"pk": "STATUS#SHIPPED", "count": Decimal(3)},
    {"pk": "STATUS#PLACED", "count": Decimal(0)},
    {"pk": "STATUS#CANCELLED", "count": Decimal(1)},
]


def test_figures_come_from_the_aggregate_items() -> None:
    assert revenue_per_minute(AGGREGATES) == [
        (datetime(2026, 12, 6, 4, 0), Decimal("10"), 2),
        (datetime(2026, 12, 6, 4, 1), Decimal("25.50"), 1),
    ]
    assert orders_per_status(AGGREGATES) == {"CANCELLED": 1, "SHIPPED": 3}


def test_the_dashboard_is_a_png(tmp_path: Path) -> None:
    for name, items in (("full", AGGREGATES), ("empty", [])):
        out = render_dashboard(items, tmp_path / "sub" / f"{name}.png")
        data = out.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
