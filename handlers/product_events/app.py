"""Every product change, fanned out to the audit trail and the cache: one function, one
mapping on the ``products`` stream (see handlers/order_events for why one function fans out).

Targets (``handlers/orderplatform``): ``audit`` (S3, exactly once, PII redacted) and ``cache``
(invalidates ``product:<sku>`` in Redis). Stock reservations are product changes too, so a
cached product never shows stock from before a reservation once its invalidation ran.

Env: ``IDEMPOTENCY_TABLE``, ``AUDIT_BUCKET``, ``AUDIT_REDACT_FIELDS``, ``REDIS_URL``,
``METRICS_NAMESPACE``. Observed like order_events (``Target=product_events.<target>``).
"""

from __future__ import annotations

import os

import boto3
import redis
from orderplatform.audit import AuditArchive, redact_fields
from orderplatform.cache import CacheInvalidator

from streamkit import DynamoDBIdempotencyStore, Router
from streamkit.observability import ChangeLatency, ObservedConsumer

SERVICE = "product_events"
METRICS_NAMESPACE = os.environ.get("METRICS_NAMESPACE") or "streamkit"

dynamodb = boto3.client("dynamodb")
cache = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=2, socket_connect_timeout=2)
store = DynamoDBIdempotencyStore(os.environ["IDEMPOTENCY_TABLE"], client=dynamodb)
latency = ChangeLatency(namespace=METRICS_NAMESPACE)

audit = AuditArchive(
    os.environ["AUDIT_BUCKET"],
    client=boto3.client("s3"),
    redact=redact_fields(os.environ.get("AUDIT_REDACT_FIELDS")),
)
invalidator = CacheInvalidator(cache)

router = Router(SERVICE, idempotency=store, ordering="per_key")
changes = router.fan_out("changes")
for name, sink in (("audit", audit), ("cache", invalidator)):
    changes.add_target(latency.target(f"{SERVICE}.{name}")(sink), name=name)

router.validate()
handler = latency.observe(ObservedConsumer(router, namespace=METRICS_NAMESPACE, service=SERVICE))
