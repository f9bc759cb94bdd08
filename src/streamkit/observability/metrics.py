"""CloudWatch metrics in Embedded Metric Format (EMF): JSON log lines that CloudWatch Logs
turns into metrics, with no API call on the hot path.

Spec: https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html
A document is::

    {"_aws": {"Timestamp": <epoch ms>,
              "CloudWatchMetrics": [{"Namespace": "Orders",
                                     "Dimensions": [["Service", "FunctionName", "TableName"]],
                                     "Metrics": [{"Name": "RecordsFailed", "Unit": "Count"}]}]},
     "Service": "audit", "FunctionName": "...", "TableName": "orders", "RecordsFailed": 2}

Limits enforced here: at most 100 metric definitions per directive, at most 30 dimensions
per dimension set, at most 100 values per metric per document. ``documents()`` splits a
buffer that exceeds them into as many documents as needed (all sharing dimensions and
timestamp), so any number of values can be buffered.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from enum import StrEnum
from typing import Any, Final

from streamkit.exceptions import InvalidMetricError

__all__ = [
    "MAX_DIMENSIONS",
    "MAX_METRICS_PER_DOCUMENT",
    "MAX_VALUES_PER_METRIC",
    "MetricUnit",
    "Metrics",
    "stdout_sink",
]

MAX_METRICS_PER_DOCUMENT: Final = 100
MAX_DIMENSIONS: Final = 30
MAX_VALUES_PER_METRIC: Final = 100
_MAX_NAME_LENGTH: Final = 255  # metric and dimension names (MetricDatum, Dimension)
_MAX_DIMENSION_VALUE_LENGTH: Final = 1024
_MAX_NAMESPACE_LENGTH: Final = 255
# CloudWatch rejects values outside +-2^360 (PutMetricData); EMF extraction drops them.
_MAX_ABS_VALUE: Final = 2.0**360


class MetricUnit(StrEnum):
    """The units CloudWatch accepts (MetricDatum ``Unit``)."""

    SECONDS = "Seconds"
    MICROSECONDS = "Microseconds"
    MILLISECONDS = "Milliseconds"
    BYTES = "Bytes"
    KILOBYTES = "Kilobytes"
    MEGABYTES = "Megabytes"
    GIGABYTES = "Gigabytes"
    TERABYTES = "Terabytes"
    BITS = "Bits"
    KILOBITS = "Kilobits"
    MEGABITS = "Megabits"
    GIGABITS = "Gigabits"
    TERABITS = "Terabits"
    PERCENT = "Percent"
    COUNT = "Count"
    BYTES_PER_SECOND = "Bytes/Second"
    KILOBYTES_PER_SECOND = "Kilobytes/Second"
    MEGABYTES_PER_SECOND = "Megabytes/Second"
    GIGABYTES_PER_SECOND = "Gigabytes/Second"
    TERABYTES_PER_SECOND = "Terabytes/Second"
    BITS_PER_SECOND = "Bits/Second"
    KILOBITS_PER_SECOND = "Kilobits/Second"
    MEGABITS_PER_SECOND = "Megabits/Second"
    GIGABITS_PER_SECOND = "Gigabits/Second"
    TERABITS_PER_SECOND = "Terabits/Second"
    COUNT_PER_SECOND = "Count/Second"
    NONE = "None"


_UNITS: Final = frozenset(unit.value for unit in MetricUnit)


def stdout_sink(line: str) -> None:
    """Write one EMF document as one line to stdout (Lambda ships stdout to CloudWatch
    Logs, where EMF is extracted). ``sys.stdout`` is looked up at call time."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class _Metric:
    __slots__ = ("resolution", "unit", "values")

    def __init__(self, unit: str, resolution: int) -> None:
        self.unit = unit
        self.resolution = resolution
        self.values: list[float] = []


class Metrics:
    """A buffer of metrics for one namespace and one dimension set, flushed as EMF.

    ``add_metric`` may be called many times for one name (each call adds a value: EMF
    keeps every value, so CloudWatch can compute percentiles). ``flush()`` writes the
    documents through ``sink`` (default: stdout) and empties the buffer; dimensions and
    metadata stay. Not thread-safe: use one per invocation.
    """

    def __init__(
        self,
        namespace: str,
        *,
        dimensions: Mapping[str, str] | None = None,
        sink: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        _check_name("namespace", namespace, _MAX_NAMESPACE_LENGTH)
        self.namespace = namespace
        self._sink = sink if sink is not None else stdout_sink
        self._clock = clock
        self._dimensions: dict[str, str] = {}
        self._metrics: dict[str, _Metric] = {}
        self._metadata: dict[str, Any] = {}
        for name, value in (dimensions or {}).items():
            self.add_dimension(name, value)

    @property
    def dimensions(self) -> dict[str, str]:
        return dict(self._dimensions)

    @property
    def metric_names(self) -> list[str]:
        return list(self._metrics)

    def add_dimension(self, name: str, value: str) -> None:
        """Add (or replace) a dimension of every metric of this buffer."""
        _check_name(f"dimension {name!r}", name, _MAX_NAME_LENGTH)
        if name.startswith(":"):
            raise InvalidMetricError(f"dimension {name!r}", "names cannot start with ':'")
        if not isinstance(value, str):
            raise InvalidMetricError(f"dimension {name!r}", "values must be strings")
        _check_name(f"dimension {name!r} value", value, _MAX_DIMENSION_VALUE_LENGTH)
        if name in self._metrics or name == "_aws":
            raise InvalidMetricError(f"dimension {name!r}", "name already used by a metric")
        if name not in self._dimensions and len(self._dimensions) >= MAX_DIMENSIONS:
            raise InvalidMetricError(
                f"dimension {name!r}", f"a dimension set holds at most {MAX_DIMENSIONS}"
            )
        self._dimensions[name] = value

    def add_metric(
        self,
        name: str,
        unit: MetricUnit | str,
        value: float | Iterable[float],
        *,
        resolution: int = 60,
    ) -> None:
        """Add one value (or several) to metric ``name``. ``resolution`` is 60 (standard)
        or 1 (high resolution). A name keeps the unit and resolution it was first given."""
        _check_name(f"metric {name!r}", name, _MAX_NAME_LENGTH)
        unit_name = unit.value if isinstance(unit, MetricUnit) else unit
        if unit_name not in _UNITS:
            raise InvalidMetricError(f"metric {name!r}", f"unknown unit {unit_name!r}")
        if resolution not in (1, 60):
            raise InvalidMetricError(f"metric {name!r}", "resolution must be 1 or 60")
        if name in self._dimensions or name == "_aws":
            raise InvalidMetricError(f"metric {name!r}", "name already used by a dimension")
        values = [value] if isinstance(value, int | float) else list(value)
        checked = [_check_value(name, v) for v in values]
        metric = self._metrics.get(name)
        if metric is None:
            metric = self._metrics[name] = _Metric(unit_name, resolution)
        elif (metric.unit, metric.resolution) != (unit_name, resolution):
            raise InvalidMetricError(
                f"metric {name!r}",
                f"already recorded with unit {metric.unit} and resolution {metric.resolution}",
            )
        metric.values.extend(checked)

    def add_metadata(self, key: str, value: Any) -> None:
        """A searchable, non-metric member of every document (e.g. a request id). Must be
        JSON-serializable; a key that names a metric or dimension is not written."""
        if not isinstance(key, str) or not key or key == "_aws":
            raise InvalidMetricError(f"metadata {key!r}", "keys must be non-empty strings")
        self._metadata[key] = value

    def documents(self, *, timestamp_ms: int | None = None) -> list[dict[str, Any]]:
        """The buffered metrics as EMF documents, split to respect the limits.

        Round ``r`` carries values ``[100r, 100r+100)`` of every metric that has that many;
        each round is split into documents of at most 100 metrics.
        """
        if not self._metrics:
            return []
        stamp = timestamp_ms if timestamp_ms is not None else int(self._clock() * 1000)
        rounds = max(
            math.ceil(len(m.values) / MAX_VALUES_PER_METRIC) for m in self._metrics.values()
        )
        documents: list[dict[str, Any]] = []
        for round_index in range(rounds):
            start = round_index * MAX_VALUES_PER_METRIC
            present = [n for n, m in self._metrics.items() if len(m.values) > start]
            for offset in range(0, len(present), MAX_METRICS_PER_DOCUMENT):
                names = present[offset : offset + MAX_METRICS_PER_DOCUMENT]
                documents.append(self._document(names, start, stamp))
        return documents

    def flush(self) -> int:
        """Write the documents through the sink, one line each; empty the buffer (also
        when the sink fails, so a broken sink cannot grow it without bound). Returns the
        number of documents written."""
        documents = self.documents()
        self._metrics.clear()
        for document in documents:
            self._sink(json.dumps(document, separators=(",", ":"), default=str))
        return len(documents)

    def _document(self, names: list[str], start: int, stamp: int) -> dict[str, Any]:
        definitions: list[dict[str, Any]] = []
        document: dict[str, Any] = {
            "_aws": {
                "Timestamp": stamp,
                "CloudWatchMetrics": [
                    {
                        "Namespace": self.namespace,
                        "Dimensions": [list(self._dimensions)],
                        "Metrics": definitions,
                    }
                ],
            }
        }
        document.update(self._dimensions)
        for name in names:
            metric = self._metrics[name]
            definition: dict[str, Any] = {"Name": name, "Unit": metric.unit}
            if metric.resolution == 1:
                definition["StorageResolution"] = 1
            definitions.append(definition)
            chunk = metric.values[start : start + MAX_VALUES_PER_METRIC]
            document[name] = chunk[0] if len(chunk) == 1 else chunk
        for key, value in self._metadata.items():
            document.setdefault(key, value)  # never shadows a metric or dimension
        return document


def _check_name(what: str, name: Any, max_length: int) -> None:
    if not isinstance(name, str) or not name.strip():
        raise InvalidMetricError(what, "must be a non-empty string")
    if len(name) > max_length:
        raise InvalidMetricError(what, f"longer than {max_length} characters")
    if not name.isascii() or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise InvalidMetricError(what, "must be printable ASCII")


def _check_value(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidMetricError(f"metric {name!r}", f"value must be a number, not {value!r}")
    if (isinstance(value, float) and not math.isfinite(value)) or abs(value) > _MAX_ABS_VALUE:
        raise InvalidMetricError(f"metric {name!r}", f"value out of range: {value!r}")
    return value
