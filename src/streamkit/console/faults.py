"""The emulator's fault-injection rules, when it has them (``/_streamkit/faults``).

The console relays JSON to and from the emulator's admin endpoint: GET lists the active rules,
POST adds one (the body is passed as is), DELETE clears them. An endpoint that does not answer
``GET /_streamkit/faults`` with JSON has no fault injection (AWS, LocalStack, an emulator
without it), and the Faults page and its API are then hidden.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

__all__ = ["FAULTS_PATH", "Faults", "FaultsUnavailable"]

FAULTS_PATH = "/_streamkit/faults"


class FaultsUnavailable(RuntimeError):
    """The endpoint has no fault injection (or did not answer)."""


class Faults:
    def __init__(self, endpoint_url: str, *, timeout_s: float = 2.0, probe_ttl_s: float = 10.0):
        self.url = endpoint_url.rstrip("/") + FAULTS_PATH
        self._timeout_s = timeout_s
        self._probe_ttl_s = probe_ttl_s
        self._probed: tuple[float, bool] | None = None

    def _call(self, method: str, body: Any = None, suffix: str = "") -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + suffix, data=data, method=method,
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )  # fmt: skip
        try:
            with urllib.request.urlopen(request, timeout=self._timeout_s) as response:
                text = response.read().decode() or "null"
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:500]
            if exc.code in (404, 405, 501):
                raise FaultsUnavailable(f"{method} {self.url}: HTTP {exc.code}") from exc
            raise ValueError(f"{method} {self.url}: HTTP {exc.code}: {detail}") from exc
        except (OSError, urllib.error.URLError) as exc:
            raise FaultsUnavailable(f"{method} {self.url}: {exc}") from exc
        try:
            return json.loads(text)
        except ValueError as exc:
            raise FaultsUnavailable(f"{self.url} did not answer JSON") from exc

    def available(self) -> bool:
        """Whether the endpoint answers ``GET /_streamkit/faults`` (probed every ~10 s)."""
        now = time.monotonic()
        if self._probed is not None and now - self._probed[0] < self._probe_ttl_s:
            return self._probed[1]
        try:
            self._call("GET")
            found = True
        except (FaultsUnavailable, ValueError):
            found = False
        self._probed = (now, found)
        return found

    def rules(self) -> Any:
        return self._call("GET")

    def add(self, rule: Any) -> Any:
        if not isinstance(rule, dict):
            raise ValueError("a fault rule is a JSON object")
        self._probed = None
        return self._call("POST", rule)

    def clear(self, rule_id: str | None = None) -> Any:
        suffix = "" if rule_id is None else "/" + urllib.parse.quote(rule_id, safe="")
        return self._call("DELETE", suffix=suffix)
