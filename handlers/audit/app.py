"""Audit trail: one item per change of an order or a product, in the audit table.

Consumes the ``orders`` and ``products`` streams (one mapping each). Env: ``AUDIT_TABLE``,
``IDEMPOTENCY_TABLE``; optional ``AUDIT_INCLUDE_IMAGES=true`` adds the full old/new images
(off by default: images may hold personal data, and the audit only needs what changed).

Item: ``pk = <table>#<item key>``, ``sk = <ApproximateCreationDateTime ISO>#<SequenceNumber>``
(sorts by time, unique per change), ``event``, ``changed`` (attribute names), ``old_status`` /
``new_status`` when present. The put is naturally idempotent (same key, same content) and the
batched idempotency store skips records already written, so a redelivered batch costs one
BatchGetItem per 100 records instead of a write per record. ``per_key`` ordering: one item's
failure only holds back that item's later changes.

Observed (``streamkit.observability``): JSON logs, one EMF document per invocation in the
namespace ``METRICS_NAMESPACE`` (default ``streamkit``) with ``Service=audit``, and X-Ray
subsegments when aws-xray-sdk is present (the deployment zip leaves it out: no tracing).
"""

from __future__ import annotations

import os
from typing import Any

import boto3

from streamkit import DynamoDBIdempotencyStore, StreamRecord, serialize
from streamkit.observability import get_logger, observed_batch_handler

SERVICE = "audit"
METRICS_NAMESPACE = os.environ.get("METRICS_NAMESPACE") or "streamkit"
logger = get_logger(SERVICE, service=SERVICE)

AUDIT_TABLE = os.environ["AUDIT_TABLE"]
INCLUDE_IMAGES = os.environ.get("AUDIT_INCLUDE_IMAGES", "").lower() in ("1", "true", "yes")

# Module level: the client, its connections and the store live across warm invocations.
dynamodb = boto3.client("dynamodb")
store = DynamoDBIdempotencyStore(os.environ["IDEMPOTENCY_TABLE"], client=dynamodb)


def item_key(record: StreamRecord) -> str:
    """The changed item's key values, in key attribute order (``ORDER#1``; ``a#b`` for a
    composite key). Sorted by attribute name so every record of one item gives the same text."""
    keys = record.keys
    return "#".join(str(keys[name]) for name in sorted(keys))


def audit_item(record: StreamRecord, *, include_images: bool = False) -> dict[str, Any]:
    """The audit item for one stream record (plain values)."""
    table = record.table_name or "unknown"
    item: dict[str, Any] = {
        "pk": f"{table}#{item_key(record)}",
        "sk": f"{record.approximate_creation_time.isoformat()}#{record.sequence_number}",
        "table": table,
        "event": record.event_name,
        "event_id": record.event_id,
        "changed": sorted(record.changed_attributes()),
    }
    if record.is_ttl_delete:
        item["ttl_delete"] = True
    for side, image in (("old", record.old_image), ("new", record.new_image)):
        status = (image or {}).get("status")
        if status is not None:
            item[f"{side}_status"] = status
        if include_images and image is not None:
            item[f"{side}_image"] = image
    return item


def write_audit(record: StreamRecord) -> None:
    item = audit_item(record, include_images=INCLUDE_IMAGES)
    dynamodb.put_item(TableName=AUDIT_TABLE, Item=serialize(item))
    # Keys and attribute names only: never images in logs.
    logger.debug("audited", pk=item["pk"], event=item["event"], changed=item["changed"])


handler = observed_batch_handler(
    ordering="per_key",
    idempotency=store,
    idempotency_namespace="audit",
    namespace=METRICS_NAMESPACE,
    service=SERVICE,
)(write_audit)
