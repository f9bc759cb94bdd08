"""Fault rules: which requests fail, how, and for how long. Pure Python, no moto, no HTTP.

A rule matches a request by service, operation (``*`` for any) and optionally a resource name.
When it matches, it fires with its probability: it adds its latency, and if it names an error
code the request is answered with that AWS error instead of reaching the emulator. A rule stops
matching after ``count`` firings or ``duration_seconds`` after it was added, whichever comes
first. Rules are tried in the order they were added; the first that fires wins.

Used by the emulator's middleware (``faults.py``), the HTTP admin endpoint, the Python client
(``streamkit.local.faults``) and ``streamkit faults``: all of them speak ``FaultRule.to_dict``.
"""

from __future__ import annotations

import collections
import random
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streamkit.exceptions import InvalidFaultRuleError

__all__ = [
    "ERROR_STATUS",
    "FaultRegistry",
    "FaultRule",
    "RequestIdentity",
]

# The HTTP status AWS answers each error with. Throttling errors are 400 in the JSON and query
# protocols (DynamoDB's ProvisionedThroughputExceededException, the ThrottlingException of
# Streams/Step Functions/STS, EC2-style RequestLimitExceeded); Lambda's TooManyRequestsException
# is 429; S3's SlowDown and every ServiceUnavailable is 503; InternalServerError (DynamoDB),
# InternalFailure and ServiceException (Lambda) are 500.
ERROR_STATUS: dict[str, int] = {
    "ProvisionedThroughputExceededException": 400,
    "ThrottlingException": 400,
    "Throttling": 400,
    "RequestLimitExceeded": 400,
    "RequestThrottled": 400,
    "LimitExceededException": 400,
    "TooManyRequestsException": 429,
    "InternalServerError": 500,
    "InternalFailure": 500,
    "InternalError": 500,
    "ServiceException": 500,
    "ServiceUnavailable": 503,
    "ServiceUnavailableException": 503,
    "SlowDown": 503,
}

# An AWS error code is an identifier; anything else would corrupt the XML/JSON error body.
_CODE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.]{0,127}$")
_MAX_LATENCY_MS = 600_000


@dataclass(frozen=True)
class RequestIdentity:
    """What a request is, as far as rules care: ``("dynamodb", "PutItem", "orders")``."""

    service: str
    operation: str
    resource: str | None = None


@dataclass
class FaultRule:
    """One fault. ``error=None`` with ``latency_ms > 0`` only slows matching requests down."""

    service: str
    operation: str = "*"
    resource: str | None = None
    error: str | None = None
    status: int | None = None
    message: str | None = None
    probability: float = 1.0
    latency_ms: int = 0
    count: int | None = None
    duration_seconds: float | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    fired: int = 0
    created_at: float = field(default_factory=time.time)
    # Durations run on the monotonic clock: the wall clock may be stepped while a rule lives.
    started: float = field(default_factory=time.monotonic, repr=False)

    def __post_init__(self) -> None:
        self.service = _require_name("service", self.service).lower()
        self.operation = _require_name("operation", self.operation)
        if self.resource is not None:
            self.resource = _require_name("resource", self.resource)
        if self.error is not None and not _CODE_PATTERN.match(str(self.error)):
            raise InvalidFaultRuleError("error", f"{self.error!r} is not an AWS error code")
        if self.status is not None and not (
            isinstance(self.status, int) and 400 <= self.status <= 599
        ):
            raise InvalidFaultRuleError("status", f"{self.status!r} is not an HTTP error status")
        if self.error is None and self.status is not None:
            raise InvalidFaultRuleError("status", "a status needs an error code")
        if not _is_number(self.probability) or not 0.0 <= float(self.probability) <= 1.0:
            raise InvalidFaultRuleError("probability", f"{self.probability!r} is not in [0, 1]")
        if (
            not isinstance(self.latency_ms, int)
            or isinstance(self.latency_ms, bool)
            or not 0 <= self.latency_ms <= _MAX_LATENCY_MS
        ):
            raise InvalidFaultRuleError(
                "latency_ms", f"{self.latency_ms!r} is not an integer in [0, {_MAX_LATENCY_MS}]"
            )
        if self.error is None and self.latency_ms == 0:
            raise InvalidFaultRuleError("error", "a rule needs an error code, a latency, or both")
        if self.count is not None and (
            not isinstance(self.count, int) or isinstance(self.count, bool) or self.count < 1
        ):
            raise InvalidFaultRuleError("count", f"{self.count!r} is not a positive integer")
        if self.duration_seconds is not None and (
            not _is_number(self.duration_seconds) or float(self.duration_seconds) <= 0
        ):
            raise InvalidFaultRuleError(
                "duration_seconds", f"{self.duration_seconds!r} is not a positive number"
            )
        self.probability = float(self.probability)

    @property
    def http_status(self) -> int:
        return self.status or ERROR_STATUS.get(self.error or "", 400)

    def matches(self, request: RequestIdentity) -> bool:
        if self.service not in ("*", request.service):
            return False
        if self.operation not in ("*", request.operation):
            return False
        return self.resource is None or _resource_matches(self.resource, request.resource)

    def expired(self, now: float) -> bool:
        if self.count is not None and self.fired >= self.count:
            return True
        return self.duration_seconds is not None and now - self.started >= self.duration_seconds

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "service": self.service,
            "operation": self.operation,
            "resource": self.resource,
            "error": self.error,
            "status": self.http_status if self.error else None,
            "message": self.message,
            "probability": self.probability,
            "latency_ms": self.latency_ms,
            "count": self.count,
            "duration_seconds": self.duration_seconds,
            "fired": self.fired,
            "active": not self.expired(time.monotonic()),
            "created_at": self.created_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FaultRule:
        """Build a rule from a request body; unknown keys are refused, not ignored."""
        if not isinstance(data, Mapping):
            raise InvalidFaultRuleError(
                "rule", f"expected a JSON object, got {type(data).__name__}"
            )
        allowed = {
            "service",
            "operation",
            "resource",
            "error",
            "status",
            "message",
            "probability",
            "latency_ms",
            "count",
            "duration_seconds",
        }
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise InvalidFaultRuleError(unknown[0], "unknown field")
        if "service" not in data:
            raise InvalidFaultRuleError("service", "required")
        values = {key: data[key] for key in allowed if key in data and data[key] is not None}
        return cls(**values)


class FaultRegistry:
    """The emulator's rules. Thread-safe: the server answers requests on many threads."""

    def __init__(self, seed: int | None = None) -> None:
        self._rules: list[FaultRule] = []
        # Spent or expired rules, newest last, so a run can still read how often each fired.
        self._retired: collections.deque[FaultRule] = collections.deque(maxlen=1000)
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def add(self, rule: FaultRule) -> FaultRule:
        with self._lock:
            self._rules.append(rule)
        return rule

    def has_rules(self) -> bool:
        # Read without the lock: a stale answer only delays a just-added rule by one request.
        return bool(self._rules)

    def list(self, *, include_retired: bool = False) -> list[FaultRule]:
        """Rules in force; with ``include_retired``, also the last 1000 spent or expired."""
        with self._lock:
            self._drop_expired(time.monotonic())
            return [*self._retired, *self._rules] if include_retired else list(self._rules)

    def clear(self, rule_id: str | None = None) -> int:
        """Remove one rule (by id) or all; returns how many were removed."""
        with self._lock:
            before = len(self._rules)
            if rule_id is None:
                self._rules.clear()
            else:
                self._rules = [rule for rule in self._rules if rule.id != rule_id]
            return before - len(self._rules)

    def fire(self, request: RequestIdentity) -> FaultRule | None:
        """The rule that fires for this request (its ``fired`` counted), or None."""
        with self._lock:
            if not self._rules:
                return None
            now = time.monotonic()
            self._drop_expired(now)
            for rule in self._rules:
                if not rule.matches(request):
                    continue
                if rule.probability < 1.0 and self._random.random() >= rule.probability:
                    continue
                rule.fired += 1
                return rule
            return None

    def _drop_expired(self, now: float) -> None:
        expired = [rule for rule in self._rules if rule.expired(now)]
        if expired:
            self._retired.extend(expired)
            self._rules = [rule for rule in self._rules if not rule.expired(now)]


def _resource_matches(wanted: str, actual: str | None) -> bool:
    # A rule names a table, queue, topic, bucket, function or state machine by name; requests
    # carry names, ARNs or URLs. "orders" matches "orders", ".../table/orders" and "...:orders",
    # and a stream ARN ".../table/orders/stream/<label>" (its table's faults apply to it).
    if actual is None:
        return False
    if wanted in (actual, "*"):
        return True
    return (
        actual.endswith((f"/{wanted}", f":{wanted}"))
        or f"/{wanted}/stream/" in actual
        or f":function:{wanted}:" in actual
    )


def _require_name(field_name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidFaultRuleError(field_name, f"{value!r} is not a non-empty string")
    return value.strip()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
