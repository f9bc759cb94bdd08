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

from orderplatform.analytics import AnalyticsTarget
from orderplatform.consumer import SinkEnvironment, fan_out_handler
from orderplatform.fulfilment import Fulfilment
from orderplatform.notify import Notifier

SERVICE = "order_events"

# Module level: clients and connections live across warm invocations.
env = SinkEnvironment()
handler = fan_out_handler(
    SERVICE,
    env,
    (
        ("audit", env.audit()),
        ("cache", env.cache()),
        (
            "notify",
            Notifier(
                ses=env.client("ses"),
                sns=env.client("sns"),
                sender=env.environ["NOTIFICATION_SENDER"],
            ),
        ),
        (
            "analytics",
            AnalyticsTarget(
                table=env.environ["AGGREGATES_TABLE"],
                fence_table=env.environ["FENCE_TABLE"],
                client=env.client("dynamodb"),
            ),
        ),
        (
            "fulfilment",
            Fulfilment(
                client=env.client("stepfunctions"),
                state_machine_arn=env.environ["STATE_MACHINE_ARN"],
                pickup_wait_seconds=int(env.environ.get("PICKUP_WAIT_SECONDS") or 0),
            ),
        ),
    ),
)
