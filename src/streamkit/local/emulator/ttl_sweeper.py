"""Time to Live: the emulator deletes expired items, as DynamoDB's background process does.

moto stores a table's TTL setting (UpdateTimeToLive) but never deletes anything. DynamoDB
deletes an item some time after the epoch-seconds Number in its TTL attribute has passed
(https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/TTL.html):

- the attribute must be a Number; other types, and items without it, are never deleted;
- values more than five years in the past are ignored ("items with expiration times older
  than five years are not deleted", howitworks-ttl);
- the deletion is a REMOVE stream record whose ``userIdentity`` is the service
  (``{"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}`` in GetRecords,
  ``{"type": "Service", "principalId": ...}`` in Lambda's event)
  (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-streams.html),
  which is how TTL-driven consumers (``ttl_delete=True`` routes) recognise it.

:class:`TtlSweeper` runs in the emulator: every ``STREAMKIT_EMULATOR_TTL_SWEEP_SECONDS``
(default 1) it deletes the items of TTL-enabled tables that expired at least
``STREAMKIT_EMULATOR_TTL_DELAY_SECONDS`` ago (default 0; AWS takes minutes to days). It holds
the emulator's DynamoDB lock while it works, so deletions are ordered with every other write.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

__all__ = ["TTL_USER_IDENTITY", "TtlSweeper", "deleting_for_ttl", "sweep_once"]

LOG = logging.getLogger(__name__)
# GetRecords' Identity shape (botocore's dynamodbstreams model); Lambda's event spells the same
# fields "type" and "principalId" (the runner's envelope converts).
TTL_USER_IDENTITY = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
FIVE_YEARS_S = 5 * 365 * 86400

# True while the sweeper deletes: stream_records gives those REMOVE records the userIdentity.
deleting_for_ttl: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "streamkit_ttl_delete", default=False
)


def _seconds(name: str, default: float) -> float:
    try:
        return max(0.0, float(os.environ.get(name, default)))
    except ValueError:
        return default


def _expired(item: Any, attribute: str, now: float, delay: float) -> bool:
    value = item.attrs.get(attribute)
    if value is None or getattr(value, "type", None) != "N":
        return False
    try:
        expires = float(value.value)
    except (TypeError, ValueError):
        return False
    return now - FIVE_YEARS_S <= expires <= now - delay


def _items(table: Any) -> Iterator[Any]:
    for entry in list(table.items.values()):
        if table.range_key_attr:
            yield from list(entry.values())
        else:
            yield entry


def sweep_once(now: float | None = None, delay: float | None = None) -> int:
    """Delete every expired item of every TTL-enabled table; returns how many."""
    from moto.dynamodb.models import dynamodb_backends

    now = time.time() if now is None else now
    delay = _seconds("STREAMKIT_EMULATOR_TTL_DELAY_SECONDS", 0.0) if delay is None else delay
    deleted = 0
    token = deleting_for_ttl.set(True)
    try:
        for account_id in list(dynamodb_backends.keys()):
            for region in list(dynamodb_backends[account_id].keys()):
                backend = dynamodb_backends[account_id][region]
                for table in list(backend.tables.values()):
                    ttl = getattr(table, "ttl", None) or {}
                    attribute = ttl.get("AttributeName")
                    if ttl.get("TimeToLiveStatus") != "ENABLED" or not attribute:
                        continue
                    for item in [i for i in _items(table) if _expired(i, attribute, now, delay)]:
                        table.delete_item(item.hash_key, item.range_key)
                        deleted += 1
    finally:
        deleting_for_ttl.reset(token)
    return deleted


class TtlSweeper:
    """A daemon thread calling :func:`sweep_once` under ``lock`` until stopped."""

    def __init__(self, lock: AbstractContextManager[Any]) -> None:
        self._lock = lock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="streamkit-ttl", daemon=True)

    def start(self) -> TtlSweeper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(_seconds("STREAMKIT_EMULATOR_TTL_SWEEP_SECONDS", 1.0)):
            try:
                with self._lock:
                    sweep_once()
            except Exception:  # a table deleted mid-sweep, a moto quirk: try again next time
                LOG.debug("TTL sweep failed; retrying at the next interval", exc_info=True)
