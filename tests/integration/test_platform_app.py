"""The order platform end to end on the embedded emulator and a real redis-server: the three
function directories, zipped by scripts/build_lambda.py exactly as Terraform deploys them,
behind event source mappings with the recommended settings (docs/reference-app.md), run by the
local runner. Orders are written as a client would write them; everything else happens by
itself: the pipeline moves each order on, the fan-out targets archive every change to S3,
invalidate Redis, send email and SMS, count, and start the fulfilment state machine, which
ships the order. Then the whole history of both streams is delivered again, through fresh
mappings, and nothing may change: no double effects."""

from __future__ import annotations

import contextlib
import json
import socket
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from scripts.build_lambda import build_from_directory
from scripts.redis_server import RedisServer, start_redis

from streamkit import deserialize, serialize
from streamkit.local.invoker import FunctionInvoker
from streamkit.local.invoker.functions import fetch_function
from streamkit.streams.envelope import LambdaRecordConverter
from tests.helpers import (
    AwsClients,
    create_plain_table,
    create_stream_table,
    ensure_lambda_role,
    read_stream,
    wait_for_mapping_gone,
)
from tests.helpers.emf import batch_counts, emf_documents, tally
from tests.helpers.queues import create_queue
from tests.helpers.streamkit_zip import wait_for

REPO = Path(__file__).resolve().parents[2]
HANDLERS = REPO / "handlers"
ASL = REPO / "terraform" / "modules" / "order_platform" / "fulfilment.asl.json"
# The CloudWatch namespace every function is configured with (Terraform: metrics_namespace).
METRICS_NAMESPACE = "OrderPlatformTest"
SENDER = "orders@shop.example"
SECRETS = ("+15555550123", "1 Secret Lane")

# The mapping settings docs/reference-app.md recommends (window 0 here: tests wait less).
SETTINGS: dict[str, Any] = {
    "BatchSize": 100,
    "MaximumBatchingWindowInSeconds": 0,
    "MaximumRetryAttempts": 3,
    "BisectBatchOnFunctionError": True,
    "FunctionResponseTypes": ["ReportBatchItemFailures"],
    "StartingPosition": "TRIM_HORIZON",
}
FILTERS = {"workflow": {"eventName": ["INSERT", "MODIFY"]}}
# Which stream each function consumes: two readers on orders, one on products.
SOURCES = {"workflow": "orders", "order_events": "orders", "product_events": "products"}


def http_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


@dataclass
class Platform:
    aws: AwsClients
    endpoint_url: str
    tag: str
    tables: dict[str, str]
    streams: dict[str, str]
    functions: dict[str, str]
    bucket: str
    state_machine: str
    dlq_arn: str
    dlq_url: str

    def put(self, table: str, item: dict[str, Any]) -> None:
        self.aws.dynamodb.put_item(TableName=self.tables[table], Item=serialize(item))

    def get(self, table: str, pk: str) -> dict[str, Any] | None:
        item = self.aws.dynamodb.get_item(
            TableName=self.tables[table], Key={"pk": {"S": pk}}, ConsistentRead=True
        ).get("Item")
        return None if item is None else deserialize(item)

    def scan(self, table: str) -> list[dict[str, Any]]:
        pages = self.aws.dynamodb.get_paginator("scan").paginate(
            TableName=self.tables[table], ConsistentRead=True
        )
        return [deserialize(item) for page in pages for item in page["Items"]]

    def snapshot(self, table: str) -> list[str]:
        """The table's items in a comparable form, independent of scan order."""
        return sorted(json.dumps(item, default=str, sort_keys=True) for item in self.scan(table))

    def audit_objects(self) -> list[tuple[str, str, str]]:
        """(key, version id, body) of every version in the audit bucket."""
        s3 = self.aws.s3
        found = []
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=self.bucket):
            for version in page.get("Versions", []):
                body = s3.get_object(
                    Bucket=self.bucket, Key=version["Key"], VersionId=version["VersionId"]
                )["Body"].read()
                found.append((version["Key"], version["VersionId"], body.decode()))
        return found

    def emails(self) -> list[dict[str, Any]]:
        """This platform's emails (the emulator's SES is shared by every test)."""
        messages = http_json(f"{self.endpoint_url}/_streamkit/ses/messages")["messages"]
        return [m for m in messages if f" {self.tag}-" in (m["subject"] or "")]

    def sms(self) -> list[dict[str, Any]]:
        messages = http_json(f"{self.endpoint_url}/_streamkit/sns/sms")["messages"]
        return [m for m in messages if f" {self.tag}-" in m["message"]]

    def stream_length(self, table: str) -> int:
        return len(read_stream(self.aws.dynamodbstreams, self.streams[table], max_calls=500))

    def mappings(self, names: list[str], *, filters: bool = True, **extra: Any) -> dict[str, str]:
        """Create the mappings of ``names``; ``{mapping UUID: source table}``."""
        uuids = {}
        for name in names:
            settings = {**SETTINGS, **extra}
            settings["DestinationConfig"] = {"OnFailure": {"Destination": self.dlq_arn}}
            if filters and name in FILTERS:
                settings["FilterCriteria"] = {"Filters": [{"Pattern": json.dumps(FILTERS[name])}]}
            source = SOURCES[name]
            uuid = self.aws.lambda_.create_event_source_mapping(
                EventSourceArn=self.streams[source], FunctionName=self.functions[name], **settings
            )["UUID"]
            uuids[uuid] = source
        return uuids


def drain(aws: AwsClients, queue_url: str) -> list[Any]:
    bodies: list[Any] = []
    while True:
        messages = aws.sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        ).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            aws.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


@contextmanager
def running(
    aws: AwsClients, endpoint_url: str, state_dir: Path, uuids: dict[str, str]
) -> Iterator[Any]:
    """One in-process Runner for ``uuids`` (fast retry pacing), as ``streamkit run`` would."""
    from streamkit.local.esm.destinations import DeliveryPolicy
    from streamkit.local.esm.processor import RetryDelay
    from streamkit.local.esm.runner import Runner
    from streamkit.streams.throttling import IdleBackoff

    wanted = set(uuids)
    runner = Runner(
        endpoint_url,
        state_dir,
        reconcile_interval=0.2,
        mapping_filter=lambda mapping: mapping["UUID"] in wanted,
        retry_delay=RetryDelay(initial=0.05, maximum=0.2),
        delivery=DeliveryPolicy(initial_delay=0.05, max_delay=0.2),
        idle_backoff=lambda: IdleBackoff(min_delay=0.01, max_delay=0.05),
    )
    runner.start()
    try:
        yield runner
    finally:
        runner.stop()
        for uuid in uuids:
            with contextlib.suppress(Exception):
                aws.lambda_.delete_event_source_mapping(UUID=uuid)
        # Lambda lists a deleted mapping as Deleting for a moment, and a new mapping of the
        # same function and stream conflicts (409) until it is gone.
        for uuid in uuids:
            wait_for_mapping_gone(aws.lambda_, uuid)


def build_platform(
    aws: AwsClients, endpoint_url: str, unique_name: Callable[[str], str], redis_url: str
) -> Platform:
    tag = unique_name("t")
    tables = {
        "orders": unique_name("orders"),
        "products": unique_name("products"),
        "idempotency": create_plain_table(aws.dynamodb, unique_name("idempotency"), key="id"),
        "aggregates": create_plain_table(aws.dynamodb, unique_name("aggregates")),
        "fences": create_plain_table(aws.dynamodb, unique_name("fences"), key="id"),
    }
    streams = {
        name: create_stream_table(aws.dynamodb, tables[name]) for name in ("orders", "products")
    }
    bucket = unique_name("audit")
    aws.s3.create_bucket(Bucket=bucket)
    aws.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    ses = aws.client("ses")
    ses.verify_email_identity(EmailAddress=SENDER)
    state_machine = aws.client("stepfunctions").create_state_machine(
        name=unique_name("fulfilment"),
        definition=ASL.read_text().replace("${orders_table}", tables["orders"]),
        roleArn="arn:aws:iam::123456789012:role/fulfilment",
    )["stateMachineArn"]
    dlq_url, dlq_arn = create_queue(aws.sqs, unique_name("dlq"))
    sinks = {
        "IDEMPOTENCY_TABLE": tables["idempotency"],
        "AUDIT_BUCKET": bucket,
        "AUDIT_REDACT_FIELDS": "email,phone,address",
        "REDIS_URL": redis_url,
    }
    env = {
        "workflow": {"ORDERS_TABLE": tables["orders"], "PRODUCTS_TABLE": tables["products"]},
        "order_events": {
            **sinks,
            "NOTIFICATION_SENDER": SENDER,
            "AGGREGATES_TABLE": tables["aggregates"],
            "FENCE_TABLE": tables["fences"],
            "STATE_MACHINE_ARN": state_machine,
            "PICKUP_WAIT_SECONDS": "0",
        },
        "product_events": sinks,
    }
    role = ensure_lambda_role(aws.iam)
    functions = {}
    for name, variables in env.items():
        functions[name] = unique_name(f"app-{name}")
        aws.lambda_.create_function(
            FunctionName=functions[name],
            Runtime="python3.12",
            Role=role,
            Handler="app.handler",  # the Terraform's Handler setting
            Code={"ZipFile": build_from_directory(HANDLERS / name)},
            Timeout=30,
            MemorySize=256,
            Environment={"Variables": {**variables, "METRICS_NAMESPACE": METRICS_NAMESPACE}},
        )
    return Platform(
        aws, endpoint_url, tag, tables, streams, functions, bucket, state_machine, dlq_arn, dlq_url
    )


@pytest.fixture
def platform(
    aws: AwsClients,
    endpoint_url: str,
    unique_name: Callable[[str], str],
    redis_server: RedisServer,
) -> Platform:
    return build_platform(aws, endpoint_url, unique_name, redis_server.url)


def order(order_id: str, lines: list[tuple[str, int]], total: str, **extra: Any) -> dict[str, Any]:
    now = int(time.time() * 1000)
    return {"pk": f"ORDER#{order_id}", "status": "PLACED", "version": 1,
            "customer": f"customer {order_id}", "email": f"{order_id}@example.com",
            "total": Decimal(total), "lines": [{"sku": sku, "qty": qty} for sku, qty in lines],
            "updated_at": now, "placed_at": now, **extra}  # fmt: skip


def test_orders_run_the_whole_platform_and_a_full_redelivery_changes_nothing(
    platform: Platform, redis_server: RedisServer, tmp_path: Path
) -> None:
    import redis

    cache = redis.Redis.from_url(redis_server.url)
    t = platform.tag
    for sku, stock in (("widget", 10), ("gadget", 3), ("gizmo", 0)):
        platform.put("products", {"pk": f"PRODUCT#{sku}", "stock": stock, "price": 5, "name": sku})
    uuids = platform.mappings(list(SOURCES))
    with running(platform.aws, platform.endpoint_url, tmp_path / "state", uuids):
        platform.put(
            "orders",
            order(f"{t}-ok", [("widget", 2), ("gadget", 1)], "25.50",
                  phone=SECRETS[0], address={"street": SECRETS[1]}),
        )  # fmt: skip
        platform.put(
            "orders", order(f"{t}-declined", [("widget", 1)], "5", payment_token="decline")
        )
        # gizmo is out of stock. One line only: moto leaks the stream records of a cancelled
        # TransactWriteItems (then rolls them back), so the all-or-nothing reservation of
        # several lines is covered by tests/unit/test_handlers_pipeline.py instead.
        platform.put("orders", order(f"{t}-short", [("gizmo", 1)], "10"))

        def status(order_id: str) -> str | None:
            item = platform.get("orders", f"ORDER#{t}-{order_id}")
            return None if item is None else item["status"]

        final = {"ok": "SHIPPED", "declined": "PAYMENT_FAILED", "short": "CANCELLED"}
        wait_for(
            lambda: all(status(o) == s for o, s in final.items()),
            timeout=60,
            what=f"orders reaching {final}",
        )
        # 13 order changes (5 + 3 + 5) and 5 product changes (3 INSERT, 2 reservations).
        wait_for(lambda: len(platform.audit_objects()) >= 18, timeout=30, what="18 audit objects")
        # placed x3, shipped x1, cancelled x1.
        wait_for(lambda: len(platform.emails()) >= 5, timeout=30, what="5 emails")

        def status_counts() -> dict[str, Any]:
            return {
                a["pk"].removeprefix("STATUS#"): a["count"]
                for a in platform.scan("aggregates")
                if a["pk"].startswith("STATUS#") and a["count"]
            }

        # Every order counted once, in its end state (the others' +1/-1 cancel out).
        settled = {"SHIPPED": 1, "PAYMENT_FAILED": 1, "CANCELLED": 1}
        wait_for(lambda: status_counts() == settled, what=f"status counters {settled}")

    # --- the pipeline, and fulfilment through Step Functions ---
    shipped = platform.get("orders", f"ORDER#{t}-ok")
    assert shipped is not None and shipped["version"] == 5
    executions = platform.aws.client("stepfunctions").list_executions(
        stateMachineArn=platform.state_machine
    )["executions"]
    assert [(e["name"], e["status"]) for e in executions] == [(f"{t}-ok-v4", "SUCCEEDED")]
    declined = platform.get("orders", f"ORDER#{t}-declined")
    assert declined is not None and declined["workflow_error"]["type"] == "PaymentDeclinedError"
    short = platform.get("orders", f"ORDER#{t}-short")
    assert short is not None and short["workflow_error"]["type"] == "OutOfStockError"
    stock = {
        sku: platform.get("products", f"PRODUCT#{sku}") for sku in ("widget", "gadget", "gizmo")
    }
    assert {sku: p["stock"] for sku, p in stock.items() if p} == {
        "widget": 8,
        "gadget": 2,
        "gizmo": 0,
    }
    # Every state write stamped updated_at (epoch ms), the Step Functions one too.
    assert int(shipped["updated_at"]) >= int(declined["updated_at"]) - 60_000

    # --- audit: one object (one version) per change, partitioned, without personal data ---
    objects = platform.audit_objects()
    assert len(objects) == 18 and len({key for key, _, _ in objects}) == 18
    orders_table = platform.tables["orders"]
    lines = [json.loads(body) for _, _, body in objects]
    trail = sorted(
        (r for r in lines if r["keys"] == {"pk": f"ORDER#{t}-short"}),
        key=lambda r: int(r["sequence_number"]),
    )
    assert [r["new_status"] for r in trail] == [
        "PLACED", "VALIDATED", "PAID", "OUT_OF_STOCK", "CANCELLED"
    ]  # fmt: skip
    assert [r["event"] for r in trail] == ["INSERT"] + ["MODIFY"] * 4
    assert "status" in trail[1]["changed"] and "customer" not in trail[1]["changed"]
    for key, _, body in objects:
        assert key.startswith(
            ("audit/table=" + orders_table, "audit/table=" + platform.tables["products"])
        )
        for secret in (*SECRETS, f"{t}-ok@example.com", f"{t}-short@example.com"):
            assert secret not in body

    # --- notifications: one per change that matters, SMS where there is a phone ---
    subjects = Counter(m["subject"] for m in platform.emails())
    assert subjects == Counter({
        f"Order {t}-ok placed": 1, f"Order {t}-declined placed": 1, f"Order {t}-short placed": 1,
        f"Order {t}-ok shipped": 1, f"Order {t}-short cancelled": 1,
    })  # fmt: skip
    assert sorted(m["message"] for m in platform.sms()) == [
        f"Order {t}-ok placed, total 25.50.",
        f"Order {t}-ok shipped.",
    ]

    # --- cache: one invalidation per change, products included ---
    assert int(cache.get(f"gen:order:{t}-ok") or 0) == 5
    assert int(cache.get(f"gen:order:{t}-declined") or 0) == 3
    assert int(cache.get("gen:product:widget") or 0) >= 2

    # --- analytics: revenue of the shipped order ---
    revenue = [a for a in platform.scan("aggregates") if a["pk"].startswith("REVENUE#")]
    assert sum(a["revenue"] for a in revenue) == Decimal("25.50")
    assert sum(a["orders"] for a in revenue) == 1
    assert drain(platform.aws, platform.dlq_url) == []  # nothing ran out of retries

    # --- a full redelivery: every record of both streams again, unfiltered ---
    before = {name: platform.snapshot(name) for name in ("orders", "products", "aggregates")}
    archived = sorted(platform.audit_objects())
    emails, texts = len(platform.emails()), len(platform.sms())
    generations = {k: cache.get(k) for k in cache.scan_iter(f"gen:order:{t}-*")}
    # Lambda refuses a second mapping of the same function and stream: the first ones go.
    # (`running` may have deleted them already on its way out: gone is gone.)
    for uuid in uuids:
        with contextlib.suppress(platform.aws.lambda_.exceptions.ResourceNotFoundException):
            platform.aws.lambda_.delete_event_source_mapping(UUID=uuid)
    assert all(wait_for_mapping_gone(platform.aws.lambda_, uuid) for uuid in uuids)
    replay = platform.mappings(list(SOURCES), filters=False)
    lengths = {name: platform.stream_length(name) for name in ("orders", "products")}
    expected = {uuid: lengths[source] for uuid, source in replay.items()}
    with running(platform.aws, platform.endpoint_url, tmp_path / "replay", replay) as runner:
        runner.wait_until(
            lambda stats: all(stats[u]["succeeded"] >= expected[u] for u in replay), timeout=60
        )
    assert {name: platform.snapshot(name) for name in before} == before
    assert sorted(platform.audit_objects()) == archived
    assert (len(platform.emails()), len(platform.sms())) == (emails, texts)
    assert {k: cache.get(k) for k in generations} == generations
    assert len(platform.aws.client("stepfunctions").list_executions(
        stateMachineArn=platform.state_machine)["executions"]) == 1  # fmt: skip
    assert drain(platform.aws, platform.dlq_url) == []


def test_each_function_reports_its_batch_and_per_target_change_latency(
    platform: Platform, region: str, tmp_path: Path
) -> None:
    """The deployed zips, invoked directly with the same one-record batch twice: the second
    delivery finds the work of the first done (per-target markers, the workflow's fence). Each
    invocation prints the batch's EMF document and one ChangeToHandlerLatency document per
    target that ran."""
    platform.put("orders", order(f"{platform.tag}-m", [("widget", 1)], "5"))
    platform.put("products", {"pk": "PRODUCT#widget", "stock": 5, "price": 5,
                              "updated_at": int(time.time() * 1000)})  # fmt: skip
    batches = {}
    for table in ("orders", "products"):
        stream = platform.streams[table]
        [record] = [
            LambdaRecordConverter(stream)(r)
            for r in read_stream(platform.aws.dynamodbstreams, stream)
        ]
        batches[table] = {"Records": [record]}
    targets = {
        "workflow": ["workflow"],
        "order_events": [f"order_events.{n}" for n in ("audit", "cache", "notify", "analytics", "fulfilment")],
        "product_events": ["product_events.audit", "product_events.cache"],
    }  # fmt: skip
    for name, source in SOURCES.items():
        function = fetch_function(
            platform.aws.lambda_, platform.functions[name], state_dir=tmp_path
        )
        with FunctionInvoker(
            function, endpoint_url=platform.endpoint_url, region=region
        ) as invoker:
            for attempt in ("first", "again"):
                result = invoker.invoke(batches[source])
                assert result.ok and result.payload == {"batchItemFailures": []}, result.log_tail
                documents = emf_documents(result.log_tail)
                [batch] = [d for d in documents if "Service" in d]
                assert batch["FunctionName"] == platform.functions[name]
                counts = batch_counts(batch, namespace=METRICS_NAMESPACE, service=name)
                want = tally(1, processed=1) if attempt == "first" else tally(1, already=1)
                assert counts == want, (name, attempt)
                latency = {
                    d["Target"]: d["ChangeToHandlerLatency"] for d in documents if "Target" in d
                }
                if attempt == "first":
                    assert sorted(latency) == sorted(targets[name]), name
                    assert all(0 <= v < 120_000 for v in latency.values()), latency
                else:
                    assert latency == {}, name  # nothing ran again, nothing measured


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_redis_outage_fails_only_the_cache_target_and_loses_no_invalidation(
    aws: AwsClients, endpoint_url: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    port = _free_port()  # nothing listens there until the outage ends
    platform = build_platform(aws, endpoint_url, unique_name, f"redis://127.0.0.1:{port}/0")
    t = platform.tag
    # Retry without limit here: the outage lasts as long as the test decides. One batch holds
    # all three orders, so each sibling target meets every order during the outage (with
    # smaller batches Lambda would resume at the first failure and never reach the third).
    uuids = platform.mappings(["order_events"], BatchSize=10, MaximumRetryAttempts=-1)
    for n in range(3):
        platform.put("orders", order(f"{t}-{n}", [("widget", 1)], "5"))
    with running(aws, endpoint_url, tmp_path / "state", uuids) as runner:
        (uuid,) = uuids
        runner.wait_until(lambda stats: stats[uuid]["failed"] >= 3, timeout=60)
        # The siblings ran once each, during the outage.
        assert len(platform.audit_objects()) == 3
        assert len(platform.emails()) == 3
        server: RedisServer | None = None
        try:
            server = start_redis(port)
            runner.wait_until(lambda stats: stats[uuid]["succeeded"] >= 3, timeout=60)
            import redis

            cache = redis.Redis.from_url(server.url)
            wait_for(
                lambda: all(cache.get(f"gen:order:{t}-{n}") == b"1" for n in range(3)),
                what="every invalidation reached Redis once",
            )
            stats = runner.stats()[uuid]
        finally:
            if server is not None:
                server.stop()
    assert len(platform.audit_objects()) == 3  # nothing ran twice
    assert len(platform.emails()) == 3
    assert stats["sent_to_destination"] == stats["discarded"] == 0
