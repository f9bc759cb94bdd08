"""Cache invalidation: every MODIFY or REMOVE of an order or a product publishes
``{"table", "keys", "reason"}`` to an SNS topic; cache nodes subscribe and drop the entry.

Consumes the ``orders`` and ``products`` streams. Env: ``CACHE_TOPIC_ARN``,
``IDEMPOTENCY_TABLE``. The mapping filter passes only MODIFY and REMOVE; the route says the
same, so the function is also right without the filter (e.g. under ``streamkit run`` with a
mapping created by hand). ``reason`` is ``MODIFY``, ``REMOVE`` or ``TTL_EXPIRED``. The message
carries a ``table`` message attribute so a subscriber can filter by table. Each record is
published once (per-record completion markers in the idempotency table); an invalidation
is harmless to repeat anyway, so the markers are about cost, not correctness.

Observed like every reference handler: JSON logs, one EMF document per invocation in
``METRICS_NAMESPACE`` (default ``streamkit``) with ``Service=cache``, X-Ray subsegments when
aws-xray-sdk is present.
"""

from __future__ import annotations

import base64
import json
import os
from decimal import Decimal
from typing import Any

import boto3

from streamkit import DynamoDBIdempotencyStore, Router, StreamRecord
from streamkit.observability import ObservedConsumer, get_logger

SERVICE = "cache"
METRICS_NAMESPACE = os.environ.get("METRICS_NAMESPACE") or "streamkit"
logger = get_logger(SERVICE, service=SERVICE)

TOPIC_ARN = os.environ["CACHE_TOPIC_ARN"]

sns = boto3.client("sns")
store = DynamoDBIdempotencyStore(os.environ["IDEMPOTENCY_TABLE"])
router = Router("cache", idempotency=store)


def plain(value: Any) -> Any:
    """JSON for a key value: integral Decimal keys as numbers (others as exact text), binary keys as base64 text."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} is not a key type")


def invalidation(record: StreamRecord) -> dict[str, Any]:
    reason = "TTL_EXPIRED" if record.is_ttl_delete else record.event_name
    return {"table": record.table_name, "keys": record.keys, "reason": reason}


@router.route(events=["MODIFY", "REMOVE"])
def invalidate(record: StreamRecord) -> None:
    message = invalidation(record)
    sns.publish(
        TopicArn=TOPIC_ARN,
        Message=json.dumps(message, default=plain, separators=(",", ":")),
        MessageAttributes={"table": {"DataType": "String", "StringValue": str(message["table"])}},
    )
    logger.debug("invalidated", table=message["table"], reason=message["reason"])


router.validate()
handler = ObservedConsumer(router, namespace=METRICS_NAMESPACE, service=SERVICE)
