"""Figures of a run: percentiles, ``results/load_test.json`` (the contract in design.md, "Load
test results": keys may be added, none renamed), the summary printed at the end, the PNGs."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def summary(values: Sequence[float]) -> dict[str, Any]:
    """count, p50, p95, p99, max (nearest-rank percentiles, ms rounded to 0.1)."""
    ordered = sorted(values)
    if not ordered:
        return {"count": 0, "p50": None, "p95": None, "p99": None, "max": None}

    def pct(q: float) -> float:
        index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
        return round(ordered[index], 1)

    return {
        "count": len(ordered),
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "max": round(ordered[-1], 1),
    }


def write_json(report: dict[str, Any], out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "load_test.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=False, default=str) + "\n")
    return path


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)


def print_summary(report: dict[str, Any], say: Any = print) -> None:
    workload = report["workload"]
    throughput = report["throughput"]
    say("")
    say(
        f"workload: {workload['orders']} orders at {workload['rate']:.0f}/s "
        f"({workload['seconds']:.1f} s) on {report['endpoint_url']}"
        + (" (embedded)" if report["embedded"] else "")
    )
    say(
        f"{'consumer':<28} {'count':>7} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}  (change->handler ms)"
    )
    for name, figures in report["latency_ms"].items():
        say(
            f"{name:<28} {figures['count']:>7} {_fmt(figures['p50']):>8} {_fmt(figures['p95']):>8} "
            f"{_fmt(figures['p99']):>8} {_fmt(figures['max']):>8}"
        )
    completion = report["completion_ms"]
    say(
        f"{'order completion':<28} {completion['count']:>7} {_fmt(completion['p50']):>8} "
        f"{_fmt(completion['p95']):>8} {_fmt(completion['p99']):>8} {_fmt(completion['max']):>8}"
        "  (PLACED -> terminal ms)"
    )
    say(
        f"writes {_fmt(throughput['writes_per_s'])}/s, handled {_fmt(throughput['handled_per_s'])} "
        f"records/s (steady); backlog drain {_fmt(throughput.get('backlog_handled_per_s'))} "
        f"records/s vs emulator GetRecords ceiling {_fmt(throughput['emulator_get_records_per_s'])}"
        f"/s -> {_fmt(throughput.get('drain_vs_ceiling'))}x: {throughput.get('limit', '-')}"
    )
    ops = report.get("operations", {})
    say(
        f"retries (failed invokes) {ops.get('failed_invokes', '-')}, records to on-failure "
        f"queues {ops.get('dlq_messages', '-')}, idempotent skips {ops.get('idempotent_skips', '-')}, "
        f"log lines dropped {ops.get('log_lines_dropped', '-')}"
    )
    account = report["accounting"]
    say(
        f"accounting: written {account['orders_written']} = shipped {account['shipped']} + "
        f"cancelled {account['cancelled']} + rejected {account['rejected']} + in DLQ "
        f"{account['in_dlq']} (missing {len(account['missing'])}); audit lines "
        f"{account['audit_lines']}/{account['changes_written']} changes; emails "
        f"{_fmt(account['emails_sent'])}/{account['emails_expected']}; aggregates "
        f"{'match' if account['aggregates_match'] else 'DIFFER'}; stale cache entries "
        f"{len(account.get('stale_cache_entries', []))}"
    )
    for note in account.get("notes", []):
        say(f"  note: {note}")
    if account["balanced"]:
        say("BALANCED")
    else:
        say("NOT BALANCED:")
        for problem in account["problems"]:
            say(f"  - {problem}")
        if account["missing"]:
            say(f"  missing order ids: {' '.join(account['missing'])}")


def plots(
    out_dir: Path,
    latencies: dict[str, list[float]],
    completion_ms: list[float],
    series: dict[str, list[tuple[float, float]]],
) -> list[Path]:
    """latency per consumer, completion CDF, throughput over time; [] without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plots (pip install -e '.[dev]')")
        return []
    paths = []

    names = sorted(latencies)
    if names:
        fig, ax = plt.subplots(figsize=(10, 0.5 * len(names) + 2))
        ax.boxplot([latencies[n] for n in names], vert=False, whis=(1, 99), sym="")
        ax.set_yticks(range(1, len(names) + 1), names)
        for i, name in enumerate(names, start=1):
            p99 = summary(latencies[name])["p99"]
            ax.annotate(f"p99 {p99:.0f} ms", (p99, i), xytext=(4, 4), textcoords="offset points")
        ax.set(title="change -> handler latency per consumer (box: p25-p75, whiskers p1-p99)",
               xlabel="ms")  # fmt: skip
        ax.axvline(100, color="red", lw=0.8, ls="--", label="target p99 100 ms")
        if max(max(v) for v in latencies.values()) > 2000:
            ax.set_xscale("log")  # a backlog's seconds next to a quiet consumer's milliseconds
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        paths.append(out_dir / "latency_per_consumer.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)

    if completion_ms:
        ordered = sorted(completion_ms)
        fig, ax = plt.subplots(figsize=(8, 5))
        ax.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))])
        ax.axvline(1000, color="red", lw=0.8, ls="--", label="target p99 1 s")
        ax.set(title="order completion (PLACED -> terminal), CDF", xlabel="ms",
               ylabel="share of orders")  # fmt: skip
        ax.legend(loc="lower right")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        paths.append(out_dir / "completion_cdf.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)

    if series:
        fig, ax = plt.subplots(figsize=(10, 5))
        for name, points in sorted(series.items()):
            if len(points) > 1:
                ax.plot([t for t, _ in points], [v for _, v in points], label=name)
        ax.set(title="throughput over time", xlabel="s since start", ylabel="per second")
        ax.legend()
        ax.grid(alpha=0.3)
        fig.tight_layout()
        paths.append(out_dir / "throughput.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def rates(samples: list[tuple[float, float]], t0: float) -> list[tuple[float, float]]:
    """Per-second rates from cumulative (time, count) samples, one point per second."""
    points: list[tuple[float, float]] = []
    last_t, last_v = None, None
    for t, v in samples:
        if last_t is None or last_v is None:
            last_t, last_v = t, v
            continue
        if t - last_t >= 1.0:
            points.append((t - t0, (v - last_v) / (t - last_t)))
            last_t, last_v = t, v
    return points
