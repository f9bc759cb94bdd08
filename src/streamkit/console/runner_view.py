"""The console's only window onto the runner: a read-only adapter over its public methods.

Everything the console shows about mappings comes through :class:`RunnerView`, so a change
inside :mod:`streamkit.local.esm` (counter names, enums for states) touches this file only.
The view never changes the runner: it reads ``stats()``, ``list_mappings()`` and the
endpoint settings, and borrows the runner's boto3 clients (thread-safe).
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

__all__ = ["COUNTER_NAMES", "MappingFigures", "RunnerLike", "RunnerView"]

# The counters the console reads; a counter the runner does not have reads as 0.
COUNTER_NAMES = (
    "polled",
    "filtered",
    "invoked",
    "succeeded",
    "failed",
    "sent_to_destination",
    "discarded",
    "throttled",
    "trimmed_gaps",
    "windows_closed",
    "retries",
    "bisects",
    "record_age_expired",
)


class RunnerLike(Protocol):
    """What the console needs from :class:`streamkit.local.esm.runner.Runner`."""

    endpoint_url: str
    region: str
    state_dir: Path

    def stats(self) -> dict[str, dict[str, Any]]: ...

    def list_mappings(self) -> list[dict[str, Any]]: ...

    def client(self, service: str) -> Any: ...


@dataclass(frozen=True)
class MappingFigures:
    """One mapping's figures at one moment, in the console's own terms."""

    uuid: str
    function_arn: str
    event_source_arn: str
    state: str
    counters: Mapping[str, int]
    iterator_age_ms: float | None
    last_error: str | None
    lanes: int

    @property
    def function_name(self) -> str:
        """``arn:aws:lambda:<region>:<account>:function:<name>[:qualifier]`` -> name."""
        _, sep, rest = self.function_arn.partition(":function:")
        return rest.split(":", 1)[0] if sep else self.function_arn

    @property
    def table_name(self) -> str:
        _, sep, rest = self.event_source_arn.partition(":table/")
        return rest.split("/", 1)[0] if sep else ""


def _text(value: Any) -> str:
    """A state may be a string or an enum member (the runner may move to enums)."""
    if isinstance(value, enum.Enum):
        return str(value.value)
    return "" if value is None else str(value)


def _figures(uuid: str, snapshot: Mapping[Any, Any]) -> MappingFigures:
    by_name = {_text(k): v for k, v in snapshot.items()}
    counters = {name: int(by_name.get(name) or 0) for name in COUNTER_NAMES}
    age = by_name.get("iterator_age_ms")
    error = by_name.get("last_error")
    return MappingFigures(
        uuid=_text(by_name.get("uuid")) or uuid,
        function_arn=_text(by_name.get("function_arn")),
        event_source_arn=_text(by_name.get("event_source_arn")),
        state=_text(by_name.get("state")) or "unknown",
        counters=counters,
        iterator_age_ms=None if age is None else float(age),
        last_error=None if error is None else str(error),
        lanes=int(by_name.get("shards_running") or 0),
    )


class RunnerView:
    """Read-only figures and settings of one runner's mappings.

    ``configurations()`` lists the endpoint's mappings (ListEventSourceMappings) at most once
    per ``config_ttl_s`` seconds, however many pages and browsers ask.
    """

    def __init__(
        self,
        runner: RunnerLike,
        *,
        config_ttl_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._runner = runner
        self._config_ttl_s = config_ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._configs: dict[str, dict[str, Any]] = {}
        self._configs_at: float | None = None

    @property
    def endpoint_url(self) -> str:
        return self._runner.endpoint_url

    @property
    def region(self) -> str:
        return self._runner.region

    @property
    def state_dir(self) -> Path:
        return Path(self._runner.state_dir)

    def client(self, service: str) -> Any:
        return self._runner.client(service)

    def figures(self) -> list[MappingFigures]:
        """Every mapping the runner knows, deleted ones left out, sorted by table, function."""
        found = [_figures(uuid, snap) for uuid, snap in self._runner.stats().items()]
        found = [f for f in found if f.state != "deleted"]
        return sorted(found, key=lambda f: (f.table_name, f.function_name, f.uuid))

    def configurations(self) -> dict[str, dict[str, Any]]:
        """``{UUID: the mapping as ListEventSourceMappings returns it}`` (cached briefly); the
        last good answer when the endpoint does not answer."""
        with self._lock:
            now = self._clock()
            fresh = self._configs_at is not None and now - self._configs_at < self._config_ttl_s
            if not fresh:
                try:
                    listed = self._runner.list_mappings()
                except Exception:
                    listed = None
                if listed is not None:
                    self._configs = {str(m.get("UUID")): m for m in listed}
                self._configs_at = now
            return dict(self._configs)
