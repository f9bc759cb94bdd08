"""Workflow on the embedded emulator: each stage's fenced write is a real stream record that
drives the next stage. A small driver plays Lambda: it reads the records the stream has not
delivered yet and hands them to ``Workflow.handle`` (redelivering what was reported), until
the stream is quiet. Then the table is checked, and the whole history is replayed to prove that
stale and duplicate deliveries change nothing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest

from streamkit.records import StreamRecord
from streamkit.routing import Next, RetryStage, StageContext, Workflow
from tests.helpers import AwsClients, create_stream_table, lambda_records


@dataclass
class Shop:
    """The order pipeline of the reference platform, with its side effects counted."""

    table: str
    payments: list[str] = field(default_factory=list)  # idempotency keys of charges
    refunds: list[str] = field(default_factory=list)
    shipments: list[str] = field(default_factory=list)
    stock: dict[str, int] = field(default_factory=lambda: {"widget": 5, "gadget": 0})
    transient_payment_failures: int = 0

    def workflow(self, client: Any, **options: Any) -> Workflow:
        wf = Workflow("orders", table=self.table, client=client, **options)

        @wf.stage("PLACED", next="VALIDATED", on_error="REJECTED")
        def validate(record: StreamRecord) -> None:
            if record.new_image["total"] <= 0:  # type: ignore[index]
                raise ValueError(f"total {record.new_image['total']} is not positive")  # type: ignore[index]

        @wf.stage("VALIDATED", next="PAID", on_error="PAYMENT_FAILED")
        def take_payment(record: StreamRecord, ctx: StageContext) -> Next:
            if self.transient_payment_failures:
                self.transient_payment_failures -= 1
                raise RetryStage("payment provider timed out")
            self.payments.append(ctx.idempotency_key)
            return Next("PAID", attributes={"payment_id": f"pay-{len(self.payments)}"})

        @wf.stage("PAID", next="INVENTORY_RESERVED", on_error="REFUND_PENDING")
        def reserve(record: StreamRecord) -> str:
            sku = record.new_image["sku"]  # type: ignore[index]
            if self.stock[sku] <= 0:
                raise LookupError(f"{sku} is out of stock")
            self.stock[sku] -= 1
            return "INVENTORY_RESERVED"

        @wf.stage("INVENTORY_RESERVED", next="SHIPPED")
        def ship(record: StreamRecord) -> str:
            self.shipments.append(record.keys["pk"])
            return "SHIPPED"

        @wf.compensation("REFUND_PENDING", next="REFUNDED")
        def refund(record: StreamRecord) -> None:
            self.refunds.append(record.new_image["payment_id"])  # type: ignore[index]

        @wf.compensation("CANCEL_REQUESTED", next="CANCELLED")
        def cancel(record: StreamRecord) -> None:
            payment = record.new_image.get("payment_id")  # type: ignore[union-attr]
            if payment:
                self.refunds.append(payment)

        wf.terminal("SHIPPED", "REJECTED", "PAYMENT_FAILED", "REFUNDED", "CANCELLED")
        wf.validate()
        return wf


@dataclass
class Driver:
    """Plays the event source mapping over the table's stream."""

    aws: AwsClients
    stream_arn: str
    delivered: int = 0

    def pending(self) -> list[dict[str, Any]]:
        return self._lambda_records()[self.delivered :]

    def run(self, wf: Workflow, *, max_rounds: int = 40) -> list[dict[str, Any]]:
        """Deliver until quiet; returns every response."""
        responses = []
        for _ in range(max_rounds):
            batch = self.pending()
            if not batch:
                return responses
            response = wf.handle({"Records": batch})
            responses.append(response)
            failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            # Checkpoint before the lowest reported record; redeliver from it next round.
            sequence = [r["dynamodb"]["SequenceNumber"] for r in batch]
            first_failed = min((sequence.index(s) for s in failed), default=len(batch))
            self.delivered += first_failed
        raise AssertionError("the stream never went quiet")

    def history(self) -> list[dict[str, Any]]:
        return self._lambda_records()

    def _lambda_records(self) -> list[dict[str, Any]]:
        return lambda_records(self.aws.dynamodbstreams, self.stream_arn)


@pytest.fixture
def setup(aws: AwsClients, unique_name: Callable[[str], str]) -> tuple[Shop, Driver]:
    table = unique_name("orders")
    stream_arn = create_stream_table(aws.dynamodb, table)
    return Shop(table), Driver(aws, stream_arn)


def items(aws: AwsClients, table: str) -> dict[str, dict[str, Any]]:
    from streamkit.codec import deserialize

    scanned = aws.dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
    return {i["pk"]["S"]: deserialize(i) for i in scanned}


def place(wf: Workflow, pk: str, total: str, sku: str = "widget") -> None:
    assert wf.start({"pk": pk, "total": Decimal(total), "sku": sku}, state="PLACED")


def test_orders_move_through_every_stage_and_failures_land_in_inspectable_states(
    aws: AwsClients, setup: tuple[Shop, Driver]
) -> None:
    shop, driver = setup
    wf = shop.workflow(aws.dynamodb)
    place(wf, "ORDER#ok", "25.00")
    place(wf, "ORDER#free", "0")  # fails validation
    place(wf, "ORDER#nostock", "10.00", sku="gadget")  # fails after payment: refund
    assert not wf.start({"pk": "ORDER#ok", "total": Decimal(1)}, state="PLACED")  # exists
    responses = driver.run(wf)
    assert all(r == {"batchItemFailures": []} for r in responses)

    table = items(aws, shop.table)
    ok = table["ORDER#ok"]
    assert (ok["status"], ok["version"], ok["payment_id"]) == ("SHIPPED", 5, "pay-1")
    assert "workflow_error" not in ok
    free = table["ORDER#free"]
    assert (free["status"], free["version"]) == ("REJECTED", 2)
    assert free["workflow_error"]["stage"] == "PLACED"
    assert free["workflow_error"]["type"] == "ValueError"
    assert free["workflow_error"]["version"] == 1
    assert "not positive" in free["workflow_error"]["message"]
    nostock = table["ORDER#nostock"]
    assert (nostock["status"], nostock["version"]) == ("REFUNDED", 5)
    assert nostock["workflow_error"]["stage"] == "PAID"
    assert shop.payments == [
        "orders:" + '[["pk","S","ORDER#ok"]]:VALIDATED:2',
        "orders:" + '[["pk","S","ORDER#nostock"]]:VALIDATED:2',
    ]
    assert shop.refunds == ["pay-2"]
    assert shop.shipments == ["ORDER#ok"]
    assert shop.stock == {"widget": 4, "gadget": 0}
    assert wf.counts()["advanced"] == 4 + 2 + 1  # ok: 4, nostock: PLACED, VALIDATED, refund


@pytest.mark.parametrize("precheck", [True, False])
def test_replaying_the_whole_history_changes_nothing(
    aws: AwsClients, setup: tuple[Shop, Driver], precheck: bool
) -> None:
    shop, driver = setup
    wf = shop.workflow(aws.dynamodb)
    for n in range(4):
        place(wf, f"ORDER#{n}", "10.00")
    driver.run(wf)
    before = items(aws, shop.table)
    assert {i["status"] for i in before.values()} == {"SHIPPED"}
    payments = list(shop.payments)

    # Every record again, in one batch, then in reverse order one by one: stale and
    # duplicate deliveries of every stage.
    history = driver.history()
    replay = shop.workflow(aws.dynamodb, precheck=precheck)
    assert replay.handle({"Records": history}) == {"batchItemFailures": []}
    for record in reversed(history):
        assert replay.handle({"Records": [record]}) == {"batchItemFailures": []}
    assert items(aws, shop.table) == before  # nothing moved backwards, no stage skipped
    counts = replay.counts()
    assert counts.get("advanced", 0) == 0 and counts.get("failed", 0) == 0
    assert counts["stale"] == 2 * 4 * 4  # four stages per order, delivered twice
    if precheck:
        assert shop.payments == payments  # the consistent read kept side effects from repeating


def test_retry_stage_leaves_the_item_and_the_redelivery_runs_the_stage_again(
    aws: AwsClients, setup: tuple[Shop, Driver]
) -> None:
    shop, driver = setup
    shop.transient_payment_failures = 2
    wf = shop.workflow(aws.dynamodb)
    place(wf, "ORDER#1", "10.00")
    responses = driver.run(wf)
    reported = [r for r in responses if r["batchItemFailures"]]
    assert len(reported) == 2  # the VALIDATED record, reported twice, then it went through
    table = items(aws, shop.table)
    assert table["ORDER#1"]["status"] == "SHIPPED"
    assert len(shop.payments) == 1


def test_a_cancellation_fences_out_the_stage_that_was_about_to_run(
    aws: AwsClients, setup: tuple[Shop, Driver]
) -> None:
    shop, driver = setup
    wf = shop.workflow(aws.dynamodb)
    place(wf, "ORDER#1", "10.00")
    # Deliver only the INSERT: the item is VALIDATED and its record is in the stream, unread.
    first = driver.pending()[:1]
    assert wf.handle({"Records": first}) == {"batchItemFailures": []}
    driver.delivered = 1
    # A customer cancels now (an API writing through the workflow).
    assert wf.request({"pk": "ORDER#1"}, "CANCEL_REQUESTED", from_states=["PLACED", "VALIDATED"])
    assert not wf.request({"pk": "ORDER#1"}, "CANCEL_REQUESTED", from_states=["SHIPPED"])
    driver.run(wf)
    table = items(aws, shop.table)
    assert (table["ORDER#1"]["status"], table["ORDER#1"]["version"]) == ("CANCELLED", 4)
    assert shop.payments == []  # the VALIDATED record was stale: no charge
    assert wf.counts()["stale"] == 1


def test_a_redrive_puts_a_failed_item_back_into_a_stage(
    aws: AwsClients, setup: tuple[Shop, Driver]
) -> None:
    shop, driver = setup
    wf = shop.workflow(aws.dynamodb)
    shop.stock["widget"] = 0
    place(wf, "ORDER#1", "10.00")
    driver.run(wf)
    assert items(aws, shop.table)["ORDER#1"]["status"] == "REFUNDED"
    # An operator restocks and redrives: back to VALIDATED (charging again, since refunded).
    shop.stock["widget"] = 1
    assert wf.request({"pk": "ORDER#1"}, "VALIDATED", from_states=["REFUNDED"])
    driver.run(wf)
    item = items(aws, shop.table)["ORDER#1"]
    assert item["status"] == "SHIPPED"
    assert "workflow_error" not in item  # a successful stage clears the last error
    assert len(shop.payments) == 2 and shop.refunds == ["pay-1"]


def test_a_stage_answer_that_cannot_be_written_is_that_stages_failure(
    aws: AwsClients, setup: tuple[Shop, Driver]
) -> None:
    shop, driver = setup
    wf = Workflow("answers", table=shop.table, client=aws.dynamodb)

    @wf.stage("A", next="B", on_error="BROKEN")
    def undeclared(record: StreamRecord) -> str:
        return "C"

    @wf.stage("X", next="Y", on_error="BROKEN")
    def inexact(record: StreamRecord) -> Next:
        return Next("Y", attributes={"ratio": 0.5})  # floats are not stored inexactly

    @wf.stage("K", next="L", on_error="BROKEN")
    def rekey(record: StreamRecord) -> Next:
        return Next("L", attributes={"pk": "ORDER#other"})

    wf.terminal("B", "Y", "L", "BROKEN")
    for pk, state in (("ORDER#a", "A"), ("ORDER#x", "X"), ("ORDER#k", "K")):
        assert wf.start({"pk": pk}, state=state)
    assert all(r == {"batchItemFailures": []} for r in driver.run(wf))
    table = items(aws, shop.table)
    assert {pk: (i["status"], i["version"]) for pk, i in table.items()} == {
        "ORDER#a": ("BROKEN", 2),
        "ORDER#x": ("BROKEN", 2),
        "ORDER#k": ("BROKEN", 2),
    }
    errors = {pk: i["workflow_error"]["type"] for pk, i in table.items()}
    assert errors == {
        "ORDER#a": "InvalidTransitionError",
        "ORDER#x": "SerializationError",
        "ORDER#k": "InvalidWorkflowError",
    }
    assert "declares next states ['B']" in table["ORDER#a"]["workflow_error"]["message"]


# --- through the runner -------------------------------------------------------------------------

PIPELINE_APP = r"""
import json
import os

import boto3

from streamkit.routing import Next, RetryStage, Workflow

ddb = boto3.client("dynamodb")
sqs = boto3.client("sqs")
LEDGER, INVENTORY = os.environ["LEDGER_TABLE"], os.environ["INVENTORY_TABLE"]

wf = Workflow("orders", table=os.environ["ORDERS_TABLE"], client=ddb)


def bump(key):
    response = ddb.update_item(
        TableName=LEDGER, Key={"pk": {"S": key}}, UpdateExpression="ADD n :one",
        ExpressionAttributeValues={":one": {"N": "1"}}, ReturnValues="UPDATED_NEW",
    )
    return int(response["Attributes"]["n"]["N"])


def notify(kind, record):
    sqs.send_message(
        QueueUrl=os.environ["NOTIFY_QUEUE"],
        MessageBody=json.dumps({"kind": kind, "order": record.keys["pk"]}),
    )


@wf.stage("PLACED", next="VALIDATED", on_error="REJECTED")
def validate(record):
    if record.new_image["total"] <= 0:
        raise ValueError("total must be positive")


@wf.stage("VALIDATED", next="PAID", on_error="PAYMENT_FAILED")
def take_payment(record, ctx):
    # The provider times out on the first attempt of every order: retried by redelivery.
    if bump(f"ATTEMPTS#{record.keys['pk']}") == 1:
        raise RetryStage("payment provider timed out")
    bump(f"CHARGES#{record.keys['pk']}")
    return Next("PAID", attributes={"payment_id": ctx.idempotency_key})


@wf.stage("PAID", next="INVENTORY_RESERVED", on_error="REFUND_PENDING")
def reserve(record):
    try:
        ddb.update_item(
            TableName=INVENTORY, Key={"pk": {"S": record.new_image["sku"]}},
            UpdateExpression="ADD stock :minus", ConditionExpression="stock > :zero",
            ExpressionAttributeValues={":minus": {"N": "-1"}, ":zero": {"N": "0"}},
        )
    except ddb.exceptions.ConditionalCheckFailedException:
        raise LookupError(f"{record.new_image['sku']} is out of stock") from None


@wf.stage("INVENTORY_RESERVED", next="SHIPPED")
def ship(record):
    notify("shipped", record)


@wf.compensation("REFUND_PENDING", next="REFUNDED")
def refund(record):
    bump(f"REFUNDS#{record.keys['pk']}")
    notify("refunded", record)


wf.terminal("SHIPPED", "REJECTED", "PAYMENT_FAILED", "REFUNDED")
wf.validate()


def handler(event, context):
    return wf.handle(event, context)
"""


def test_the_pipeline_runs_end_to_end_through_the_runner(
    aws: AwsClients, endpoint_url: str, unique_name: Callable[[str], str], tmp_path: Any
) -> None:
    import json

    from tests.helpers.streamkit_zip import deploy_streamkit_function, running_mapping, wait_for

    orders = unique_name("orders")
    stream_arn = create_stream_table(aws.dynamodb, orders)
    ledger, inventory = unique_name("ledger"), unique_name("inventory")
    for name in (ledger, inventory):
        aws.dynamodb.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    aws.dynamodb.put_item(TableName=inventory, Item={"pk": {"S": "widget"}, "stock": {"N": "5"}})
    aws.dynamodb.put_item(TableName=inventory, Item={"pk": {"S": "gadget"}, "stock": {"N": "0"}})
    queue = aws.sqs.create_queue(QueueName=unique_name("notify"))["QueueUrl"]
    function = unique_name("pipeline")
    env = {
        "ORDERS_TABLE": orders,
        "LEDGER_TABLE": ledger,
        "INVENTORY_TABLE": inventory,
        "NOTIFY_QUEUE": queue,
    }
    deploy_streamkit_function(aws, function, PIPELINE_APP, env=env)
    for pk, total, sku in (
        ("ORDER#ok", "25", "widget"),
        ("ORDER#free", "0", "widget"),
        ("ORDER#nostock", "9", "gadget"),
    ):
        aws.dynamodb.put_item(
            TableName=orders,
            Item={
                "pk": {"S": pk},
                "status": {"S": "PLACED"},
                "version": {"N": "1"},
                "total": {"N": total},
                "sku": {"S": sku},
            },
        )
    final = {"ORDER#ok": "SHIPPED", "ORDER#free": "REJECTED", "ORDER#nostock": "REFUNDED"}
    with running_mapping(
        aws, endpoint_url, tmp_path / "state", function=function, stream_arn=stream_arn,
        BatchSize=10, MaximumRetryAttempts=5,
    ):  # fmt: skip
        wait_for(
            lambda: {pk: i["status"] for pk, i in items(aws, orders).items()} == final,
            timeout=60,
            what="every order in its final state",
        )
    table = items(aws, orders)
    assert table["ORDER#ok"]["version"] == 5  # four stage writes from version 1
    assert table["ORDER#ok"]["payment_id"] == 'orders:[["pk","S","ORDER#ok"]]:VALIDATED:2'
    assert table["ORDER#free"]["workflow_error"]["type"] == "ValueError"
    assert table["ORDER#nostock"]["workflow_error"]["message"] == "gadget is out of stock"
    ledger_items = items(aws, ledger)
    assert {k: v["n"] for k, v in ledger_items.items()} == {
        "ATTEMPTS#ORDER#ok": 2, "CHARGES#ORDER#ok": 1,
        "ATTEMPTS#ORDER#nostock": 2, "CHARGES#ORDER#nostock": 1,
        "REFUNDS#ORDER#nostock": 1,
    }  # fmt: skip
    assert items(aws, inventory)["widget"]["stock"] == 4
    messages = aws.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]
    assert sorted(
        (json.loads(m["Body"])["kind"], json.loads(m["Body"])["order"]) for m in messages
    ) == [
        ("refunded", "ORDER#nostock"),
        ("shipped", "ORDER#ok"),
    ]
