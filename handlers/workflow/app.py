"""The order pipeline: PLACED -> VALIDATED -> PAID -> RESERVED, on the ``orders`` table's
``status`` and ``version`` attributes, driven by the table's own stream. RESERVED is where the
pipeline hands over: the ``order_events`` function's fulfilment target starts the fulfilment
state machine (Step Functions), which marks the order SHIPPED.

Env: ``ORDERS_TABLE``, ``PRODUCTS_TABLE``. Each stage's state write is a fenced conditional
update (``streamkit.routing.workflow``), and that write is the stream record that runs the
next stage. Failure states:

- ``REJECTED``: validation failed (no lines, a bad quantity, a non-positive total);
- ``PAYMENT_FAILED``: the (simulated) payment was declined: ``payment_token == "decline"``;
- a poison order (``payment_token == "poison"``, for demos and the load test): validation raises
  ``PoisonOrderError`` every time, which the stage retries instead of failing the order, so the
  record exhausts the mapping's retries and lands in the on-failure queue; the order stays PLACED;
- ``OUT_OF_STOCK``: a line could not be reserved. All lines are reserved in one
  TransactWriteItems (conditional decrements of ``stock``), so a failed reservation reserved
  nothing; the compensation refunds the payment and ends in ``CANCELLED``.

A customer may cancel (``CANCELLED``, version + 1) while the order is PLACED or VALIDATED; a
stage racing the cancellation finds the item moved (its fenced write fails) and does nothing.
Every state write stamps ``updated_at`` (epoch ms, ``Workflow(stamp_attribute=...)``).

Side effects use ``ctx.idempotency_key`` (stable per stage run of one order version): the
payment and shipment ids derive from it, and the stock transaction passes it as
``ClientRequestToken``, so a retried reservation within DynamoDB's 10-minute token window
does not decrement twice.

Observed like every reference handler: JSON logs, one EMF document per invocation in
``METRICS_NAMESPACE`` (default ``streamkit``) with ``Service=workflow``, X-Ray subsegments
when aws-xray-sdk is present; ``ChangeToHandlerLatency`` with ``Target=workflow`` per stage run.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from decimal import Decimal
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from streamkit import Next, RetryStage, StreamRecord, Workflow
from streamkit.observability import ChangeLatency, ObservedConsumer
from streamkit.routing import StageContext

SERVICE = "workflow"
METRICS_NAMESPACE = os.environ.get("METRICS_NAMESPACE") or "streamkit"
ORDERS_TABLE = os.environ["ORDERS_TABLE"]
PRODUCTS_TABLE = os.environ["PRODUCTS_TABLE"]
# TransactWriteItems holds at most 100 actions, one per distinct sku.
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
MAX_SKUS = 100

dynamodb = boto3.client("dynamodb")
# A connection error or timeout talking to DynamoDB is transient in every stage: the order
# stays where it is and Lambda redelivers the record, instead of the order failing.
workflow = Workflow(
    "order-pipeline",
    table=ORDERS_TABLE,
    client=dynamodb,
    retry_on=(BotoCoreError,),
    stamp_attribute="updated_at",
)
latency = ChangeLatency(namespace=METRICS_NAMESPACE)
measured = latency.target(SERVICE)


class InvalidOrderError(ValueError):
    """The order cannot be processed as placed; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class PoisonOrderError(Exception):
    """An order this pipeline can never process (raised every time; the stage retries it)."""


class PaymentDeclinedError(Exception):
    """The payment provider declined the charge."""

    def __init__(self, amount: Decimal) -> None:
        super().__init__(f"payment of {amount} declined")
        self.amount = amount


class OutOfStockError(Exception):
    """Some lines could not be reserved; ``skus`` names them."""

    def __init__(self, skus: list[str]) -> None:
        super().__init__(f"insufficient stock for {', '.join(skus)}")
        self.skus = skus


def _token(key: str, prefix: str = "") -> str:
    return prefix + hashlib.sha256(key.encode()).hexdigest()[:32]


def quantities(image: dict[str, Any]) -> Counter[str]:
    """``{sku: total quantity}`` of the order's lines; InvalidOrderError when malformed."""
    lines = image.get("lines")
    if not isinstance(lines, list) or not lines:
        raise InvalidOrderError("an order needs at least one line")
    wanted: Counter[str] = Counter()
    for index, line in enumerate(lines):
        sku = line.get("sku") if isinstance(line, dict) else None
        qty = line.get("qty") if isinstance(line, dict) else None
        if not isinstance(sku, str) or not sku:
            raise InvalidOrderError(f"line {index} has no sku")
        if not isinstance(qty, Decimal) or qty != qty.to_integral_value() or qty <= 0:
            raise InvalidOrderError(f"line {index} ({sku}) has quantity {qty!r}")
        wanted[sku] += int(qty)
    if len(wanted) > MAX_SKUS:
        raise InvalidOrderError(f"{len(wanted)} distinct skus; at most {MAX_SKUS}")
    return wanted


@workflow.stage("PLACED", next="VALIDATED", on_error="REJECTED", retry_on=(PoisonOrderError,))
@measured
def validate(record: StreamRecord) -> None:
    image = record.new_image or {}
    if image.get("payment_token") == "poison":
        raise PoisonOrderError(f"order {record.keys.get('pk')} is poison")
    quantities(image)
    total = image.get("total")
    if not isinstance(total, Decimal) or total <= 0:
        raise InvalidOrderError(f"total {total!r} is not a positive amount")


@workflow.stage("VALIDATED", next="PAID", on_error="PAYMENT_FAILED")
@measured
def take_payment(record: StreamRecord, ctx: StageContext) -> Next:
    image = record.new_image or {}
    # Simulated provider, deterministic so tests and demos can choose the outcome.
    if image.get("payment_token") == "decline":
        raise PaymentDeclinedError(image["total"])
    return Next("PAID", attributes={"payment_id": _token(ctx.idempotency_key, "pay-")})


@workflow.stage("PAID", next="RESERVED", on_error="OUT_OF_STOCK")
@measured
def reserve_inventory(record: StreamRecord, ctx: StageContext) -> None:
    image = record.new_image or {}
    wanted = sorted(quantities(image).items())
    # Every write stamps updated_at (consumers measure change latency from it), but a retried
    # reservation must send exactly the same request: DynamoDB answers a reused
    # ClientRequestToken with other parameters with IdempotentParameterMismatchException
    # (https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html).
    # So the stamp is deterministic: the PAID write's own stamp, the change that caused this
    # one. product_events' latency for a reservation therefore counts from the PAID write.
    stamp = image.get("updated_at")
    stamped = isinstance(stamp, Decimal) and stamp == stamp.to_integral_value()
    actions = [
        {
            "Update": {
                "TableName": PRODUCTS_TABLE,
                "Key": {"pk": {"S": f"PRODUCT#{sku}"}},
                "UpdateExpression": "SET #stock = #stock - :qty"
                + (", #at = :at" if stamped else ""),
                "ConditionExpression": "#stock >= :qty",
                "ExpressionAttributeNames": {
                    "#stock": "stock",
                    **({"#at": "updated_at"} if stamped else {}),
                },
                "ExpressionAttributeValues": {
                    ":qty": {"N": str(qty)},
                    **({":at": {"N": str(stamp)}} if stamped else {}),
                },
            }
        }
        for sku, qty in wanted
    ]
    try:
        dynamodb.transact_write_items(
            TransactItems=actions, ClientRequestToken=_token(ctx.idempotency_key)
        )
    except ClientError as exc:
        reasons = exc.response.get("CancellationReasons") or []
        short = [
            sku
            for (sku, _), reason in zip(wanted, reasons, strict=False)
            if reason.get("Code") == "ConditionalCheckFailed"
        ]
        if short:
            raise OutOfStockError(short) from exc
        # Throttling, a conflicting transaction, an outage: the order stays PAID and Lambda
        # redelivers the record.
        raise RetryStage(f"reserving stock failed: {exc}") from exc


@workflow.compensation("OUT_OF_STOCK", next="CANCELLED")
@measured
def refund(record: StreamRecord, ctx: StageContext) -> Next:
    # Nothing was reserved (the reservation is one transaction); refund the payment.
    payment = (record.new_image or {}).get("payment_id", "")
    return Next(
        "CANCELLED", attributes={"refund_id": _token(f"{payment}:{ctx.idempotency_key}", "ref-")}
    )


# RESERVED: fulfilment (Step Functions) takes over; the others are final.
workflow.terminal("RESERVED", "SHIPPED", "REJECTED", "PAYMENT_FAILED", "CANCELLED")
workflow.validate()
handler = latency.observe(ObservedConsumer(workflow, namespace=METRICS_NAMESPACE, service=SERVICE))
