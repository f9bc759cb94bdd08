"""The order platform's sinks, shared by its stream consumers (handlers/order_events,
handlers/product_events) and bundled into each of their zips by scripts/build_lambda.py.

Each sink is a per-record fan-out target (``Router.fan_out``), built from its clients and
settings so that tests can hand it real or recording clients:

- ``audit.AuditArchive``: every change as one JSON Lines object in S3, exactly once, PII redacted;
- ``cache.CacheInvalidator``: drops the changed item from Redis (``storefront.Storefront`` is
  the cache-aside read path it protects);
- ``notify.Notifier``: email (SES) and SMS (SNS) to the customer when an order is placed,
  shipped or cancelled;
- ``analytics.order_metrics``: the deltas of the revenue and status counters;
- ``fulfilment.Fulfilment``: starts the fulfilment state machine when an order is RESERVED.

``changes.is_noop`` is the rule every sink shares: a MODIFY whose images are equal (a
producer re-putting the same item; moto emits one, AWS does not) is no change at all.
"""
