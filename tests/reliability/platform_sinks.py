"""Each sink of the platform's fan-out down or throttled, with its accounting.

The function is the platform's own ``handlers/order_events`` (zipped by scripts/build_lambda.py
as Terraform deploys it): one mapping, five targets (audit in S3, cache invalidation in Redis,
notify via SES, analytics, fulfilment via Step Functions), each with its own completion
markers, behind the mapping settings docs/reference-app.md recommends (ReportBatchItemFailures,
bisect, retries). While a sink fails, its target fails the record; Lambda redelivers; the
targets that already succeeded are skipped by their markers.

Faults: S3 ``PutObject``, SES ``SendEmail`` and Step Functions ``StartExecution`` answer with
throttling and 5xx errors (fault rules on this scenario's bucket, sender and state machine,
more of them than botocore's retries absorb, so the target really fails); Redis is down: the
scenario's private ``redis-server`` (scripts/redis_server.py) is stopped until the cache
target has failed, then started again on the same port.

Workload: each order is written twice, PLACED (INSERT) then RESERVED (MODIFY), so every sink
has work: audit 1 object per change, cache 1 invalidation per change, notify 1 email per
order (placed), fulfilment 1 execution per order (reserved).

Accounting: *written* are the changes; a change is *processed once* when every target's
effect of it exists exactly once (its audit object, its cache generation, the order's email
and execution); *duplicates* are effects beyond one (an email sent twice, a generation bumped
twice, an execution started twice, a second version of an audit object). No crash happens in
these scenarios, so no duplicate is allowed. The effects carry no sequence numbers or
timestamps finer than a second (S3's LastModified), so per-item order is not observable here:
the column says so, and order per item under faults is measured on the focused pipeline.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from streamkit import serialize
from streamkit.exceptions import FaultAdminError
from streamkit.local.faults import FaultsClient
from tests.helpers import AwsClients, create_plain_table, create_stream_table, ensure_lambda_role
from tests.helpers.queues import create_queue
from tests.reliability.scenarios import Accounting

__all__ = ["PLATFORM_SCENARIOS", "run_platform_scenario"]

REPO = Path(__file__).resolve().parents[2]

# name -> the sinks that fail ("S3", "SES", "Step Functions", "Redis")
PLATFORM_SCENARIOS: dict[str, tuple[str, ...]] = {
    "platform fan-out: S3 (audit) throttled + 503": ("S3",),
    "platform fan-out: Redis (cache) down": ("Redis",),
    "platform fan-out: SES (notify) throttled + 503": ("SES",),
    "platform fan-out: Step Functions (fulfilment) throttled + 503": ("Step Functions",),
    "platform fan-out: all four sinks at once": ("S3", "Redis", "SES", "Step Functions"),
}
CI_PLATFORM_SCENARIOS = ("platform fan-out: all four sinks at once",)

# botocore's default (legacy) retries make 5 attempts: 6 faults in a row fail one call.
_FAULTS = 6


@dataclass
class _Platform:
    aws: AwsClients
    tag: str
    orders: str
    stream_arn: str
    function: str
    bucket: str
    sender: str
    state_machine: str
    dlq_url: str
    dlq_arn: str


def _build(aws: AwsClients, unique: Callable[[str], str], redis_url: str) -> _Platform:
    from scripts.build_lambda import build_from_directory

    tag = unique("p")
    orders = unique("orders")
    stream_arn = create_stream_table(aws.dynamodb, orders)
    bucket = unique("audit")
    aws.s3.create_bucket(Bucket=bucket)
    sender = f"{tag}@shop.example"  # the SES fault rules name it (Source)
    aws.client("ses").verify_email_identity(EmailAddress=sender)
    # Only StartExecution matters here: a Pass state, so no execution writes back.
    state_machine = aws.client("stepfunctions").create_state_machine(
        name=unique("fulfilment"),
        definition='{"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": true}}}',
        roleArn="arn:aws:iam::123456789012:role/fulfilment",
    )["stateMachineArn"]
    dlq_url, dlq_arn = create_queue(aws.sqs, unique("dlq"))
    function = unique("order-events")
    aws.lambda_.create_function(
        FunctionName=function,
        Runtime="python3.12",
        Role=ensure_lambda_role(aws.iam),
        Handler="app.handler",
        Code={"ZipFile": build_from_directory(REPO / "handlers" / "order_events")},
        Timeout=30,
        MemorySize=256,
        Environment={
            "Variables": {
                "IDEMPOTENCY_TABLE": create_plain_table(aws.dynamodb, unique("idempotency"), "id"),
                "AUDIT_BUCKET": bucket,
                "AUDIT_REDACT_FIELDS": "email,phone,address",
                "REDIS_URL": redis_url,
                "NOTIFICATION_SENDER": sender,
                "AGGREGATES_TABLE": create_plain_table(aws.dynamodb, unique("aggregates"), "pk"),
                "FENCE_TABLE": create_plain_table(aws.dynamodb, unique("fences"), "id"),
                "STATE_MACHINE_ARN": state_machine,
                "PICKUP_WAIT_SECONDS": "0",
                "METRICS_NAMESPACE": "ChaosPlatform",
            }
        },
    )
    return _Platform(aws, tag, orders, stream_arn, function, bucket, sender, state_machine,
                     dlq_url, dlq_arn)  # fmt: skip


def _order(order_id: str, status: str, version: int) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return serialize({"pk": f"ORDER#{order_id}", "status": status, "version": version,
                      "customer": f"customer {order_id}", "email": f"{order_id}@example.com",
                      "total": Decimal("5"), "lines": [{"sku": "widget", "qty": 1}],
                      "updated_at": now, "placed_at": now})  # fmt: skip


def _effects(p: _Platform, endpoint_url: str, redis_url: str) -> dict[str, Counter[str]]:
    """Per target, how often each effect happened (keyed by order id or change)."""
    import urllib.request

    import redis

    audit: Counter[str] = Counter()
    for page in p.aws.s3.get_paginator("list_object_versions").paginate(Bucket=p.bucket):
        for version in page.get("Versions", []):
            seq = version["Key"].rsplit("/", 1)[1].split(".")[0]
            audit[seq] += 1
    with urllib.request.urlopen(f"{endpoint_url}/_streamkit/ses/messages", timeout=30) as r:
        messages = json.loads(r.read())["messages"]
    emails = Counter(
        m["subject"].split()[1] for m in messages if f" {p.tag}-" in (m["subject"] or "")
    )
    executions = Counter(
        e["name"].rsplit("-v", 1)[0]
        for e in p.aws.client("stepfunctions").list_executions(stateMachineArn=p.state_machine)[
            "executions"
        ]
    )
    cache: Counter[str] = Counter()
    with contextlib.suppress(redis.RedisError):
        client = redis.Redis.from_url(redis_url, socket_timeout=2)
        for key in client.scan_iter(f"gen:order:{p.tag}-*"):
            cache[key.decode().split(":", 2)[2]] = int(client.get(key) or 0)
    return {"audit": audit, "notify": emails, "fulfilment": executions, "cache": cache}


def run_platform_scenario(
    name: str,
    aws: AwsClients,
    endpoint_url: str,
    faults: FaultsClient,
    state_dir: Path,
    unique: Callable[[str], str],
    orders: int = 4,
    timeout: float = 120.0,
) -> Accounting:
    from scripts.redis_server import start_redis

    sinks = PLATFORM_SCENARIOS[name]
    servers = [start_redis()]  # this scenario's own redis-server(s): all stopped on the way out
    try:
        return _run_platform(name, sinks, servers, aws, endpoint_url, faults, state_dir, unique,
                             orders, timeout)  # fmt: skip
    finally:
        for server in servers:
            server.stop()


def _run_platform(
    name: str,
    sinks: tuple[str, ...],
    servers: list[Any],
    aws: AwsClients,
    endpoint_url: str,
    faults: FaultsClient,
    state_dir: Path,
    unique: Callable[[str], str],
    orders: int,
    timeout: float,
) -> Accounting:
    from scripts.redis_server import start_redis

    from streamkit.local.esm.runner import Runner
    from tests.helpers.runner_scenario import FAST

    port = servers[0].port
    redis_url = servers[0].url
    p = _build(aws, unique, redis_url)
    uuid = aws.lambda_.create_event_source_mapping(
        EventSourceArn=p.stream_arn, FunctionName=p.function, StartingPosition="TRIM_HORIZON",
        BatchSize=10, MaximumBatchingWindowInSeconds=0, MaximumRetryAttempts=10,
        BisectBatchOnFunctionError=True, FunctionResponseTypes=["ReportBatchItemFailures"],
        DestinationConfig={"OnFailure": {"Destination": p.dlq_arn}},
    )["UUID"]  # fmt: skip
    rules: list[str] = []

    def add(service: str, operation: str, resource: str) -> None:
        for error in ("ThrottlingException", "ServiceUnavailable"):
            rule = faults.add(service, operation, resource=resource, error=error, count=_FAULTS)
            rules.append(rule["id"])

    runner = Runner(endpoint_url, state_dir, reconcile_interval=0.2,
                    mapping_filter=lambda m: m["UUID"] == uuid, **FAST)  # fmt: skip
    ids = [f"{p.tag}-{n}" for n in range(orders)]
    recovered_from: float | None = None
    try:
        runner.start()
        runner.wait_until(lambda st: uuid in st, timeout=30)
        armed = time.monotonic()
        if "S3" in sinks:
            add("s3", "PutObject", p.bucket)
        if "SES" in sinks:
            add("ses", "SendEmail", p.sender)
        if "Step Functions" in sinks:
            add("stepfunctions", "StartExecution", p.state_machine)
        if "Redis" in sinks:
            servers[0].stop()
        for order_id in ids:
            aws.dynamodb.put_item(TableName=p.orders, Item=_order(order_id, "PLACED", 1))
        for order_id in ids:
            aws.dynamodb.put_item(TableName=p.orders, Item=_order(order_id, "RESERVED", 2))
        if "Redis" in sinks:
            # Down until the cache target has failed a record, then back on the same port.
            runner.wait_until(lambda st: st[uuid]["failed"] >= 1, timeout=timeout)
            servers.append(start_redis(port))
            recovered_from = time.monotonic()
        changes = 2 * orders
        runner.wait_until(
            lambda st: st[uuid]["succeeded"] + st[uuid]["sent_to_destination"] >= changes,
            timeout=timeout,
        )
        accounted_at = time.monotonic()
        stats = runner.stats()[uuid]
        fired = sum(
            int(r["fired"]) for r in faults.list(include_expired=True) if r["id"] in rules
        ) + ("Redis" in sinks)  # the outage, which the wait above saw fail a record
    finally:
        runner.stop()
        for rule_id in rules:
            with contextlib.suppress(FaultAdminError):
                faults.clear(rule_id)
        with contextlib.suppress(ClientError):
            aws.lambda_.update_event_source_mapping(UUID=uuid, Enabled=False)
    effects = _effects(p, endpoint_url, redis_url)
    return _account(name, p, ids, effects, stats, armed, recovered_from, accounted_at, fired,
                    len(rules) + ("Redis" in sinks))  # fmt: skip


def _account(
    name: str,
    p: _Platform,
    ids: list[str],
    effects: dict[str, Counter[str]],
    stats: dict[str, Any],
    armed: float,
    recovered_from: float | None,
    accounted_at: float,
    fired: int,
    faults_added: int,
) -> Accounting:
    from tests.helpers import read_stream

    changes = [
        (r["dynamodb"]["SequenceNumber"], r["dynamodb"]["Keys"]["pk"]["S"].split("#", 1)[1])
        for r in read_stream(p.aws.dynamodbstreams, p.stream_arn)
    ]
    in_dlq: set[str] = set()
    while True:
        messages = p.aws.sqs.receive_message(QueueUrl=p.dlq_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            break
        for message in messages:
            info = json.loads(message["Body"])["DDBStreamBatchInfo"]
            low, high = int(info["startSequenceNumber"]), int(info["endSequenceNumber"])
            in_dlq.update(seq for seq, _ in changes if low <= int(seq) <= high)
            p.aws.sqs.delete_message(QueueUrl=p.dlq_url, ReceiptHandle=message["ReceiptHandle"])
    per_order = Counter(order for _, order in changes)
    once = 0
    missing: list[str] = []
    for seq, order in changes:
        complete = (
            effects["audit"][seq] == 1
            and effects["cache"][order] == per_order[order]
            and effects["notify"][order] == 1
            and effects["fulfilment"][order] == 1
        )
        if complete and seq not in in_dlq:
            once += 1
        elif seq not in in_dlq:
            missing.append(seq)
    duplicates = (
        sum(n - 1 for n in effects["audit"].values() if n > 1)
        + sum(max(0, effects["cache"][o] - per_order[o]) for o in ids)
        + sum(max(0, effects["notify"][o] - 1) for o in ids)
        + sum(max(0, effects["fulfilment"][o] - 1) for o in ids)
    )
    accounting = Accounting(
        scenario=name,
        written=len(changes),
        processed_once=once,
        unexpected_duplicates=duplicates,
        order_violations=0,
        order_observable=False,
        in_dlq=len(in_dlq),
        missing=missing,
        recovery_s=max(0.0, accounted_at - (recovered_from or armed)),
        faults_fired=fired,
        faults_added=faults_added,
        note=f"order per item not observable (n/a); {stats['failed']} failed invokes retried",
    )
    return accounting
