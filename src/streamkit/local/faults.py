"""Python API for the emulator's fault injection: add, list and clear rules over HTTP.

>>> faults = FaultsClient("http://127.0.0.1:4566")
>>> faults.add("dynamodb", "PutItem", resource="idempotency",
...            error="ProvisionedThroughputExceededException", count=3)
>>> with faults.inject("dynamodbstreams", "GetRecords", error="InternalServerError",
...                    probability=0.5, duration_seconds=10):
...     ...  # the runner's reads fail half the time for 10 s; the rule is removed on exit
>>> faults.clear()

It talks to ``/_streamkit/faults`` (see ``streamkit.local.emulator.faults``), so it works for an
emulator in this process, in a child process (``spawn_emulator``) or started with
``streamkit emulator``. It needs neither moto nor boto3. Rules are checked here first, so a
malformed rule raises ``InvalidFaultRuleError`` naming the field before anything is sent.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from streamkit.exceptions import FaultAdminError, InvalidFaultRuleError
from streamkit.local.emulator.fault_rules import ERROR_STATUS, FaultRule

__all__ = ["ERROR_STATUS", "FaultRule", "FaultsClient"]

_PATH = "/_streamkit/faults"


class FaultsClient:
    """Client of one emulator's fault admin endpoint."""

    def __init__(self, endpoint_url: str, *, timeout: float = 10.0) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.timeout = timeout

    def add(
        self,
        service: str,
        operation: str = "*",
        *,
        resource: str | None = None,
        error: str | None = None,
        probability: float = 1.0,
        latency_ms: int = 0,
        count: int | None = None,
        duration_seconds: float | None = None,
        status: int | None = None,
        message: str | None = None,
    ) -> dict[str, Any]:
        """Add a rule; returns it as the emulator stored it (with its ``id``)."""
        rule = {
            "service": service,
            "operation": operation,
            "resource": resource,
            "error": error,
            "probability": probability,
            "latency_ms": latency_ms,
            "count": count,
            "duration_seconds": duration_seconds,
            "status": status,
            "message": message,
        }
        return self.add_rule(rule)

    def add_rule(self, rule: dict[str, Any]) -> dict[str, Any]:
        """Add a rule given as a dict (the JSON the admin endpoint takes)."""
        FaultRule.from_dict(rule)  # refuse a bad rule before sending it
        answer = self._call("POST", _PATH, {k: v for k, v in rule.items() if v is not None})
        stored: dict[str, Any] = answer["rule"]
        return stored

    def list(self, *, include_expired: bool = False) -> list[dict[str, Any]]:
        """Rules still in force, each with how often it ``fired``; ``include_expired`` adds the
        last 1000 spent or expired ones (``"active": False``)."""
        path = f"{_PATH}?all=1" if include_expired else _PATH
        rules: list[dict[str, Any]] = self._call("GET", path)["rules"]
        return rules

    def clear(self, rule_id: str | None = None) -> int:
        """Remove one rule, or every rule; returns how many were removed."""
        path = f"{_PATH}/{rule_id}" if rule_id else _PATH
        removed: int = self._call("DELETE", path)["removed"]
        return removed

    @contextmanager
    def inject(
        self, service: str, operation: str = "*", **options: Any
    ) -> Iterator[dict[str, Any]]:
        """Add a rule for the duration of a ``with`` block, then remove it (if still there)."""
        rule = self.add(service, operation, **options)
        try:
            yield rule
        finally:
            try:
                self.clear(rule["id"])
            except FaultAdminError as exc:
                if exc.status != 404:  # already expired by count or duration: fine
                    raise

    def _call(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(
            f"{self.endpoint_url}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            if exc.code == 400 and isinstance(detail, dict) and detail.get("field"):
                raise InvalidFaultRuleError(
                    str(detail["field"]), str(detail.get("message", ""))
                ) from exc
            message = detail.get("message") if isinstance(detail, dict) else detail
            raise FaultAdminError(self.endpoint_url, exc.code, str(message)) from exc
        except (OSError, ValueError) as exc:
            raise FaultAdminError(self.endpoint_url, None, str(exc)) from exc


def _error_detail(exc: urllib.error.HTTPError) -> Any:
    raw = exc.read()
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")[:500]
