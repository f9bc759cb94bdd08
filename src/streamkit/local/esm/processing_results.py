"""Telling the endpoint how a mapping's last batch went (``LastProcessingResult``).

On AWS, Lambda itself sets GetEventSourceMapping's ``LastProcessingResult``: "No records
processed" until a batch ran, "OK" after a successful one, "PROBLEM: Function call failed"
after a failed invoke (recorded in LocalStack's ESM snapshots, and
https://docs.aws.amazon.com/lambda/latest/api/API_EventSourceMappingConfiguration.html). Locally
the runner, not the endpoint, runs batches, so it reports each change through the embedded
emulator's admin route (``POST /_streamkit/event-source-mappings/<uuid>/processing-result``).
An endpoint without that route (LocalStack, or anything else) is left alone after its first
refusal; AWS endpoints are never asked.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

__all__ = ["OK", "PROBLEM", "ProcessingResultReporter"]

LOG = logging.getLogger(__name__)
OK = "OK"
PROBLEM = "PROBLEM: Function call failed"
_ROUTE = "/_streamkit/event-source-mappings/{uuid}/processing-result"


class ProcessingResultReporter:
    """Compares each mapping's success/failure counters with the last report, and POSTs the
    new result when it differs from what the endpoint lists."""

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        host = urlsplit(endpoint_url).hostname or ""
        self.enabled = not host.endswith((".amazonaws.com", ".amazonaws.com.cn", ".api.aws"))
        self._seen: dict[str, tuple[int, int]] = {}

    def report(
        self, stats: Mapping[str, Mapping[str, Any]], mappings: Iterable[Mapping[str, Any]]
    ) -> None:
        if not self.enabled:
            return
        listed = {str(m.get("UUID")): m.get("LastProcessingResult") for m in mappings}
        for uuid, snapshot in stats.items():
            if uuid not in listed:
                continue
            counters = (int(snapshot.get("succeeded", 0)), int(snapshot.get("failed", 0)))
            before = self._seen.get(uuid, (0, 0))
            self._seen[uuid] = counters
            if counters[0] > before[0]:
                result = OK
            elif counters[1] > before[1]:
                result = PROBLEM
            else:
                continue
            if listed[uuid] != result and not self._post(uuid, result):
                return

    def _post(self, uuid: str, result: str) -> bool:
        url = self.endpoint_url + _ROUTE.format(uuid=quote(uuid, safe=""))
        request = urllib.request.Request(
            url,
            data=json.dumps({"LastProcessingResult": result}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                response.read()
            return True
        except urllib.error.HTTPError as exc:
            body = exc.read()
            if exc.code == 404 and body.startswith(b"no mapping"):
                return True  # deleted meanwhile: the emulator knows the route
            LOG.debug(
                "%s does not take LastProcessingResult (HTTP %s)", self.endpoint_url, exc.code
            )
        except OSError as exc:
            LOG.debug("reporting LastProcessingResult to %s failed: %s", self.endpoint_url, exc)
            return True  # a passing network problem: try again on the next change
        self.enabled = False
        return False
