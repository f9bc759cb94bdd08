"""End-to-end latency of the event source mapping runner: a table change to the handler start.

Setup, as a user runs it: ``streamkit emulator`` in its own process (the embedded moto server),
a table with a stream, a function deployed from a zip, a mapping (BatchSize 100, window 0,
TRIM_HORIZON) made through the Lambda API, and the runner (``streamkit.local.esm.runner.Runner``)
in this process. A writer puts 100 items/s for ``STREAMKIT_BENCH_SECONDS`` (default 20) seconds;
each item carries its write time. The handler's first line notes the time and appends
``handler start - write time`` for every record to a file.

Targets (issue 3): p50 <= 100 ms and p99 <= 300 ms at 100 writes/s.

Anchors measured in the same run, on the same emulator: put_item (the write itself, included
in the latency) and GetRecords (an empty poll, and a poll returning one record). The runner's
overhead is reported against them: latency p50 as a multiple of one GetRecords, and the part of
the latency that neither the write nor one GetRecords explains (polling cadence, envelope,
filter, invoke dispatch to the warm worker).
"""

from __future__ import annotations

import io
import json
import os
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import boto3

from streamkit.local.emulator.process import spawn_emulator
from streamkit.local.esm.runner import Runner

WRITES_PER_SECOND = 100
SECONDS = float(os.environ.get("STREAMKIT_BENCH_SECONDS", "20"))
P50_TARGET_MS = 100.0
P99_TARGET_MS = 300.0

HANDLER = """
import os, time

OUT = os.environ["LATENCY_FILE"]


def handler(event, context):
    started = time.time()
    lines = []
    for record in event["Records"]:
        image = record["dynamodb"].get("NewImage") or {}
        if "ts" in image:
            lines.append(f"{started - float(image['ts']['N'])!r}\\n")
    with open(OUT, "a") as out:
        out.write("".join(lines))
"""

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _client(service: str, endpoint: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


def _setup(endpoint: str, latency_file: Path) -> tuple[str, str]:
    dynamodb, lambda_, iam = (_client(s, endpoint) for s in ("dynamodb", "lambda", "iam"))
    table = "bench-latency"
    stream_arn: str = dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"},
    )["TableDescription"]["LatestStreamArn"]
    role = iam.create_role(RoleName="bench-role", AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    lambda_.create_function(
        FunctionName="bench-latency",
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": _zip({"app.py": HANDLER})},
        Timeout=30,
        Environment={"Variables": {"LATENCY_FILE": str(latency_file)}},
    )
    uuid: str = lambda_.create_event_source_mapping(
        FunctionName="bench-latency",
        EventSourceArn=stream_arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=100,
        MaximumBatchingWindowInSeconds=0,
    )["UUID"]
    return table, uuid


def _write(endpoint: str, table: str, seconds: float) -> tuple[int, float, list[float]]:
    """Put WRITES_PER_SECOND items/s, paced; returns (count, achieved rate, put_item ms)."""
    dynamodb = _client("dynamodb", endpoint)
    total = int(seconds * WRITES_PER_SECOND)
    put_ms: list[float] = []
    start = time.perf_counter()
    for i in range(total):
        due = start + i / WRITES_PER_SECOND
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        t0 = time.perf_counter()
        dynamodb.put_item(
            TableName=table, Item={"pk": {"S": f"k{i}"}, "ts": {"N": repr(time.time())}}
        )
        put_ms.append((time.perf_counter() - t0) * 1000)
    elapsed = time.perf_counter() - start
    return total, total / elapsed, put_ms


def _get_records_ms(
    endpoint: str, stream_arn: str, calls: int = 200
) -> tuple[list[float], list[float]]:
    """GetRecords round trips on this emulator: empty polls, and polls returning one record."""
    streams = _client("dynamodbstreams", endpoint)
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0][
        "ShardId"
    ]

    def timed(iterator_type: str, limit: int) -> list[float]:
        iterator = streams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard, ShardIteratorType=iterator_type
        )["ShardIterator"]
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            response = streams.get_records(ShardIterator=iterator, Limit=limit)
            times.append((time.perf_counter() - t0) * 1000)
            iterator = response["NextShardIterator"]
        return times

    return timed("LATEST", 100), timed("TRIM_HORIZON", 1)


def main() -> bool:
    with spawn_emulator() as endpoint, tempfile.TemporaryDirectory() as tmp:
        latency_file = Path(tmp) / "latency.txt"
        table, uuid = _setup(endpoint, latency_file)
        stream_arn = _client("lambda", endpoint).get_event_source_mapping(UUID=uuid)[
            "EventSourceArn"
        ]
        with Runner(endpoint, Path(tmp) / "state", reconcile_interval=1.0) as runner:
            runner.wait_until(lambda s: s[uuid]["state"] == "polling", timeout=60)
            writes, rate, put_ms = _write(endpoint, table, SECONDS)
            runner.wait_until(lambda s: s[uuid]["succeeded"] >= writes, timeout=60)
            stats = runner.stats()[uuid]
        latencies = [float(line) * 1000 for line in latency_file.read_text().split()]
        empty_ms, one_ms = _get_records_ms(endpoint, stream_arn)
    return _report(latencies, writes, rate, put_ms, empty_ms, one_ms, stats)


def _report(
    latencies: list[float],
    writes: int,
    rate: float,
    put_ms: list[float],
    empty_ms: list[float],
    one_ms: list[float],
    stats: dict[str, Any],
) -> bool:
    p50, p95, p99 = (_percentile(latencies, q) for q in (50, 95, 99))
    put50, empty50, one50 = (statistics.median(v) for v in (put_ms, empty_ms, one_ms))
    ok = len(latencies) == writes and p50 <= P50_TARGET_MS and p99 <= P99_TARGET_MS
    print(
        f"ESM runner latency, table change -> handler start ({writes} writes at {rate:.1f}/s, embedded emulator)"
    )
    print(f"  p50 {p50:6.1f} ms   (target <= {P50_TARGET_MS:.0f})")
    print(f"  p95 {p95:6.1f} ms")
    print(f"  p99 {p99:6.1f} ms   (target <= {P99_TARGET_MS:.0f})")
    print(
        f"  max {max(latencies):6.1f} ms   records seen by the handler: {len(latencies)}/{writes}"
    )
    print(
        f"  invokes {stats['invoked']} (mean batch {stats['succeeded'] / max(1, stats['invoked']):.1f} records)"
    )
    print("Anchors, same emulator, same run (p50):")
    print(f"  put_item                      {put50:6.2f} ms (part of the latency above)")
    print(f"  GetRecords, empty             {empty50:6.2f} ms")
    print(f"  GetRecords, 1 record          {one50:6.2f} ms")
    print("Runner overhead:")
    print(f"  latency p50 = {p50 / one50:.1f} x one GetRecords (1 record)")
    print(f"  not explained by put_item + one GetRecords: {p50 - put50 - one50:.1f} ms at p50")
    print("PASS" if ok else "FAIL")
    return ok


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
