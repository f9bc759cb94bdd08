"""Counting a boto3 DynamoDB client's requests, for the idempotency benchmark and its tests.

Requests are counted at the HTTP layer (botocore's ``before-send`` event), so a retried call
counts each attempt: what DynamoDB bills, not what the code asked for.
"""

from __future__ import annotations

from collections import Counter
from typing import Any


class RequestCounter:
    """Counts DynamoDB HTTP requests by operation (``X-Amz-Target``)."""

    def __init__(self, client: Any) -> None:
        self.counts: Counter[str] = Counter()
        client.meta.events.register("before-send.dynamodb", self._count)

    def _count(self, request: Any, **_: Any) -> None:
        target = request.headers.get("X-Amz-Target", b"")
        target = target.decode() if isinstance(target, bytes) else target
        self.counts[target.rsplit(".", 1)[-1]] += 1

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def reset(self) -> None:
        self.counts.clear()

    def take(self) -> int:
        """The total so far, then start again from zero."""
        total = self.total
        self.reset()
        return total
