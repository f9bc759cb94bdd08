"""Soak: a steady write rate through the local runtime; resources and latency must stay flat.

    python scripts/soak.py                       # 10 minutes at 20 writes/s, report in RELIABILITY.md
    python scripts/soak.py --seconds 60 --no-write   # the CI version (tests/reliability/test_soak.py)

Pipeline: ``streamkit emulator`` in a child process -> the Runner in this process -> function
workers (child processes) running the reporting function of tests/helpers/runner_support.py.
Every 2 s it samples RSS and open file descriptors of the emulator, the runner and the workers
(from /proc), and it measures each record's latency from its write to the end of the invoke that
processed it.

Flat means, comparing the second quarter of the run (after warm-up, the baseline taken in the
same run on the same loaded machine) with the last quarter: RSS of each process grows less than
20 %, open descriptors by at most 8, and the median latency less than doubles (plus 50 ms). The
JSON and PNG go to ``--out``; exit status 1 if not flat or if a record was not processed.

The reports travel through an SQS queue that a thread drains continuously (batch deletes), and
the queue's depth is sampled with the rest: the 10-minute run of 2026-12-06 exited 1 with 1,141
records "not processed" that the runner had processed (its counters: succeeded 12000), because
the script only drained for 0.3 s every 2 s; moto's ReceiveMessage scans the whole queue, so as
the backlog grew each receive got slower and the drain fell further behind.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from _reliability_doc import emulator, today, write_section


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def sample(emulator_pid: int) -> dict[str, Any]:
    me = os.getpid()
    workers = [p for p in _children(me) if p != emulator_pid]
    point: dict[str, Any] = {"t": time.monotonic()}
    for name, pids in (("emulator", [emulator_pid]), ("runner", [me]), ("workers", workers)):
        try:
            point[f"{name}_rss_mb"] = sum(_rss_mb(p) for p in pids)
            point[f"{name}_fds"] = sum(_fds(p) for p in pids)
        except OSError:  # a worker exited between listing and reading
            point[f"{name}_rss_mb"], point[f"{name}_fds"] = float("nan"), 0
    point["workers"] = len(workers)
    return point


def _median(values: list[float]) -> float:
    values = [v for v in values if v == v]
    return statistics.median(values) if values else 0.0


def judge(samples: list[dict[str, Any]], latencies: list[tuple[float, float]]) -> dict[str, Any]:
    """Second quarter against last quarter, for each series."""
    start, end = samples[0]["t"], samples[-1]["t"]
    q = (end - start) / 4

    def window(lo: float, hi: float) -> list[dict[str, Any]]:
        return [s for s in samples if start + lo * q <= s["t"] <= start + hi * q]

    early, late = window(1, 2), window(3, 4)
    verdict: dict[str, Any] = {}
    for name in ("emulator", "runner", "workers"):
        a = _median([s[f"{name}_rss_mb"] for s in early])
        b = _median([s[f"{name}_rss_mb"] for s in late])
        fa = _median([s[f"{name}_fds"] for s in early])
        fb = _median([s[f"{name}_fds"] for s in late])
        verdict[name] = {
            "rss_mb": [round(a, 1), round(b, 1)],
            "fds": [fa, fb],
            "rss_flat": b <= a * 1.2 + 1,
            "fds_flat": fb <= fa + 8,
        }
    # The emulator is a data store: it keeps every item, every stream record (24 h) and every
    # log line shipped to it, so at a steady write rate its RSS grows linearly with the writes
    # (the runner and the workers store nothing: the 20 % bound above holds for them). Its
    # test is that the growth per write does not rise: the last quarter's KB per write, by
    # least squares, at most 1.5 x the second quarter's (+0.5 KB), unless it stays within the
    # bound the others get (short runs: a 1 MB arena step is noise over 150 writes). A leak that grows with
    # what is stored (a copy per request of a growing structure) raises it; the measured
    # storage cost of a write (``calibrate``) says how much of it is the data itself.
    slope_a, slope_b = _kb_per_write(early), _kb_per_write(late)
    emulator = verdict["emulator"]
    emulator["kb_per_write"] = [round(slope_a, 2), round(slope_b, 2)]
    emulator["rss_flat"] = emulator["rss_flat"] or slope_b <= 1.5 * slope_a + 0.5
    lat_early = [ms for t, ms in latencies if start + q <= t <= start + 2 * q]
    lat_late = [ms for t, ms in latencies if t >= start + 3 * q]
    p50a, p50b = _median(lat_early), _median(lat_late)
    verdict["latency_p50_ms"] = [round(p50a, 1), round(p50b, 1)]
    verdict["latency_flat"] = p50b <= 2 * p50a + 50
    verdict["flat"] = verdict["latency_flat"] and all(
        verdict[n]["rss_flat"] and verdict[n]["fds_flat"] for n in ("emulator", "runner", "workers")
    )
    return verdict


def _kb_per_write(window: list[dict[str, Any]]) -> float:
    """Least-squares slope of the emulator's RSS (KB) against the writes so far."""
    points = [(s["written"], s["emulator_rss_mb"] * 1024) for s in window if "written" in s]
    if len(points) < 2:
        return 0.0
    mx = statistics.fmean(x for x, _ in points)
    my = statistics.fmean(y for _, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def calibrate(aws: Any, emulator_pid: int, table: str, writes: int = 1000) -> float:
    """KB of emulator RSS per item written to a stream table with no consumer: what storing
    one write (the item and its stream record) costs, measured in the same run."""
    from tests.helpers.streams import create_stream_table

    create_stream_table(aws.dynamodb, table, view_type="NEW_AND_OLD_IMAGES")
    before = _rss_mb(emulator_pid)
    for i in range(writes):
        aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": f"c{i}"}})
    return (_rss_mb(emulator_pid) - before) * 1024 / writes


def plot(samples: list[dict[str, Any]], latencies: list[tuple[float, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t0 = samples[0]["t"]
    fig, axes = plt.subplots(3, 1, figsize=(8, 9), sharex=True)
    for name in ("emulator", "runner", "workers"):
        xs = [s["t"] - t0 for s in samples]
        axes[0].plot(xs, [s[f"{name}_rss_mb"] for s in samples], label=name)
        axes[1].plot(xs, [s[f"{name}_fds"] for s in samples], label=name)
    axes[0].set_ylabel("RSS MB")
    axes[1].set_ylabel("open fds")
    axes[2].scatter([t - t0 for t, _ in latencies], [ms for _, ms in latencies], s=2)
    axes[2].set_ylabel("write -> processed ms")
    axes[2].set_xlabel("seconds")
    for ax in axes[:2]:
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main() -> int:
    import logging

    from tests.helpers import AwsClients
    from tests.helpers.runner_support import Call, deploy
    from tests.reliability.scenarios import scenario_factory

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--rate", type=float, default=20.0, help="writes per second")
    parser.add_argument("--out", default="results/soak")
    parser.add_argument("--drain-seconds", type=float, default=60.0,
                        help="after the last write, how long to wait for the last reports")  # fmt: skip
    parser.add_argument("--no-write", action="store_true", help="leave RELIABILITY.md alone")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    with emulator(process=True) as emu, tempfile.TemporaryDirectory() as state:
        emulator_pid = emu.pid
        aws = AwsClients(emu.endpoint_url)
        make, _made = scenario_factory(aws, emu.endpoint_url, Path(state))
        s = make()
        s.map(FunctionName=deploy(s, MODE="raise"), BatchSize=100, MaximumBatchingWindowInSeconds=0)
        runner = s.runner()
        written: dict[str, float] = {}
        processed: dict[str, float] = {}
        latencies: list[tuple[float, float]] = []
        samples: list[dict[str, Any]] = []
        lock = threading.Lock()
        stop = threading.Event()
        offset = time.time() - time.monotonic()  # report times are wall clock
        sqs = AwsClients(emu.endpoint_url).sqs  # the drain thread's own client

        def drain() -> None:
            """Receive and batch-delete reports until stopped, so the queue stays short."""
            while not stop.is_set():
                messages = sqs.receive_message(
                    QueueUrl=s.record_queue, MaxNumberOfMessages=10, WaitTimeSeconds=0
                ).get("Messages", [])
                if not messages:
                    stop.wait(0.05)
                    continue
                sqs.delete_message_batch(
                    QueueUrl=s.record_queue,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                        for n, m in enumerate(messages)
                    ],
                )
                with lock:
                    for message in messages:
                        call = Call(json.loads(message["Body"]))
                        finished = float(call.body["finished"]) - offset
                        for key in call.processed():
                            if key in written and key not in processed:
                                processed[key] = finished
                                latencies.append((written[key], (finished - written[key]) * 1000))

        def depth() -> int:
            attributes = sqs.get_queue_attributes(
                QueueUrl=s.record_queue, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]
            return int(attributes["ApproximateNumberOfMessages"])

        drainer = threading.Thread(target=drain, name="soak-drain", daemon=True)
        drainer.start()
        started = time.monotonic()
        next_sample = started
        i = 0
        try:
            while time.monotonic() - started < args.seconds:
                due = started + i / args.rate
                if time.monotonic() < due:
                    time.sleep(min(0.05, due - time.monotonic()))
                    continue
                key = f"s{i}"
                with lock:  # before the put: its report may arrive before put_item returns
                    written[key] = time.monotonic()
                s.put(key)
                i += 1
                if time.monotonic() >= next_sample:
                    point = sample(emulator_pid)
                    point["written"] = i
                    point["report_queue_depth"] = depth()
                    samples.append(point)
                    next_sample += 2.0
            deadline = time.monotonic() + args.drain_seconds
            while time.monotonic() < deadline:
                with lock:
                    if len(processed) >= len(written):
                        break
                time.sleep(0.2)
            point = sample(emulator_pid)
            point["report_queue_depth"] = depth()
            samples.append(point)
            runner_stats = runner.stats()
            storage_kb = calibrate(
                aws, emulator_pid, s.unique_name("calibrate"), writes=max(100, min(1000, i // 4))
            )
            shards = aws.dynamodbstreams.describe_stream(StreamArn=s.stream_arn)[
                "StreamDescription"
            ]["Shards"]
        finally:
            stop.set()
            drainer.join(timeout=10)
            runner.stop()
    # Resources and latency are judged over the steady-rate part only, not the final drain.
    steady = [p for p in samples if p["t"] <= started + args.seconds] or samples
    verdict = judge(steady, latencies)
    all_lat = sorted(ms for _, ms in latencies)
    result = {
        "seconds": args.seconds,
        "rate": args.rate,
        "written": len(written),
        "processed": len(processed),
        "latency_ms": {
            "p50": round(_median(all_lat), 1),
            "p95": round(all_lat[int(len(all_lat) * 0.95)] if all_lat else 0.0, 1),
            "max": round(all_lat[-1] if all_lat else 0.0, 1),
        },
        "verdict": verdict,
        "storage_kb_per_write": round(storage_kb, 2),
        "runner_stats": runner_stats,
        "shards": shards,
        "samples": samples,
    }
    (out / "soak.json").write_text(json.dumps(result, indent=2))
    plot(samples, latencies, out / "soak.png")
    ok = verdict["flat"] and len(processed) == len(written)
    lines = [
        f"Command: `python scripts/soak.py --seconds {args.seconds:g} --rate {args.rate:g}` "
        f"({today()}): {len(written)} writes, {len(processed)} processed; "
        f"latency p50 {result['latency_ms']['p50']} ms, p95 {result['latency_ms']['p95']} ms, "
        f"max {result['latency_ms']['max']} ms; report queue depth at most "
        f"{max(p.get('report_queue_depth', 0) for p in samples)}. Plot: `{out / 'soak.png'}`.",
        "",
        "| Process | RSS MB (2nd quarter -> last) | Open fds (2nd quarter -> last) | Flat |",
        "|---|---|---|---|",
    ]
    for name in ("emulator", "runner", "workers"):
        v = verdict[name]
        if name == "emulator":
            ka, kb = v["kb_per_write"]
            lines.append(
                f"| emulator | {v['rss_mb'][0]} -> {v['rss_mb'][1]} ({ka} -> {kb} KB per write; "
                f"storing a write costs {result['storage_kb_per_write']} KB) | "
                f"{v['fds'][0]} -> {v['fds'][1]} | {'yes' if v['rss_flat'] and v['fds_flat'] else 'NO'} |"
            )  # fmt: skip
            continue
        lines.append(
            f"| {name} | {v['rss_mb'][0]} -> {v['rss_mb'][1]} | {v['fds'][0]} -> {v['fds'][1]} | "
            f"{'yes' if v['rss_flat'] and v['fds_flat'] else 'NO'} |"
        )
    a, b = verdict["latency_p50_ms"]
    lines += ["", f"Median latency, 2nd quarter -> last: {a} -> {b} ms "
              f"({'flat' if verdict['latency_flat'] else 'DRIFTS'})."]  # fmt: skip
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section("soak", body, "Soak")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
