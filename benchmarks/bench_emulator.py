"""The embedded emulator's own speed, side by side with plain moto in the same run.

Each endpoint is a server in its own process, as a user runs it:

- ``moto``: plain ``moto`` (its ThreadedMotoServer, no streamkit patches): the anchor;
- ``streamkit``: ``streamkit emulator`` of this checkout;
- ``before`` (only when ``STREAMKIT_BENCH_BEFORE_SRC`` names another checkout's ``src``): the
  same command run from that code, for before/after figures in one run.

On each, a table with a NEW_AND_OLD_IMAGES stream gets realistic orders (``_data.order_item``,
28 attributes with nested maps, lists, sets and binary; ``STREAMKIT_BENCH_ITEMS=tiny`` for a
key and two short attributes instead), and three rates are measured:

- PutItem items/s: one put_item after another (boto3), ``PUTS`` items;
- BatchWriteItem items/s: 25 items per call (boto3), ``BATCH_ITEMS`` items;
- GetRecords records/s: the whole stream read from TRIM_HORIZON with Limit 1000, by a thin
  signed-HTTP client (json.loads only) so the figure is the server's; the first read of each
  record and a repeated read are reported apart (streamkit builds a record's JSON once).

Rounds alternate which endpoint goes first; the best round of each counts. Target (issue 12):
GetRecords at least 5x plain moto's, answers unchanged (the integration tests compare them).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from benchmarks import _data

PUTS = int(os.environ.get("STREAMKIT_BENCH_PUTS", "300"))
BATCH_ITEMS = int(os.environ.get("STREAMKIT_BENCH_BATCH_ITEMS", "3000"))
ROUNDS = int(os.environ.get("STREAMKIT_BENCH_ROUNDS", "2"))
GET_RECORDS_TARGET = 5.0

_MOTO_CHILD = (
    "import sys\n"
    "from moto.moto_server.threaded_moto_server import ThreadedMotoServer\n"
    "server = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)\n"
    "server.start()\n"
    "print('http://127.0.0.1:%d' % server.get_host_and_port()[1], flush=True)\n"
    "sys.stdin.read()\n"
)
_CREDENTIALS = Credentials("testing", "testing")


@contextmanager
def _server(command: list[str], env: dict[str, str] | None = None) -> Iterator[str]:
    proc = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    try:
        endpoint = proc.stdout.readline().strip()
        if not endpoint.startswith("http"):
            raise RuntimeError(f"{command} did not start: {endpoint!r}")
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _endpoints(stack: ExitStack) -> dict[str, str]:
    emulator = [sys.executable, "-m", "streamkit.cli", "emulator", "--port", "0"]
    endpoints = {
        "moto": stack.enter_context(_server([sys.executable, "-c", _MOTO_CHILD])),
        "streamkit": stack.enter_context(_server(emulator)),
    }
    before = os.environ.get("STREAMKIT_BENCH_BEFORE_SRC")
    if before:
        endpoints["before"] = stack.enter_context(_server(emulator, {"PYTHONPATH": before}))
    return endpoints


# "orders": realistic 28-attribute orders; "tiny": a key and two short attributes.
ITEMS = os.environ.get("STREAMKIT_BENCH_ITEMS", "orders")


def _items(n: int, seed: int) -> list[dict[str, Any]]:
    serializer = TypeSerializer()
    rng = random.Random(seed)
    items = []
    for i in range(n):
        if ITEMS == "tiny":
            item: dict[str, Any] = {"sk": "ORDER", "status": "PAID", "n": i}
        else:
            item = _data.order_item(rng, i)
        item["pk"] = f"ORDER#{seed}-{i:08d}"
        items.append({k: serializer.serialize(v) for k, v in item.items()})
    return items


class _Endpoint:
    def __init__(self, url: str, round_no: int) -> None:
        self.url = url
        self.dynamodb = boto3.client("dynamodb", endpoint_url=url, region_name=_data.REGION)
        self.streams = boto3.client("dynamodbstreams", endpoint_url=url, region_name=_data.REGION)
        self.table = f"bench-{round_no}-{int(time.time() * 1000)}"
        self.stream_arn = self.dynamodb.create_table(
            TableName=self.table,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )["TableDescription"]["LatestStreamArn"]

    def put_items(self, items: list[dict[str, Any]]) -> float:
        started = time.perf_counter()
        for item in items:
            self.dynamodb.put_item(TableName=self.table, Item=item)
        return len(items) / (time.perf_counter() - started)

    def batch_write(self, items: list[dict[str, Any]]) -> float:
        started = time.perf_counter()
        for i in range(0, len(items), 25):
            chunk = [{"PutRequest": {"Item": item}} for item in items[i : i + 25]]
            self.dynamodb.batch_write_item(RequestItems={self.table: chunk})
        return len(items) / (time.perf_counter() - started)

    def _call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        data = json.dumps(body).encode()
        request = AWSRequest(
            "POST",
            self.url + "/",
            data=data,
            headers={
                "X-Amz-Target": f"DynamoDBStreams_20120810.{operation}",
                "Content-Type": "application/x-amz-json-1.0",
            },
        )
        SigV4Auth(_CREDENTIALS, "dynamodb", _data.REGION).add_auth(request)
        sent = urllib.request.Request(
            self.url + "/", data=data, headers=dict(request.headers), method="POST"
        )
        with urllib.request.urlopen(sent, timeout=120) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def read_stream(self) -> tuple[int, float]:
        """(records, records/s) for one full read of every shard from TRIM_HORIZON."""
        started = time.perf_counter()
        shards = self._call("DescribeStream", {"StreamArn": self.stream_arn})
        count = 0
        for shard in shards["StreamDescription"]["Shards"]:
            iterator = self._call(
                "GetShardIterator",
                {
                    "StreamArn": self.stream_arn,
                    "ShardId": shard["ShardId"],
                    "ShardIteratorType": "TRIM_HORIZON",
                },
            )["ShardIterator"]
            while iterator:
                page = self._call("GetRecords", {"ShardIterator": iterator, "Limit": 1000})
                count += len(page["Records"])
                if not page["Records"]:
                    break
                iterator = page.get("NextShardIterator")
        return count, count / (time.perf_counter() - started)


def _measure(url: str, round_no: int) -> dict[str, float]:
    endpoint = _Endpoint(url, round_no)
    put_rate = endpoint.put_items(_items(PUTS, seed=round_no * 2))
    batch_rate = endpoint.batch_write(_items(BATCH_ITEMS, seed=round_no * 2 + 1))
    expected = PUTS + BATCH_ITEMS
    first_count, first_rate = endpoint.read_stream()
    again_count, again_rate = endpoint.read_stream()
    if first_count != expected or again_count != expected:
        raise AssertionError(f"{url}: read {first_count}/{again_count} records, wrote {expected}")
    return {
        "PutItem items/s": put_rate,
        "BatchWriteItem items/s": batch_rate,
        "GetRecords records/s (first read)": first_rate,
        "GetRecords records/s (read again)": again_rate,
    }


def main() -> bool:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    with ExitStack() as stack:
        endpoints = _endpoints(stack)
        best: dict[str, dict[str, float]] = {name: {} for name in endpoints}
        names = list(endpoints)
        for round_no in range(ROUNDS):
            order = names if round_no % 2 == 0 else names[::-1]
            for name in order:
                for metric, rate in _measure(endpoints[name], round_no).items():
                    best[name][metric] = max(rate, best[name].get(metric, 0.0))
    metrics = list(best["moto"])
    print(
        f"\nEmulator throughput, {ITEMS} items (best of {ROUNDS} rounds; "
        f"PUTS={PUTS}, BATCH_ITEMS={BATCH_ITEMS})"
    )
    header = f"{'':38}" + "".join(f"{name:>12}" for name in names) + f"{'x moto':>10}"
    print(header)
    for metric in metrics:
        row = f"{metric:38}" + "".join(f"{best[n][metric]:12.0f}" for n in names)
        print(row + f"{best['streamkit'][metric] / best['moto'][metric]:9.2f}x")
    ratio = min(
        best["streamkit"][m] / best["moto"][m] for m in metrics if m.startswith("GetRecords")
    )
    passed = ratio >= GET_RECORDS_TARGET
    print(
        f"GetRecords vs plain moto: {ratio:.2f}x (target {GET_RECORDS_TARGET}x) "
        f"{'PASS' if passed else 'FAIL'}"
    )
    return passed


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
