"""The reference app's stateful handlers (handlers/workflow, handlers/analytics), in-process
over moto's in-memory DynamoDB (``mock_aws``, no HTTP): the order pipeline driven by the
orders table's own stream, and the exactly-once counters over the same records."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws
from tests.helpers.emf import printed_counts, tally

from streamkit import deserialize, serialize

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"
ORDERS, PRODUCTS, AGGREGATES, FENCES = "orders", "products", "aggregates", "fences"
NAMESPACE = "OrderPlatform"  # the handlers' METRICS_NAMESPACE in these tests


def load_handler(name: str, monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    """A fresh import of handlers/<name>/app.py (every handler module is called ``app``)."""
    for key, value in {"METRICS_NAMESPACE": NAMESPACE, **env}.items():
        monkeypatch.setenv(key, value)
    spec = importlib.util.spec_from_file_location(
        f"handler_{name}_{uuid.uuid4().hex}", HANDLERS / name / "app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Shop:
    """The tables of the platform in moto, and a driver playing the orders mapping."""

    def __init__(self) -> None:
        self.ddb = boto3.client("dynamodb")
        # moto 5.2 routes the https streams endpoint to its DynamoDB handler ("Not yet
        # implemented"); the http spelling reaches the streams backend.
        self.streams = boto3.client(
            "dynamodbstreams", endpoint_url="http://streams.dynamodb.us-east-1.amazonaws.com"
        )
        self.stream_arn = self._table(ORDERS, stream=True)
        for name in (PRODUCTS, AGGREGATES):
            self._table(name)
        self._table(FENCES, key="id")
        self.delivered = 0

    def _table(self, name: str, *, key: str = "pk", stream: bool = False) -> str:
        extra: dict[str, Any] = {}
        if stream:
            extra["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": "NEW_AND_OLD_IMAGES",
            }
        description = self.ddb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
            **extra,
        )["TableDescription"]
        return str(description.get("LatestStreamArn", ""))

    def put(self, table: str, item: dict[str, Any]) -> None:
        self.ddb.put_item(TableName=table, Item=serialize(item))

    def get(self, table: str, pk: str) -> dict[str, Any]:
        item = self.ddb.get_item(TableName=table, Key={"pk": {"S": pk}}, ConsistentRead=True)
        return deserialize(item["Item"])

    def history(self) -> list[dict[str, Any]]:
        """Every stream record so far, shaped as Lambda delivers it."""
        shard = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"][
            "Shards"
        ][0]
        iterator = self.streams.get_shard_iterator(
            StreamArn=self.stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = self.streams.get_records(ShardIterator=iterator, Limit=1000)["Records"]
        out = []
        for record in records:
            body = dict(record["dynamodb"])
            body["ApproximateCreationDateTime"] = body["ApproximateCreationDateTime"].timestamp()
            out.append({**record, "dynamodb": body, "eventSourceARN": self.stream_arn})
        return out

    def drive(self, handler: Any, *, rounds: int = 30) -> list[Any]:
        """Deliver new records until the stream is quiet, redelivering from the lowest
        reported record as Lambda does; returns every response."""
        responses: list[Any] = []
        for _ in range(rounds):
            batch = self.history()[self.delivered :]
            if not batch:
                return responses
            response = handler({"Records": batch}, None)
            responses.append(response)
            failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            sequence = [r["dynamodb"]["SequenceNumber"] for r in batch]
            self.delivered += min((sequence.index(s) for s in failed), default=len(batch))
        raise AssertionError("the stream never went quiet")


@pytest.fixture
def shop(monkeypatch: pytest.MonkeyPatch) -> Iterator[Shop]:
    with mock_aws():
        yield Shop()


@pytest.fixture
def workflow(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> Any:
    return load_handler("workflow", monkeypatch, ORDERS_TABLE=ORDERS, PRODUCTS_TABLE=PRODUCTS)


def place(shop: Shop, order_id: str, lines: list[tuple[str, int]], **extra: Any) -> str:
    pk = f"ORDER#{order_id}"
    item = {"pk": pk, "status": "PLACED", "version": 1, "customer": "ada@example.com",
            "total": Decimal("25.50"), "lines": [{"sku": s, "qty": q} for s, q in lines],
            **extra}  # fmt: skip
    shop.put(ORDERS, item)
    return pk


def stock(shop: Shop, sku: str) -> Decimal:
    value: Decimal = shop.get(PRODUCTS, f"PRODUCT#{sku}")["stock"]
    return value


@pytest.fixture
def products(shop: Shop) -> None:
    for sku, units in (("widget", 10), ("gadget", 1)):
        shop.put(PRODUCTS, {"pk": f"PRODUCT#{sku}", "stock": units, "price": 5, "name": sku})


@pytest.mark.usefixtures("products")
def test_orders_move_through_the_pipeline_and_failures_end_in_their_states(
    shop: Shop, workflow: ModuleType
) -> None:
    ok = place(shop, "ok", [("widget", 2), ("gadget", 1), ("widget", 1)])
    declined = place(shop, "declined", [("widget", 1)], payment_token="decline")
    # gadget is gone after "ok" reserved it: nothing of this order may be reserved.
    short = place(shop, "short", [("widget", 1), ("gadget", 1)])
    empty = place(shop, "empty", [])
    shop.drive(workflow.handler)

    shipped = shop.get(ORDERS, ok)
    assert (shipped["status"], shipped["version"]) == ("SHIPPED", 5)
    assert shipped["payment_id"].startswith("pay-") and shipped["tracking_id"].startswith("trk-")
    assert "workflow_error" not in shipped

    failed = shop.get(ORDERS, declined)
    assert failed["status"] == "PAYMENT_FAILED"
    assert failed["workflow_error"]["type"] == "PaymentDeclinedError"
    assert failed["workflow_error"]["stage"] == "VALIDATED"

    cancelled = shop.get(ORDERS, short)
    assert cancelled["status"] == "CANCELLED"  # via OUT_OF_STOCK and its compensation
    assert cancelled["refund_id"].startswith("ref-")
    assert cancelled["workflow_error"]["type"] == "OutOfStockError"
    assert "gadget" in cancelled["workflow_error"]["message"]
    assert "widget" not in cancelled["workflow_error"]["message"]

    rejected = shop.get(ORDERS, empty)
    assert rejected["status"] == "REJECTED"
    assert rejected["workflow_error"]["type"] == "InvalidOrderError"

    # widget: 3 for "ok"; the short order reserved nothing (one transaction).
    assert (stock(shop, "widget"), stock(shop, "gadget")) == (Decimal(7), Decimal(0))
    statuses = [
        (r["dynamodb"]["Keys"]["pk"]["S"], r["dynamodb"]["NewImage"]["status"]["S"])
        for r in shop.history()
        if r["dynamodb"]["Keys"]["pk"]["S"] == short
    ]
    assert [s for _, s in statuses] == ["PLACED", "VALIDATED", "PAID", "OUT_OF_STOCK", "CANCELLED"]


@pytest.mark.usefixtures("products")
def test_redelivering_the_whole_history_changes_nothing(
    shop: Shop, workflow: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = place(shop, "ok", [("widget", 4)])
    shop.drive(workflow.handler)
    before = shop.get(ORDERS, ok)
    history = shop.history()
    capsys.readouterr()
    for _ in range(2):  # a replay (e.g. `streamkit dlq replay`), twice
        assert workflow.handler({"Records": history}, None) == {"batchItemFailures": []}
        # Each stage's record is stale now (already completed); SHIPPED is terminal.
        counts = printed_counts(capsys.readouterr().out, namespace=NAMESPACE, service="workflow")
        assert counts == tally(5, processed=1, already=4)
    assert shop.get(ORDERS, ok) == before
    assert stock(shop, "widget") == 6  # reserved once
    assert len(shop.history()) == len(history)  # no new transitions


@pytest.mark.usefixtures("products")
def test_a_missing_product_is_out_of_stock(shop: Shop, workflow: ModuleType) -> None:
    pk = place(shop, "ghost", [("unicorn", 1)])
    shop.drive(workflow.handler)
    assert shop.get(ORDERS, pk)["status"] == "CANCELLED"


@pytest.mark.usefixtures("products")
def test_a_transient_error_while_reserving_leaves_the_order_paid_for_a_retry(
    shop: Shop, workflow: Any
) -> None:
    from botocore.exceptions import ClientError, EndpointConnectionError

    real = workflow.dynamodb
    errors: list[Exception] = [
        EndpointConnectionError(endpoint_url="http://dynamodb"),
        ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Tx"),
    ]

    class Flaky:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def transact_write_items(self, **request: Any) -> Any:
            if errors:
                raise errors.pop(0)
            return real.transact_write_items(**request)

    workflow.dynamodb = Flaky()
    pk = place(shop, "flaky", [("widget", 1)])
    responses = shop.drive(workflow.handler)
    assert errors == []
    assert sum(1 for r in responses if r["batchItemFailures"]) == 2  # the PAID record, twice
    order = shop.get(ORDERS, pk)
    assert order["status"] == "SHIPPED" and "workflow_error" not in order
    statuses = [r["dynamodb"]["NewImage"]["status"]["S"] for r in shop.history()]
    assert statuses == ["PLACED", "VALIDATED", "PAID", "RESERVED", "SHIPPED"]
    assert stock(shop, "widget") == 9


@pytest.mark.parametrize(
    ("lines", "total", "why"),
    [
        ([{"sku": "widget", "qty": 0}], Decimal(5), "quantity"),
        ([{"sku": "widget", "qty": Decimal("1.5")}], Decimal(5), "quantity"),
        ([{"qty": 1}], Decimal(5), "no sku"),
        ([{"sku": "widget", "qty": 1}], Decimal(0), "total"),
        ([{"sku": f"s{n}", "qty": 1} for n in range(101)], Decimal(5), "distinct skus"),
    ],
)
def test_validation_rejects_malformed_orders(
    workflow: ModuleType, lines: list[dict[str, Any]], total: Decimal, why: str
) -> None:
    with pytest.raises(workflow.InvalidOrderError, match=why):
        workflow.validate(_record({"status": "PLACED", "lines": lines, "total": total}))


def _record(image: dict[str, Any]) -> Any:
    from streamkit import parse_event

    raw = {"eventID": "1", "eventName": "INSERT", "eventSource": "aws:dynamodb",
           "dynamodb": {"Keys": {"pk": {"S": "ORDER#x"}}, "NewImage": serialize(image),
                        "SequenceNumber": "1", "StreamViewType": "NEW_AND_OLD_IMAGES",
                        "ApproximateCreationDateTime": 1_700_000_000}}  # fmt: skip
    return parse_event({"Records": [raw]})[0]


# --- analytics ------------------------------------------------------------------------------


@pytest.mark.usefixtures("products")
def test_analytics_counts_revenue_per_minute_and_orders_per_status_exactly_once(
    shop: Shop,
    workflow: ModuleType,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    analytics = load_handler(
        "analytics", monkeypatch, AGGREGATES_TABLE=AGGREGATES, FENCE_TABLE=FENCES
    )
    place(shop, "a", [("widget", 1)], total=Decimal("10.25"))
    place(shop, "b", [("widget", 1)], total=Decimal("4.50"))
    place(shop, "c", [("widget", 1)], payment_token="decline")
    shop.drive(workflow.handler)
    shop.ddb.delete_item(TableName=ORDERS, Key={"pk": {"S": "ORDER#c"}})
    history = shop.history()
    # First in small batches (so +1 and -1 of one status land in different transactions),
    # then two full redeliveries.
    batches = [history[i : i + 4] for i in range(0, len(history), 4)]
    capsys.readouterr()
    for batch, again in [(b, False) for b in batches] + [(history, True), (history, True)]:
        assert analytics.handler({"Records": batch}, None) == {"batchItemFailures": []}
        # Every record changes a status, so each one contributes (and then has its marker).
        counts = printed_counts(capsys.readouterr().out, namespace=NAMESPACE, service="analytics")
        size = len(batch)
        assert counts == (tally(size, already=size) if again else tally(size, processed=size))

    aggregates = {
        i["pk"]: i for i in (deserialize(r) for r in shop.ddb.scan(TableName=AGGREGATES)["Items"])
    }
    revenue = {k: v for k, v in aggregates.items() if k.startswith("REVENUE#")}
    assert sum(v["revenue"] for v in revenue.values()) == Decimal("14.75")
    assert sum(v["orders"] for v in revenue.values()) == 2
    for key in revenue:
        assert len(key) == len("REVENUE#2026-01-01T00:00")
    counts = {
        k.removeprefix("STATUS#"): v["count"] for k, v in aggregates.items() if "STATUS#" in k
    }
    assert {k: v for k, v in counts.items() if v} == {"SHIPPED": 2}
    assert {"PLACED", "VALIDATED", "PAID"} <= set(counts)  # were written, now back to 0
    # One marker per contributing record: 2 orders x 5 states + c's 3 states + c's removal.
    assert shop.ddb.scan(TableName=FENCES, Select="COUNT")["Count"] == 14
