"""The reference application end to end on the embedded emulator: the five handler
directories, zipped by scripts/build_lambda.py exactly as Terraform deploys them, behind event
source mappings with the recommended settings (docs/reference-app.md), run by the local
runner. Orders are written as a client would write them; everything else happens by itself:
the pipeline moves each order to its end state, and the audit, cache, notify and analytics
consumers react to every change. Then the whole history of both streams is delivered again,
through fresh mappings, and nothing may change: no double effects."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from scripts.build_lambda import build_from_directory

from streamkit import deserialize, serialize
from streamkit.local.invoker import FunctionInvoker
from streamkit.local.invoker.functions import fetch_function
from streamkit.streams.envelope import LambdaRecordConverter
from tests.helpers import AwsClients, create_stream_table, ensure_lambda_role, read_stream
from tests.helpers.emf import batch_counts, emf_documents, tally
from tests.helpers.streamkit_zip import wait_for

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"
# The CloudWatch namespace every function is configured with (Terraform: metrics_namespace).
METRICS_NAMESPACE = "OrderPlatformTest"

# The mapping settings docs/reference-app.md recommends (window 0 here: tests wait less).
SETTINGS: dict[str, Any] = {
    "BatchSize": 100,
    "MaximumBatchingWindowInSeconds": 0,
    "MaximumRetryAttempts": 3,
    "BisectBatchOnFunctionError": True,
    "FunctionResponseTypes": ["ReportBatchItemFailures"],
    "StartingPosition": "TRIM_HORIZON",
}
FILTERS = {
    "notify": {"eventName": ["MODIFY"], "dynamodb": {"NewImage": {"status": {"S": ["PAID", "SHIPPED"]}}}},
    "workflow": {"eventName": ["INSERT", "MODIFY"]},
    "cache": {"eventName": ["MODIFY", "REMOVE"]},
}  # fmt: skip
# Which streams each function consumes.
SOURCES = {
    "workflow": ["orders"],
    "audit": ["orders", "products"],
    "cache": ["orders", "products"],
    "notify": ["orders"],
    "analytics": ["orders"],
}


@dataclass
class Platform:
    aws: AwsClients
    endpoint_url: str
    tables: dict[str, str]
    streams: dict[str, str]
    functions: dict[str, str]
    cache_queue: str
    notify_queue: str
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

    def stream_length(self, table: str) -> int:
        from tests.helpers import read_stream

        return len(read_stream(self.aws.dynamodbstreams, self.streams[table], max_calls=500))

    def mappings(self, names: list[str], *, filters: bool = True) -> dict[str, str]:
        """Create the mappings of ``names``; ``{mapping UUID: source table}``."""
        uuids = {}
        for name in names:
            settings = dict(SETTINGS)
            settings["DestinationConfig"] = {"OnFailure": {"Destination": self.dlq_arn}}
            if filters and name in FILTERS:
                settings["FilterCriteria"] = {"Filters": [{"Pattern": json.dumps(FILTERS[name])}]}
            for source in SOURCES[name]:
                uuid = self.aws.lambda_.create_event_source_mapping(
                    EventSourceArn=self.streams[source],
                    FunctionName=self.functions[name],
                    **settings,
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


class Received:
    """A queue's messages, accumulated across polls."""

    def __init__(self, aws: AwsClients, queue_url: str) -> None:
        self.aws = aws
        self.queue_url = queue_url
        self.messages: list[Any] = []

    def at_least(self, count: int) -> list[Any]:
        """Everything received so far once ``count`` messages arrived, else []."""
        self.messages.extend(drain(self.aws, self.queue_url))
        return list(self.messages) if len(self.messages) >= count else []


def plain_table(aws: AwsClients, name: str, key: str = "pk", range_key: str | None = None) -> str:
    schema = [{"AttributeName": key, "KeyType": "HASH"}]
    attributes = [{"AttributeName": key, "AttributeType": "S"}]
    if range_key:
        schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
        attributes.append({"AttributeName": range_key, "AttributeType": "S"})
    aws.dynamodb.create_table(
        TableName=name,
        KeySchema=schema,
        AttributeDefinitions=attributes,
        BillingMode="PAY_PER_REQUEST",
    )
    return name


@contextmanager
def running(
    aws: AwsClients, endpoint_url: str, state_dir: Path, uuids: dict[str, str]
) -> Iterator[Any]:
    """One in-process Runner for ``uuids`` (fast retry pacing), as ``streamkit run`` would."""
    from streamkit.local.esm.batcher import IdleBackoff
    from streamkit.local.esm.destinations import DeliveryPolicy
    from streamkit.local.esm.processor import RetryDelay
    from streamkit.local.esm.runner import Runner

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


@pytest.fixture
def platform(aws: AwsClients, endpoint_url: str, unique_name: Callable[[str], str]) -> Platform:
    tables = {
        "orders": unique_name("orders"),
        "products": unique_name("products"),
        "audit": plain_table(aws, unique_name("audit"), range_key="sk"),
        "idempotency": plain_table(aws, unique_name("idempotency"), key="id"),
        "aggregates": plain_table(aws, unique_name("aggregates")),
        "fences": plain_table(aws, unique_name("fences"), key="id"),
    }
    streams = {
        name: create_stream_table(aws.dynamodb, tables[name]) for name in ("orders", "products")
    }
    topic = aws.sns.create_topic(Name=unique_name("cache"))["TopicArn"]
    cache_queue = aws.sqs.create_queue(QueueName=unique_name("cache-sub"))["QueueUrl"]
    cache_queue_arn = aws.sqs.get_queue_attributes(
        QueueUrl=cache_queue, AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    aws.sns.subscribe(
        TopicArn=topic,
        Protocol="sqs",
        Endpoint=cache_queue_arn,
        Attributes={"RawMessageDelivery": "true"},
    )
    notify_queue = aws.sqs.create_queue(QueueName=unique_name("notify"))["QueueUrl"]
    dlq_url = aws.sqs.create_queue(QueueName=unique_name("dlq"))["QueueUrl"]
    dlq_arn = aws.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    env = {
        "audit": {"AUDIT_TABLE": tables["audit"], "IDEMPOTENCY_TABLE": tables["idempotency"]},
        "cache": {"CACHE_TOPIC_ARN": topic, "IDEMPOTENCY_TABLE": tables["idempotency"]},
        "notify": {"NOTIFY_QUEUE_URL": notify_queue, "IDEMPOTENCY_TABLE": tables["idempotency"]},
        "analytics": {"AGGREGATES_TABLE": tables["aggregates"], "FENCE_TABLE": tables["fences"]},
        "workflow": {"ORDERS_TABLE": tables["orders"], "PRODUCTS_TABLE": tables["products"]},
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
        aws, endpoint_url, tables, streams, functions, cache_queue, notify_queue, dlq_arn, dlq_url
    )


def order(order_id: str, lines: list[tuple[str, int]], total: str, **extra: Any) -> dict[str, Any]:
    return {"pk": f"ORDER#{order_id}", "status": "PLACED", "version": 1,
            "customer": f"{order_id}@example.com", "total": Decimal(total),
            "lines": [{"sku": sku, "qty": qty} for sku, qty in lines], **extra}  # fmt: skip


def test_orders_run_the_whole_platform_and_a_full_redelivery_changes_nothing(
    platform: Platform, tmp_path: Path
) -> None:
    for sku, stock in (("widget", 10), ("gadget", 3), ("gizmo", 0)):
        platform.put("products", {"pk": f"PRODUCT#{sku}", "stock": stock, "price": 5, "name": sku})
    uuids = platform.mappings(list(SOURCES))
    notify_queue = Received(platform.aws, platform.notify_queue)
    cache_queue = Received(platform.aws, platform.cache_queue)
    with running(platform.aws, platform.endpoint_url, tmp_path / "state", uuids):
        platform.put("orders", order("ok", [("widget", 2), ("gadget", 1)], "25.50"))
        platform.put("orders", order("declined", [("widget", 1)], "5", payment_token="decline"))
        # gizmo is out of stock. One line only: moto leaks the stream records of a cancelled
        # TransactWriteItems (then rolls them back), so the all-or-nothing reservation of
        # several lines is covered by tests/unit/test_handlers_pipeline.py instead.
        platform.put("orders", order("short", [("gizmo", 1)], "10"))

        def status(order_id: str) -> str | None:
            item = platform.get("orders", f"ORDER#{order_id}")
            return None if item is None else item["status"]

        final = {"ok": "SHIPPED", "declined": "PAYMENT_FAILED", "short": "CANCELLED"}
        wait_for(
            lambda: all(status(o) == s for o, s in final.items()),
            timeout=60,
            what=f"orders reaching {final}",
        )
        # 13 order records (5 + 3 + 5) and 5 product records (3 INSERT, 2 reservations).
        wait_for(lambda: len(platform.scan("audit")) >= 18, timeout=30, what="18 audit items")
        notified = wait_for(lambda: notify_queue.at_least(3), what="3 notifications")
        invalidated = wait_for(lambda: cache_queue.at_least(12), what="12 invalidations")

        def status_counts() -> dict[str, Any]:
            return {
                a["pk"].removeprefix("STATUS#"): a["count"]
                for a in platform.scan("aggregates")
                if a["pk"].startswith("STATUS#") and a["count"]
            }

        # Every order counted once, in its end state (the others' +1/-1 cancel out).
        settled = {"SHIPPED": 1, "PAYMENT_FAILED": 1, "CANCELLED": 1}
        wait_for(lambda: status_counts() == settled, what=f"status counters {settled}")

    # --- the pipeline ---
    shipped = platform.get("orders", "ORDER#ok")
    assert shipped is not None
    assert shipped["version"] == 5 and shipped["tracking_id"].startswith("trk-")
    declined = platform.get("orders", "ORDER#declined")
    assert declined is not None and declined["workflow_error"]["type"] == "PaymentDeclinedError"
    short = platform.get("orders", "ORDER#short")
    assert short is not None and short["workflow_error"]["type"] == "OutOfStockError"
    assert short["refund_id"].startswith("ref-")
    products = {
        sku: platform.get("products", f"PRODUCT#{sku}") for sku in ("widget", "gadget", "gizmo")
    }
    assert {sku: p["stock"] for sku, p in products.items() if p} == {
        "widget": 8,
        "gadget": 2,
        "gizmo": 0,
    }

    # --- audit: one item per change, in order, without images ---
    audit = platform.scan("audit")
    assert len(audit) == 18
    trail = sorted(
        (a for a in audit if a["pk"] == f"{platform.tables['orders']}#ORDER#short"),
        key=lambda a: (a["sk"].split("#")[0], int(a["sk"].split("#")[1])),
    )
    assert [a.get("new_status") for a in trail] == [
        "PLACED", "VALIDATED", "PAID", "OUT_OF_STOCK", "CANCELLED"
    ]  # fmt: skip
    assert [a["event"] for a in trail] == ["INSERT"] + ["MODIFY"] * 4
    assert "status" in trail[1]["changed"] and "customer" not in trail[1]["changed"]
    assert "short@example.com" not in json.dumps(audit, default=str)

    # --- notify: PAID for the two paid orders, SHIPPED for the shipped one ---
    assert sorted((m["order_id"], m["status"], m["template"]) for m in notified) == [
        ("ok", "PAID", "payment-received"),
        ("ok", "SHIPPED", "order-shipped"),
        ("short", "PAID", "payment-received"),
    ]
    assert {m["customer"] for m in notified} == {"ok@example.com", "short@example.com"}

    # --- cache: every MODIFY of both tables, none for the INSERTs ---
    orders_table, products_table = platform.tables["orders"], platform.tables["products"]
    by_table = {
        table: sorted(m["keys"]["pk"] for m in invalidated if m["table"] == table)
        for table in (orders_table, products_table)
    }
    assert by_table[orders_table] == ["ORDER#declined"] * 2 + ["ORDER#ok"] * 4 + ["ORDER#short"] * 4
    assert by_table[products_table] == ["PRODUCT#gadget", "PRODUCT#widget"]
    assert {m["reason"] for m in invalidated} == {"MODIFY"}

    # --- analytics: revenue of the two orders that reached PAID ---
    revenue = [a for a in platform.scan("aggregates") if a["pk"].startswith("REVENUE#")]
    assert sum(a["revenue"] for a in revenue) == Decimal("35.50")
    assert sum(a["orders"] for a in revenue) == 2
    assert drain(platform.aws, platform.dlq_url) == []  # nothing ran out of retries

    # --- a full redelivery: every record of both streams again, unfiltered ---
    before = {
        name: platform.snapshot(name) for name in ("orders", "products", "audit", "aggregates")
    }
    replay = platform.mappings(["workflow", "audit", "cache", "notify", "analytics"], filters=False)
    lengths = {name: platform.stream_length(name) for name in ("orders", "products")}
    expected = {uuid: lengths[source] for uuid, source in replay.items()}
    with running(platform.aws, platform.endpoint_url, tmp_path / "replay", replay) as runner:
        runner.wait_until(
            lambda stats: all(stats[u]["succeeded"] >= expected[u] for u in replay), timeout=60
        )
    assert {name: platform.snapshot(name) for name in before} == before
    assert drain(platform.aws, platform.notify_queue) == []
    assert drain(platform.aws, platform.cache_queue) == []
    assert drain(platform.aws, platform.dlq_url) == []


def test_each_function_prints_one_emf_document_per_invocation_with_the_batchs_counts(
    platform: Platform, region: str, tmp_path: Path
) -> None:
    """The deployed zips, invoked directly with the same one-record batch twice: the second
    delivery finds the work of the first done (markers, the workflow's version fence)."""
    platform.put("orders", order("m", [("widget", 1)], "5"))
    stream = platform.streams["orders"]
    [placed] = [
        LambdaRecordConverter(stream)(r) for r in read_stream(platform.aws.dynamodbstreams, stream)
    ]
    batch = {"Records": [placed]}
    # What each consumer makes of the order's INSERT, then of its redelivery.
    expected = {
        "audit": (tally(1, processed=1), tally(1, already=1)),
        "cache": (tally(1, processed=1), tally(1, processed=1)),  # no route for an INSERT
        "notify": (tally(1, processed=1), tally(1, processed=1)),  # no transition
        "analytics": (tally(1, processed=1), tally(1, already=1)),  # STATUS#PLACED +1, once
        "workflow": (tally(1, processed=1), tally(1, already=1)),  # PLACED -> VALIDATED, once
    }
    for name, (first, again) in expected.items():
        function = fetch_function(
            platform.aws.lambda_, platform.functions[name], state_dir=tmp_path
        )
        with FunctionInvoker(
            function, endpoint_url=platform.endpoint_url, region=region
        ) as invoker:
            for want in (first, again):
                result = invoker.invoke(batch)
                assert result.ok and result.payload == {"batchItemFailures": []}, result.log_tail
                [document] = emf_documents(result.log_tail)
                assert document["FunctionName"] == platform.functions[name]
                counts = batch_counts(document, namespace=METRICS_NAMESPACE, service=name)
                assert counts == want, name
    validated = platform.get("orders", "ORDER#m")
    assert validated is not None and validated["status"] == "VALIDATED"


def test_notify_survives_an_outage_of_its_queue_and_sends_each_message_once(
    aws: AwsClients, endpoint_url: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    orders = unique_name("orders")
    stream = create_stream_table(aws.dynamodb, orders)
    idempotency = plain_table(aws, unique_name("idempotency"), key="id")
    queue_name = unique_name("notify")
    # The queue's URL, then the queue gone: every send fails until it is created again.
    queue_url = aws.sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    aws.sqs.delete_queue(QueueUrl=queue_url)
    function = unique_name("app-notify")
    aws.lambda_.create_function(
        FunctionName=function,
        Runtime="python3.12",
        Role=ensure_lambda_role(aws.iam),
        Handler="app.handler",
        Code={"ZipFile": build_from_directory(HANDLERS / "notify")},
        Timeout=30,
        MemorySize=256,
        Environment={
            "Variables": {"NOTIFY_QUEUE_URL": queue_url, "IDEMPOTENCY_TABLE": idempotency}
        },
    )
    for n in range(3):
        item = order(str(n), [("widget", 1)], "5")
        aws.dynamodb.put_item(TableName=orders, Item=serialize(item))
        for status in ("VALIDATED", "PAID"):
            aws.dynamodb.update_item(
                TableName=orders,
                Key={"pk": {"S": f"ORDER#{n}"}},
                UpdateExpression="SET #s = :s",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": {"S": status}},
            )
    settings = {**SETTINGS, "BatchSize": 2}  # several batches: redelivery overlaps successes
    # Retry without limit here: the outage lasts as long as the test decides.
    settings["MaximumRetryAttempts"] = -1
    settings["FilterCriteria"] = {"Filters": [{"Pattern": json.dumps(FILTERS["notify"])}]}
    uuid = aws.lambda_.create_event_source_mapping(
        EventSourceArn=stream, FunctionName=function, **settings
    )["UUID"]
    with running(aws, endpoint_url, tmp_path / "state", {uuid: "orders"}) as runner:
        runner.wait_until(lambda stats: stats[uuid]["failed"] >= 3, timeout=60)
        assert aws.sqs.create_queue(QueueName=queue_name)["QueueUrl"] == queue_url
        runner.wait_until(lambda stats: stats[uuid]["succeeded"] >= 3, timeout=60)
        stats = runner.stats()[uuid]
    sent = Received(aws, queue_url).at_least(0)
    assert sorted((m["order_id"], m["status"]) for m in sent) == [
        ("0", "PAID"), ("1", "PAID"), ("2", "PAID")
    ]  # fmt: skip
    assert stats["sent_to_destination"] == stats["discarded"] == 0
