"""Every product change, fanned out to the audit trail and the cache: one function, one
mapping on the ``products`` stream (see handlers/order_events for why one function fans out).

Targets (``handlers/orderplatform``): ``audit`` (S3, exactly once, PII redacted) and ``cache``
(invalidates ``product:<sku>`` in Redis). Stock reservations are product changes too, so a
cached product never shows stock from before a reservation once its invalidation ran.

Env: ``IDEMPOTENCY_TABLE``, ``AUDIT_BUCKET``, ``AUDIT_REDACT_FIELDS``, ``REDIS_URL``,
``METRICS_NAMESPACE``. Observed like order_events (``Target=product_events.<target>``).
"""

from __future__ import annotations

from orderplatform.consumer import SinkEnvironment, fan_out_handler

SERVICE = "product_events"

env = SinkEnvironment()
handler = fan_out_handler(SERVICE, env, (("audit", env.audit()), ("cache", env.cache())))
