"""The reference app's stateful parts (handlers/workflow, the analytics counters of
handlers/orderplatform), in-process over moto's in-memory DynamoDB (``mock_aws``, no HTTP): the
order pipeline driven by the orders table's own stream, and the exactly-once counters over the
same records."""

from __future__ import annotations

import importlib.util
import time
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
from tests.helpers.stream_data import lambda_record

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

    # RESERVED is where the pipeline hands over to fulfilment (Step Functions ships it).
    reserved = shop.get(ORDERS, ok)
    assert (reserved["status"], reserved["version"]) == ("RESERVED", 4)
    assert reserved["payment_id"].startswith("pay-")
    assert "workflow_error" not in reserved
    # Every state write stamps updated_at (epoch ms): consumers measure latency from it.
    stamps = [
        int(r["dynamodb"]["NewImage"]["updated_at"]["N"])
        for r in shop.history()
        if r["dynamodb"]["Keys"]["pk"]["S"] == ok and "updated_at" in r["dynamodb"]["NewImage"]
    ]
    assert len(stamps) == 3 and stamps == sorted(stamps)
    assert abs(stamps[-1] - time.time() * 1000) < 60_000
    # The reservation stamps the products too, deterministically (a retry sends the same
    # request under its ClientRequestToken): with the PAID write's stamp, its cause.
    paid_stamp = stamps[1]
    for sku in ("widget", "gadget"):
        assert shop.get(PRODUCTS, f"PRODUCT#{sku}")["updated_at"] == paid_stamp

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
        # Each stage's record is stale now (already completed); RESERVED is terminal here.
        out = capsys.readouterr().out
        counts = printed_counts(out, namespace=NAMESPACE, service="workflow")
        assert counts == tally(4, processed=1, already=3)
        assert '"Target":"workflow"' not in out  # no stage ran: nothing measured
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
    assert order["status"] == "RESERVED" and "workflow_error" not in order
    statuses = [r["dynamodb"]["NewImage"]["status"]["S"] for r in shop.history()]
    assert statuses == ["PLACED", "VALIDATED", "PAID", "RESERVED"]
    assert stock(shop, "widget") == 9


@pytest.mark.usefixtures("products")
def test_a_poison_order_fails_every_delivery_and_stays_placed(
    shop: Shop, workflow: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    pk = place(shop, "poison", [("widget", 1)], payment_token="poison")
    history = shop.history()
    for _ in range(3):  # what the mapping's retries would see, every time
        response = workflow.handler({"Records": history}, None)
        assert response == {
            "batchItemFailures": [{"itemIdentifier": history[0]["dynamodb"]["SequenceNumber"]}]
        }
        out = capsys.readouterr().out
        assert printed_counts(out, namespace=NAMESPACE, service="workflow") == tally(1, failed=1)
    assert shop.get(ORDERS, pk)["status"] == "PLACED"
    assert len(shop.history()) == 1


@pytest.mark.usefixtures("products")
def test_a_cancelled_order_stops_and_a_stage_racing_the_cancel_does_nothing(
    shop: Shop, workflow: ModuleType
) -> None:
    pk = place(shop, "changed-mind", [("widget", 1)])
    placed = shop.history()
    # The customer cancels before the workflow saw the order.
    shop.ddb.update_item(
        TableName=ORDERS, Key={"pk": {"S": pk}},
        UpdateExpression="SET #s = :c, #v = #v + :one",
        ConditionExpression="#s IN (:p, :v)",
        ExpressionAttributeNames={"#s": "status", "#v": "version"},
        ExpressionAttributeValues={":c": {"S": "CANCELLED"}, ":one": {"N": "1"},
                                   ":p": {"S": "PLACED"}, ":v": {"S": "VALIDATED"}},
    )  # fmt: skip
    assert workflow.handler({"Records": placed}, None) == {"batchItemFailures": []}
    shop.drive(workflow.handler)
    cancelled = shop.get(ORDERS, pk)
    assert (cancelled["status"], cancelled["version"]) == ("CANCELLED", 2)
    assert stock(shop, "widget") == 10


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

    raw = lambda_record(
        1, keys={"pk": {"S": "ORDER#x"}}, event_name="INSERT", new_image=serialize(image)
    )
    return parse_event({"Records": [raw]})[0]


# --- analytics ------------------------------------------------------------------------------


@pytest.mark.usefixtures("products")
def test_analytics_counts_revenue_per_minute_and_orders_per_status_exactly_once(
    shop: Shop, workflow: ModuleType
) -> None:
    from orderplatform.analytics import AnalyticsTarget

    analytics = AnalyticsTarget(table=AGGREGATES, fence_table=FENCES, client=shop.ddb).counters
    place(shop, "a", [("widget", 1)], total=Decimal("10.25"))
    place(shop, "b", [("widget", 1)], total=Decimal("4.50"))
    place(shop, "c", [("widget", 1)], payment_token="decline")
    shop.drive(workflow.handler)
    for pk in ("ORDER#a", "ORDER#b"):  # what the fulfilment state machine does
        shop.ddb.update_item(
            TableName=ORDERS, Key={"pk": {"S": pk}},
            UpdateExpression="SET #s = :shipped, #v = #v + :one",
            ExpressionAttributeNames={"#s": "status", "#v": "version"},
            ExpressionAttributeValues={":shipped": {"S": "SHIPPED"}, ":one": {"N": "1"}},
        )  # fmt: skip
    # A duplicate producer write: a no-op MODIFY counts nothing.
    shop.put(ORDERS, shop.get(ORDERS, "ORDER#a"))
    shop.ddb.delete_item(TableName=ORDERS, Key={"pk": {"S": "ORDER#c"}})
    history = shop.history()
    # First in small batches (so +1 and -1 of one status land in different transactions),
    # then two full redeliveries.
    batches = [history[i : i + 4] for i in range(0, len(history), 4)]
    for batch, again in [(b, False) for b in batches] + [(history, True), (history, True)]:
        result = analytics.run({"Records": batch})
        assert result.response() == {"batchItemFailures": []}
        # moto emits a MODIFY with equal images for the no-op write (AWS, and moto under the
        # emulator's patches, emit none); if it is there it contributes nothing.
        noops = sum(
            1
            for r in batch
            if r["eventName"] == "MODIFY" and r["dynamodb"]["OldImage"] == r["dynamodb"]["NewImage"]
        )
        assert result.no_deltas == noops
        if again:  # every record with deltas was applied before
            assert (result.already_applied, result.applied) == (len(batch) - noops, 0)

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
    assert {"PLACED", "VALIDATED", "PAID", "RESERVED"} <= set(counts)  # written, back to 0
    # One marker per contributing record: 2 orders x 5 states + c's 3 states + c's removal.
    assert shop.ddb.scan(TableName=FENCES, Select="COUNT")["Count"] == 14
