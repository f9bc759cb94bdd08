"""Fault injection for the embedded emulator: AWS errors and latency on chosen requests.

AWS has Fault Injection Service; this is the emulator's counterpart. ``FaultInjectionMiddleware``
sits in front of everything the emulator serves. For each signed AWS request it asks the rules
(``fault_rules.py``) whether one fires; if so it waits the rule's latency and answers with the
rule's AWS error in the protocol's own wire format (``fault_errors.py``), so boto3, the runner,
the idempotency store and the handlers see the same ``ClientError`` AWS would send them, and
run the code paths AWS would make them run (botocore's retries included).

Admin endpoint (JSON, never itself faulted):

- ``GET /_streamkit/faults``: ``{"rules": [rule, ...]}``, the rules in force; ``?all=1`` adds the
  last 1000 spent or expired ones (``"active": false``), with how often each ``fired``.
- ``POST /_streamkit/faults`` with a rule (``FaultRule.from_dict``): 201 ``{"rule": rule}``;
  400 ``{"error": "InvalidFaultRule", "field": ..., "message": ...}`` for a bad rule.
- ``DELETE /_streamkit/faults``: removes every rule; ``DELETE /_streamkit/faults/<id>`` one rule
  (404 if there is none). Both answer ``{"removed": n}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from streamkit.exceptions import InvalidFaultRuleError
from streamkit.local.emulator.fault_errors import render_error
from streamkit.local.emulator.fault_requests import identify_request
from streamkit.local.emulator.fault_rules import FaultRegistry, FaultRule

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["FAULTS_PATH", "FaultInjectionMiddleware"]

FAULTS_PATH = "/_streamkit/faults"
_MAX_RULE_BODY = 64 * 1024


class FaultInjectionMiddleware:
    """Applies ``registry``'s rules to AWS requests and serves the admin endpoint."""

    def __init__(self, app: WSGIApplication, registry: FaultRegistry | None = None) -> None:
        self._app = app
        self.registry = registry if registry is not None else FaultRegistry()

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if path == FAULTS_PATH or path.startswith(FAULTS_PATH + "/"):
            return self._admin(environ, start_response, path[len(FAULTS_PATH) :].strip("/"))
        if path.startswith(("/_streamkit/", "/moto-api/")):
            return self._app(environ, start_response)
        rule = None
        request = None
        # An emulator with no rules pays one empty-list check per request.
        if self.registry.has_rules():
            request = identify_request(environ)
            if request is not None:
                rule = self.registry.fire(request.identity)
        if rule is None or request is None:
            return self._app(environ, start_response)
        if rule.latency_ms:
            time.sleep(rule.latency_ms / 1000)
        if rule.error is None:
            return self._app(environ, start_response)
        status, headers, body = render_error(request, rule)
        start_response(status, headers)
        return [b"" if environ.get("REQUEST_METHOD") == "HEAD" else body]

    def _admin(
        self, environ: WSGIEnvironment, start_response: StartResponse, rule_id: str
    ) -> Iterable[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "GET" and not rule_id:
            retired = "all=1" in environ.get("QUERY_STRING", "").split("&")
            rules = [rule.to_dict() for rule in self.registry.list(include_retired=retired)]
            return _json(start_response, "200 OK", {"rules": rules})
        if method == "POST" and not rule_id:
            try:
                rule = FaultRule.from_dict(_read_json(environ))
            except InvalidFaultRuleError as exc:
                return _json(
                    start_response,
                    "400 Bad Request",
                    {"error": "InvalidFaultRule", "field": exc.field, "message": str(exc)},
                )
            self.registry.add(rule)
            return _json(start_response, "201 Created", {"rule": rule.to_dict()})
        if method == "DELETE":
            removed = self.registry.clear(rule_id or None)
            if rule_id and not removed:
                return _json(
                    start_response,
                    "404 Not Found",
                    {"error": "NotFound", "message": f"no fault rule {rule_id}", "removed": 0},
                )
            return _json(start_response, "200 OK", {"removed": removed})
        return _json(
            start_response,
            "405 Method Not Allowed",
            {"error": "MethodNotAllowed", "message": f"{method} {FAULTS_PATH}/{rule_id}"},
        )


def _read_json(environ: WSGIEnvironment) -> Any:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError as exc:
        raise InvalidFaultRuleError("body", "bad Content-Length") from exc
    if length > _MAX_RULE_BODY:
        raise InvalidFaultRuleError("body", f"larger than {_MAX_RULE_BODY} bytes")
    raw = environ["wsgi.input"].read(length) if length > 0 else b""
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise InvalidFaultRuleError("body", f"not JSON: {exc}") from exc


def _json(start_response: StartResponse, status: str, payload: Any) -> Iterable[bytes]:
    body = json.dumps(payload).encode()
    start_response(
        status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
