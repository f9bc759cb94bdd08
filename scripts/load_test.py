#!/usr/bin/env python3
"""Load test: throughput and change-to-handler latency of a DynamoDB stream consumer.

With no arguments it runs everything on one machine: the embedded emulator (moto's server in
its own process), an ``orders`` table with a stream, a Lambda function deployed from a zip that
bundles streamkit, an event source mapping made through the Lambda API, and the local
``streamkit run`` engine in this process. Two phases:

1. **steady**: orders written at ``--rate`` per second for ``--seconds``; each write is an
   order moving through its workflow (PLACED -> VALIDATED -> PAID -> RESERVED -> SHIPPED), so
   the stream carries INSERTs and MODIFYs of many items. Reports change-to-handler-start
   latency percentiles.
2. **burst**: ``--burst`` items written with BatchWriteItem as fast as the emulator takes them.
   Reports how many records per second the mapping drains.

Every write carries its wall-clock write time; the handler (``process_batch`` over the
records) notes when it started each record, so latency = handler start - write time, the
same clock on one machine. Results go to ``--out`` (default ``results/``): ``load_test.json``
and ``load_test.png`` (latency histogram, latency over time, throughput over time).

Pass ``--endpoint-url`` to target an emulator you started yourself (``streamkit emulator``);
add ``--no-runner`` when the endpoint runs mappings itself (LocalStack).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from build_lambda import build_zip

WORKFLOW = ("PLACED", "VALIDATED", "PAID", "RESERVED", "SHIPPED")

# The function under load: a thin handler on the library, as in production. It appends one
# line per record to a file: sequence number, write time, handler start time, event name.
HANDLER = """
import os
import time

from streamkit import process_batch

OUT = os.environ["LOAD_TEST_FILE"]


def on_record(record, started):
    image = record.new_image or {}
    return f"{record.sequence_number} {image.get('written_at', 0)} {started!r} {record.event_name}\\n"


def handler(event, context):
    started = time.time()
    lines = []

    def run(record):
        lines.append(on_record(record, started))

    response = process_batch(event, run, context=context)
    with open(OUT, "a") as out:
        out.write("".join(lines))
    return response
"""


@dataclass
class Phase:
    name: str
    writes: int = 0
    write_seconds: float = 0.0
    handled: int = 0
    drain_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    handled_at: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "phase": self.name,
            "writes": self.writes,
            "handled": self.handled,
            "write_rate_per_s": round(self.writes / self.write_seconds, 1)
            if self.write_seconds
            else None,
            "drain_rate_per_s": round(self.handled / self.drain_seconds, 1)
            if self.drain_seconds
            else None,
            "latency_ms": {
                "p50": _pct(lat, 50),
                "p90": _pct(lat, 90),
                "p95": _pct(lat, 95),
                "p99": _pct(lat, 99),
                "max": round(lat[-1], 1) if lat else None,
                "mean": round(statistics.fmean(lat), 1) if lat else None,
            },
        }


def _pct(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    index = min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))
    return round(ordered[index], 1)


def _client(service: str, endpoint: str, region: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _deploy(
    endpoint: str, region: str, args: argparse.Namespace, out_file: Path
) -> tuple[str, str]:
    """Table, role, function and mapping, created through the AWS APIs as a user would."""
    suffix = uuid.uuid4().hex[:8]
    table = f"orders-load-{suffix}"
    dynamodb, lambda_, iam = (_client(s, endpoint, region) for s in ("dynamodb", "lambda", "iam"))
    stream_arn: str = dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]["LatestStreamArn"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = iam.create_role(RoleName=f"load-{suffix}", AssumeRolePolicyDocument=json.dumps(trust))
    function = f"orders-load-{suffix}"
    lambda_.create_function(
        FunctionName=function,
        Runtime="python3.12",
        Role=role["Role"]["Arn"],
        Handler="app.handler",
        Code={"ZipFile": build_zip({"app.py": HANDLER})},
        Timeout=30,
        MemorySize=256,
        Environment={"Variables": {"LOAD_TEST_FILE": str(out_file)}},
    )
    mapping: str = lambda_.create_event_source_mapping(
        FunctionName=function,
        EventSourceArn=stream_arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=args.batch_size,
        MaximumBatchingWindowInSeconds=0,
        ParallelizationFactor=args.parallelization,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )["UUID"]
    return table, mapping


def _order_item(order: int, step: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"ORDER#{order:06d}"},
        "status": {"S": WORKFLOW[step % len(WORKFLOW)]},
        "version": {"N": str(step)},
        "customer": {"S": f"CUSTOMER#{order % 97:03d}"},
        "total": {"N": f"{(order * 37) % 500 + 9}.99"},
        "lines": {
            "L": [
                {"M": {"sku": {"S": f"SKU-{(order + i) % 50}"}, "qty": {"N": str(i + 1)}}}
                for i in range(3)
            ]
        },
        "written_at": {"N": repr(time.time())},
    }


def _steady_writes(
    endpoint: str, region: str, table: str, rate: float, seconds: float, writers: int
) -> int:
    """Paced put_item calls from ``writers`` threads, so one slow call does not hold the rate.

    Orders advance through the workflow so MODIFYs follow INSERTs; an order's next step is
    ``orders`` writes later, far apart in time, so the threads never race on one item.
    """
    total = int(rate * seconds)
    orders = max(1, total // len(WORKFLOW))
    start = time.perf_counter()
    local = threading.local()

    def write(i: int) -> None:
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = _client("dynamodb", endpoint, region)
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        client.put_item(TableName=table, Item=_order_item(i % orders, i // orders))

    with ThreadPoolExecutor(max_workers=writers) as pool:
        for future in [pool.submit(write, i) for i in range(total)]:
            future.result()
    return total


def _burst_writes(endpoint: str, region: str, table: str, count: int, offset: int) -> int:
    dynamodb = _client("dynamodb", endpoint, region)
    for start in range(0, count, 25):
        chunk = [
            {"PutRequest": {"Item": _order_item(offset + n, 0)}}
            for n in range(start, min(count, start + 25))
        ]
        dynamodb.batch_write_item(RequestItems={table: chunk})
    return count


def _read_lines(path: Path, skip: int) -> list[tuple[float, float]]:
    """(write time, handler start) for every record line after the first ``skip`` lines."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines()[skip:]:
        _seq, written, started, _name = line.split()
        rows.append((float(written), float(started)))
    return rows


def _runner_stats(runner: Any, mapping: str, handled: int) -> dict[str, Any]:
    """The mapping's counters once the runner has counted every handled record: the handler
    writes its line before its invoke returns, and the runner counts the invoke after."""
    if runner is None:
        return {}
    try:
        stats = runner.wait_until(lambda s: s[mapping]["succeeded"] >= handled, timeout=30)
    except TimeoutError:
        stats = runner.stats()
    return dict(stats.get(mapping, {}))


def _wait_for_lines(path: Path, expected: int, timeout: float) -> float:
    """Seconds until ``expected`` lines exist; raises if the mapping falls behind for good."""
    start = time.perf_counter()
    while True:
        count = len(path.read_text().splitlines()) if path.exists() else 0
        if count >= expected:
            return time.perf_counter() - start
        if time.perf_counter() - start > timeout:
            raise SystemExit(
                f"only {count} of {expected} records reached the handler in {timeout}s"
            )
        time.sleep(0.05)


def _fill(phase: Phase, rows: list[tuple[float, float]]) -> None:
    phase.handled = len(rows)
    phase.latencies_ms = [(started - written) * 1000 for written, started in rows]
    phase.handled_at = [started for _, started in rows]


def _plot(phases: list[Phase], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: skipping plots (pip install 'streamkit[dev]')")
        return False
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    t0 = min((p.handled_at[0] for p in phases if p.handled_at), default=0.0)
    for phase in phases:
        if not phase.latencies_ms:
            continue
        axes[0].hist(phase.latencies_ms, bins=50, alpha=0.6, label=phase.name)
        axes[1].plot(
            [t - t0 for t in phase.handled_at], phase.latencies_ms, ".", ms=2, label=phase.name
        )
        buckets: dict[int, int] = {}
        for t in phase.handled_at:
            buckets[int(t - t0)] = buckets.get(int(t - t0), 0) + 1
        xs = sorted(buckets)
        axes[2].plot(xs, [buckets[x] for x in xs], "-o", ms=3, label=phase.name)
    axes[0].set(title="change -> handler start latency", xlabel="ms", ylabel="records")
    axes[1].set(title="latency over time", xlabel="s since first record", ylabel="ms")
    axes[2].set(
        title="records handled per second", xlabel="s since first record", ylabel="records/s"
    )
    for ax in axes:
        ax.legend()
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def run(args: argparse.Namespace) -> dict[str, Any]:
    from streamkit.local import Runner, spawn_emulator

    region = args.region
    with ExitStack() as stack:
        endpoint = args.endpoint_url
        if endpoint is None:
            endpoint = stack.enter_context(spawn_emulator())
            print(f"embedded emulator at {endpoint}")
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="streamkit-load-"))
        out_file = Path(tmp) / "handled.txt"
        table, mapping = _deploy(endpoint, region, args, out_file)
        print(f"deployed table {table}, mapping {mapping}")
        runner = None
        if not args.no_runner:
            runner = stack.enter_context(Runner(endpoint, Path(tmp) / "state", region=region))
            runner.wait_until(lambda s: s.get(mapping, {}).get("state") == "polling", timeout=60)

        steady = Phase("steady")
        print(f"steady: {args.rate:.0f} writes/s for {args.seconds:.0f}s ...")
        t0 = time.perf_counter()
        steady.writes = _steady_writes(
            endpoint, region, table, args.rate, args.seconds, args.writers
        )
        steady.write_seconds = time.perf_counter() - t0
        _wait_for_lines(out_file, steady.writes, timeout=120)
        steady.drain_seconds = time.perf_counter() - t0
        _fill(steady, _read_lines(out_file, 0))

        burst = Phase("burst")
        if args.burst:
            print(f"burst: {args.burst} items with BatchWriteItem ...")
            t0 = time.perf_counter()
            burst.writes = _burst_writes(endpoint, region, table, args.burst, 10**6)
            burst.write_seconds = time.perf_counter() - t0
            _wait_for_lines(out_file, steady.writes + burst.writes, timeout=300)
            burst.drain_seconds = time.perf_counter() - t0
            _fill(burst, _read_lines(out_file, steady.writes))
        stats = _runner_stats(runner, mapping, steady.writes + burst.writes)
    phases = [p for p in (steady, burst) if p.writes]
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = {
        "endpoint": "embedded" if args.endpoint_url is None else endpoint,
        "settings": {
            "rate": args.rate,
            "seconds": args.seconds,
            "burst": args.burst,
            "batch_size": args.batch_size,
            "writers": args.writers,
            "parallelization_factor": args.parallelization,
        },
        "phases": [p.summary() for p in phases],
        "runner": {k: v for k, v in stats.items() if isinstance(v, (int, float, str))},
    }
    (out_dir / "load_test.json").write_text(json.dumps(report, indent=2) + "\n")
    plotted = _plot(phases, out_dir / "load_test.png")
    _print(report, out_dir, plotted)
    return report


def _print(report: dict[str, Any], out_dir: Path, plotted: bool) -> None:
    print()
    print(
        f"{'phase':<8} {'writes':>7} {'handled':>8} {'write/s':>8} {'drain/s':>8} "
        f"{'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}  (latency ms)"
    )
    for p in report["phases"]:
        lat = p["latency_ms"]
        print(
            f"{p['phase']:<8} {p['writes']:>7} {p['handled']:>8} {p['write_rate_per_s'] or 0:>8} "
            f"{p['drain_rate_per_s'] or 0:>8} {lat['p50']:>7} {lat['p95']:>7} {lat['p99']:>7} {lat['max']:>7}"
        )
    runner = report["runner"]
    if runner:
        print(
            f"runner: invoked {runner.get('invoked')}, succeeded {runner.get('succeeded')}, "
            f"failed {runner.get('failed')}, to destination {runner.get('sent_to_destination')}"
        )
    print(
        f"results: {out_dir / 'load_test.json'}"
        + (f", {out_dir / 'load_test.png'}" if plotted else "")
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100.0, help="steady writes per second (100)")
    parser.add_argument("--seconds", type=float, default=15.0, help="steady phase length (15)")
    parser.add_argument("--burst", type=int, default=2000, help="burst items, 0 to skip (2000)")
    parser.add_argument("--writers", type=int, default=4, help="writer threads (4)")
    parser.add_argument("--batch-size", type=int, default=100, help="mapping BatchSize (100)")
    parser.add_argument("--parallelization", type=int, default=1, help="ParallelizationFactor (1)")
    parser.add_argument(
        "--endpoint-url", default=None, help="use this endpoint, not the embedded one"
    )
    parser.add_argument(
        "--no-runner", action="store_true", help="the endpoint runs mappings itself"
    )
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "us-east-1"))
    parser.add_argument("--out", default="results", help="output directory (results/)")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0 or args.burst < 0 or args.writers < 1:
        parser.error("--rate, --seconds and --writers must be positive and --burst not negative")
    return args


if __name__ == "__main__":
    run(parse_args())
