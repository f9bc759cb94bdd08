"""Customer notifications: an order that becomes PAID or SHIPPED sends one message to an SQS
queue standing in for the email service: ``{"order_id", "customer", "status", "template"}``.

Consumes the ``orders`` stream. Env: ``NOTIFY_QUEUE_URL``, ``IDEMPOTENCY_TABLE``. The mapping
filter passes only MODIFY records whose NewImage.status is PAID or SHIPPED; the routes below
decide the rest from both images: a status *transition* (a MODIFY that leaves PAID unchanged
while touching another attribute sends nothing). Each notification is sent once per stream
record (completion markers per route in the idempotency table).

Observed like every reference handler: JSON logs, one EMF document per invocation in
``METRICS_NAMESPACE`` (default ``streamkit``) with ``Service=notify``, X-Ray subsegments when
aws-xray-sdk is present.
"""

from __future__ import annotations

import json
import os
from typing import Any

import boto3

from streamkit import DynamoDBIdempotencyStore, Router, StreamRecord, became, transition
from streamkit.observability import ObservedConsumer, get_logger

SERVICE = "notify"
METRICS_NAMESPACE = os.environ.get("METRICS_NAMESPACE") or "streamkit"
logger = get_logger(SERVICE, service=SERVICE)

QUEUE_URL = os.environ["NOTIFY_QUEUE_URL"]
ORDER_PREFIX = "ORDER#"

sqs = boto3.client("sqs")
store = DynamoDBIdempotencyStore(os.environ["IDEMPOTENCY_TABLE"])
router = Router("notify", idempotency=store)


def notification(record: StreamRecord, template: str) -> dict[str, Any]:
    image = record.new_image or {}
    return {
        "order_id": str(record.keys["pk"]).removeprefix(ORDER_PREFIX),
        "customer": image.get("customer"),
        "status": image["status"],
        "template": template,
    }


def send(record: StreamRecord, template: str) -> None:
    message = notification(record, template)
    sqs.send_message(QueueUrl=QUEUE_URL, MessageBody=json.dumps(message))
    logger.debug("sent", template=template, order_id=message["order_id"])


@router.route(events="MODIFY", key_prefix={"pk": ORDER_PREFIX}, when=became("status", "PAID"))
def payment_received(record: StreamRecord) -> None:
    send(record, "payment-received")


@router.route(
    events="MODIFY", key_prefix={"pk": ORDER_PREFIX}, when=transition("status", to="SHIPPED")
)
def order_shipped(record: StreamRecord) -> None:
    send(record, "order-shipped")


router.validate()
handler = ObservedConsumer(router, namespace=METRICS_NAMESPACE, service=SERVICE)
