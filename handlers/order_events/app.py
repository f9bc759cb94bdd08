"""Every order change, fanned out to the platform's sinks: one function, one mapping.

DynamoDB Streams serves at most two readers per shard (AWS throttles beyond that), and the
``orders`` stream already feeds the ``workflow`` function. So instead of one function per use
case, this function reads the stream once and fans each record out (``Router.fan_out``) to
five targets, each with its own completion markers (per-target idempotency): a failing target
is retried alone, never re-running its siblings, and shows in its own metrics.

Targets (``handlers/orderplatform``):

- ``audit``: the change as one JSON Lines object in S3, exactly once, PII redacted;
- ``cache``: invalidates ``order:<id>`` in Redis (ElastiCache on AWS);
- ``notify``: email (SES) and SMS (SNS) when an order is placed, shipped or cancelled;
- ``analytics``: revenue per minute and orders per status, exactly-once counters;
- ``fulfilment``: starts the fulfilment state machine when an order is RESERVED.

Env: ``IDEMPOTENCY_TABLE``, ``AUDIT_BUCKET``, ``AUDIT_REDACT_FIELDS`` (comma-separated),
``REDIS_URL``, ``NOTIFICATION_SENDER``, ``AGGREGATES_TABLE``, ``FENCE_TABLE``,
``STATE_MACHINE_ARN``, ``PICKUP_WAIT_SECONDS``, ``METRICS_NAMESPACE``.

Observed: JSON logs, one EMF document per invocation with ``Service=order_events``, and one
``ChangeToHandlerLatency`` document per target (``Target=order_events.<target>``).
"""

from __future__ import annotations

import os

import boto3
import redis
from orderplatform.analytics import AnalyticsTarget
from orderplatform.audit import AuditArchive, redact_fields
from orderplatform.cache import CacheInvalidator
from orderplatform.fulfilment import Fulfilment
from orderplatform.notify import Notifier

from streamkit import DynamoDBIdempotencyStore, Router
from streamkit.observability import ChangeLatency, ObservedConsumer

SERVICE = "order_events"
METRICS_NAMESPACE = os.environ.get("METRICS_NAMESPACE") or "streamkit"

# Module level: clients and connections live across warm invocations. redis-py connects on
# first use, with short timeouts so that an outage fails the cache target fast.
dynamodb = boto3.client("dynamodb")
cache = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=2, socket_connect_timeout=2)
store = DynamoDBIdempotencyStore(os.environ["IDEMPOTENCY_TABLE"], client=dynamodb)
latency = ChangeLatency(namespace=METRICS_NAMESPACE)

# per_key: a record that fails holds back only the later changes of the same order.
# The sinks, at module level: clients and connections live across warm invocations.
audit = AuditArchive(
    os.environ["AUDIT_BUCKET"],
    client=boto3.client("s3"),
    redact=redact_fields(os.environ.get("AUDIT_REDACT_FIELDS")),
)
invalidator = CacheInvalidator(cache)
notifier = Notifier(
    ses=boto3.client("ses"), sns=boto3.client("sns"), sender=os.environ["NOTIFICATION_SENDER"]
)
analytics = AnalyticsTarget(
    table=os.environ["AGGREGATES_TABLE"], fence_table=os.environ["FENCE_TABLE"], client=dynamodb
)
fulfilment = Fulfilment(
    client=boto3.client("stepfunctions"),
    state_machine_arn=os.environ["STATE_MACHINE_ARN"],
    pickup_wait_seconds=int(os.environ.get("PICKUP_WAIT_SECONDS") or 0),
)

# per_key: a record that fails holds back only the later changes of the same order.
router = Router(SERVICE, idempotency=store, ordering="per_key")
changes = router.fan_out("changes")
for name, sink in (
    ("audit", audit),
    ("cache", invalidator),
    ("notify", notifier),
    ("analytics", analytics),
    ("fulfilment", fulfilment),
):
    changes.add_target(latency.target(f"{SERVICE}.{name}")(sink), name=name)

router.validate()
handler = latency.observe(ObservedConsumer(router, namespace=METRICS_NAMESPACE, service=SERVICE))
