"""The console's JSON API: plain functions from the console's parts to JSON-ready values.

Every page is drawn from these; docs/console.md documents each route. Item images never
appear here except in a Stream tail asked for with ``images=1``, as with ``streamkit tail``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from typing import Any

from streamkit.console.history import History, sparkline
from streamkit.console.runner_view import MappingFigures, RunnerView

__all__ = ["Tables", "mapping_detail", "mapping_entry", "select_mappings"]


def mapping_entry(f: MappingFigures, history: History) -> dict[str, Any]:
    """One mapping as ``GET /api/mappings`` lists it."""
    return {
        "uuid": f.uuid,
        "function_name": f.function_name,
        "function_arn": f.function_arn,
        "event_source_arn": f.event_source_arn,
        "table_name": f.table_name,
        "state": f.state,
        "iterator_age_ms": None if f.iterator_age_ms is None else round(f.iterator_age_ms, 1),
        "invocations": f.counters["invoked"],
        "errors": f.counters["failed"],
        "throttles": f.counters["throttled"],
        "records_per_s": round(history.rate(f.uuid, "polled"), 2),
        "last_error": f.last_error,
        "lanes": f.lanes,
        "sparkline": sparkline(history.series(f.uuid)["records_per_s"]),
    }


def _matches(f: MappingFigures, query: str) -> bool:
    text = " ".join((f.uuid, f.function_arn, f.event_source_arn, f.state)).lower()
    return all(word in text for word in query.lower().split())


def select_mappings(
    figures: Iterable[MappingFigures], *, query: str = "", state: str = ""
) -> list[MappingFigures]:
    """Filter by words (all must appear in UUID, function, stream or state) and exact state."""
    return [
        f for f in figures if (not query or _matches(f, query)) and (not state or f.state == state)
    ]


_CONFIG_FIELDS = (
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "StartingPosition",
    "MaximumRetryAttempts",
    "MaximumRecordAgeInSeconds",
    "BisectBatchOnFunctionError",
    "ParallelizationFactor",
    "TumblingWindowInSeconds",
    "FunctionResponseTypes",
    "FilterCriteria",
    "DestinationConfig",
    "State",
    "LastModified",
)


def mapping_detail(f: MappingFigures, history: History, view: RunnerView) -> dict[str, Any]:
    """``GET /api/mappings/{uuid}``: the list entry plus counters, settings and charts."""
    config = view.configurations().get(f.uuid) or {}
    return {
        **mapping_entry(f, history),
        "counters": dict(f.counters),
        "config": {k: _jsonable(config[k]) for k in _CONFIG_FIELDS if k in config},
        "series": history.series(f.uuid),
        "iterator_age_histogram": history.age_histogram(f.uuid),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)  # datetimes (LastModified)


class Tables:
    """Every table of the endpoint with its stream (DescribeTable, cached ``ttl_s``)."""

    def __init__(self, view: RunnerView, *, ttl_s: float = 10.0) -> None:
        self.view = view
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cached: tuple[float, list[dict[str, Any]]] | None = None

    def _describe_all(self) -> list[dict[str, Any]]:
        dynamodb = self.view.client("dynamodb")
        names: list[str] = []
        start: str | None = None
        while True:
            page = dynamodb.list_tables(**({"ExclusiveStartTableName": start} if start else {}))
            names.extend(page.get("TableNames") or [])
            start = page.get("LastEvaluatedTableName")
            if not start:
                break
        tables = []
        for name in sorted(names):
            try:
                table = dynamodb.describe_table(TableName=name)["Table"]
            except Exception:
                continue  # deleted since ListTables
            spec = table.get("StreamSpecification") or {}
            tables.append(
                {
                    "table_name": name,
                    "stream_enabled": bool(spec.get("StreamEnabled")),
                    "stream_view_type": spec.get("StreamViewType"),
                    "stream_arn": table.get("LatestStreamArn"),
                }
            )
        return tables

    def list(self, figures: Iterable[MappingFigures]) -> list[dict[str, Any]]:
        with self._lock:
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] > self._ttl_s:
                try:
                    self._cached = (now, self._describe_all())
                except Exception:
                    if self._cached is None:
                        raise
        by_table: dict[str, list[str]] = {}
        for f in figures:
            by_table.setdefault(f.table_name, []).append(f.uuid)
        out = []
        for table in self._cached[1]:
            out.append({**table, "mappings": by_table.pop(table["table_name"], [])})
        for name, uuids in sorted(by_table.items()):  # a mapping whose table is gone
            out.append(
                {"table_name": name, "stream_enabled": False, "stream_view_type": None,
                 "stream_arn": None, "mappings": uuids}
            )  # fmt: skip
        return out
