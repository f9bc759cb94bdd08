"""What the platform did, read back from where it did it: tables, CloudWatch Logs (EMF),
the audit bucket, the emulator's SES/SNS records, the on-failure queues and Redis."""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.deploy import Platform
from streamkit import deserialize

REPO = Path(__file__).resolve().parents[2]
LATENCY_METRIC = "ChangeToHandlerLatency"
TERMINAL = ("SHIPPED", "CANCELLED", "REJECTED", "PAYMENT_FAILED")


def scan(platform: Platform, table: str, **options: Any) -> list[dict[str, Any]]:
    pages = (
        platform.client("dynamodb")
        .get_paginator("scan")
        .paginate(TableName=table, ConsistentRead=True, **options)
    )
    return [deserialize(item) for page in pages for item in page["Items"]]


def orders(platform: Platform) -> dict[str, dict[str, Any]]:
    """Every order in the orders table, by order id."""
    return {
        str(item["pk"]).removeprefix("ORDER#"): item
        for item in scan(platform, platform.tables["orders"])
        if str(item.get("pk", "")).startswith("ORDER#")
    }


def order_statuses(platform: Platform, order_ids: Iterable[str]) -> dict[str, str]:
    """The status of each of ``order_ids`` (absent ones left out): what the settle poll needs,
    and no more.

    The poll runs every few seconds while the platform works, and each request it makes runs
    in the emulator under its one DynamoDB lock, competing with the platform it measures. A
    Scan costs the emulator about 0.05 ms of CPU per item in the table however little it
    returns (moto copies every item; measured with scripts/loadtest/emulator_cost.py: 280 ms
    per Scan of a 20-orders/s run, a fifth of the emulator's CPU), and this process then decodes
    it where the runner shares the GIL. So the poll reads only the orders still open, by key,
    100 per BatchGetItem, projected to the key and status: the work shrinks as orders settle."""
    client = platform.client("dynamodb")
    table = platform.tables["orders"]
    wanted = [{"pk": {"S": f"ORDER#{oid}"}} for oid in dict.fromkeys(order_ids)]
    statuses: dict[str, str] = {}
    for start in range(0, len(wanted), 100):
        keys: list[dict[str, Any]] = wanted[start : start + 100]
        while keys:
            answer = client.batch_get_item(
                RequestItems={
                    table: {
                        "Keys": keys,
                        "ConsistentRead": True,
                        "ProjectionExpression": "pk, #s",
                        "ExpressionAttributeNames": {"#s": "status"},
                    }
                }
            )
            for item in answer["Responses"].get(table, []):
                statuses[item["pk"]["S"].removeprefix("ORDER#")] = item["status"]["S"]
            keys = answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", [])
    return statuses


@dataclass
class Metrics:
    """EMF documents of the platform's functions, from CloudWatch Logs."""

    latency: dict[str, list[tuple[int, list[float]]]] = field(default_factory=dict)
    """target -> [(document timestamp ms, values)]"""
    totals: dict[str, dict[str, float]] = field(default_factory=dict)
    """dimension value (Service or Target) -> metric -> sum"""
    documents: int = 0

    def latencies(self, since_ms: int = 0, until_ms: int | None = None) -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for target, docs in self.latency.items():
            values = [
                v
                for stamp, vs in docs
                if stamp >= since_ms and (until_ms is None or stamp < until_ms)
                for v in vs
            ]
            if values:
                out[target] = values
        return out


def emf_metrics(platform: Platform, since_ms: int) -> Metrics:
    logs = platform.client("logs")
    metrics = Metrics()
    latency: dict[str, list[tuple[int, list[float]]]] = defaultdict(list)
    totals: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for function in platform.functions.values():
        group = f"/aws/lambda/{function['function_name']}"
        try:
            pages = logs.get_paginator("filter_log_events").paginate(
                logGroupName=group, startTime=since_ms
            )
            events = [event for page in pages for event in page["events"]]
        except logs.exceptions.ResourceNotFoundException:
            continue
        for event in events:
            document = _emf(event["message"])
            if document is None:
                continue
            metrics.documents += 1
            directive = document["_aws"]["CloudWatchMetrics"][0]
            dimension = next(
                (str(document[d]) for ds in directive.get("Dimensions", []) for d in ds
                 if d in ("Target", "Service") and d in document),
                function["function_name"],
            )  # fmt: skip
            stamp = int(document["_aws"].get("Timestamp", event["timestamp"]))
            for metric in directive.get("Metrics", []):
                name = metric["Name"]
                value = document.get(name)
                values = value if isinstance(value, list) else [value]
                numbers = [float(v) for v in values if isinstance(v, int | float)]
                if name == LATENCY_METRIC:
                    latency[dimension].append((stamp, numbers))
                else:
                    totals[dimension][name] += sum(numbers)
    metrics.latency = dict(latency)
    metrics.totals = {k: dict(v) for k, v in totals.items()}
    return metrics


def _emf(message: str) -> dict[str, Any] | None:
    if not message.startswith("{") or '"_aws"' not in message:
        return None
    try:
        document = json.loads(message)
        document["_aws"]["CloudWatchMetrics"][0]
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    return document if isinstance(document, dict) else None


def emulator_messages(platform: Platform, route: str) -> list[dict[str, Any]] | None:
    """The embedded emulator's record of sent emails/SMS (``/_streamkit/ses/messages``,
    ``/_streamkit/sns/sms``); None where the endpoint has no such route."""
    try:
        with urllib.request.urlopen(f"{platform.endpoint_url}{route}", timeout=30) as response:
            body = json.loads(response.read())
    except (urllib.error.URLError, ValueError):
        return None
    messages = body.get("messages")
    return list(messages) if isinstance(messages, list) else None


@dataclass
class AuditArchive:
    lines: int = 0
    by_table: dict[str, int] = field(default_factory=dict)
    duplicate_event_ids: int = 0
    pii_leaks: int = 0
    objects: int = 0


def audit_archive(platform: Platform, pii_markers: tuple[str, ...]) -> AuditArchive:
    s3 = platform.client("s3")
    bucket = platform.outputs["audit_bucket"]
    archive = AuditArchive()
    seen: set[str] = set()
    by_table: dict[str, int] = defaultdict(int)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="audit/"):
        for entry in page.get("Contents", []):
            archive.objects += 1
            body = s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read().decode()
            for line in body.splitlines():
                if not line.strip():
                    continue
                archive.lines += 1
                if any(marker in line for marker in pii_markers):
                    archive.pii_leaks += 1
                record = json.loads(line)
                by_table[str(record.get("table"))] += 1
                event_id = str(record.get("event_id"))
                if event_id in seen:
                    archive.duplicate_event_ids += 1
                seen.add(event_id)
    archive.by_table = dict(by_table)
    return archive


@dataclass
class DeadLetters:
    messages: dict[str, int] = field(default_factory=dict)  # function -> messages
    order_ids: dict[str, set[str]] = field(default_factory=dict)  # function -> order ids
    unreadable: int = 0


def dead_letters(platform: Platform) -> DeadLetters:
    """Each function's on-failure queue, and the orders its records describe (read back from
    the stream, as ``streamkit dlq show`` does)."""
    from streamkit.ops.failure_records import parse_failure_record
    from streamkit.ops.queues import peek
    from streamkit.ops.replay import read_batch

    sqs, streams = platform.client("sqs"), platform.client("dynamodbstreams")
    found = DeadLetters()
    for name, function in platform.functions.items():
        url = function.get("dlq_url")
        if not url:
            continue
        messages = peek(sqs, url, 10_000, hold_s=30)
        found.messages[name] = len(messages)
        ids: set[str] = set()
        for message in messages:
            failure = parse_failure_record(message.body)
            if failure is None:
                found.unreadable += 1
                continue
            try:
                records = read_batch(streams, failure)
            except Exception:
                found.unreadable += 1
                continue
            for record in records:
                pk = record["dynamodb"]["Keys"].get("pk", {}).get("S", "")
                if pk.startswith("ORDER#"):
                    ids.add(pk.removeprefix("ORDER#"))
        found.order_ids[name] = ids
    return found


@dataclass
class CacheCheck:
    entries: int = 0
    stale: list[str] = field(default_factory=list)
    generations: dict[str, int | None] = field(default_factory=dict)
    """order id -> its ``gen:order:<id>`` (one INCR per invalidation), None when absent."""
    checked: bool = False


def cache_check(platform: Platform, order_ids: list[str] | None = None) -> CacheCheck:
    """Every cached order/product entry in Redis must equal its item in the table; and the
    invalidation generation of each of ``order_ids`` (to compare with its final version)."""
    check = CacheCheck()
    if not platform.redis_url:
        return check
    import redis

    plain = storefront_module().plain
    client = redis.Redis.from_url(platform.redis_url)
    ids = list(order_ids or [])
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        values = client.mget([f"gen:order:{oid}" for oid in chunk])
        for oid, value in zip(chunk, values, strict=True):
            check.generations[oid] = None if value is None else int(value)
    dynamodb = platform.client("dynamodb")
    tables = {"order": ("orders", "ORDER#"), "product": ("products", "PRODUCT#")}
    for kind, (table, prefix) in tables.items():
        for raw_key in client.scan_iter(match=f"{kind}:*", count=1000):
            key = raw_key.decode()
            cached = client.get(key)
            if cached is None:
                continue  # expired or invalidated meanwhile
            check.entries += 1
            item = dynamodb.get_item(
                TableName=platform.tables[table],
                Key={"pk": {"S": prefix + key.split(":", 1)[1]}},
                ConsistentRead=True,
            ).get("Item")
            fresh = None if item is None else plain(deserialize(item))
            if json.loads(cached) != fresh:
                check.stale.append(key)
    check.checked = True
    return check


def storefront_module() -> Any:
    handlers = str(REPO / "handlers")
    if handlers not in sys.path:
        sys.path.insert(0, handlers)
    from orderplatform import storefront

    return storefront


def aggregates(platform: Platform) -> list[dict[str, Any]]:
    return scan(platform, platform.tables["aggregates"])
