"""The EMF documents a handler printed among its log lines, for the handler tests of every
suite (in-process: captured stdout; deployed: the invoke's log output)."""

from __future__ import annotations

import json
import math
from typing import Any

from streamkit.observability import MetricUnit

__all__ = [
    "RECORD_COUNTERS",
    "batch_counts",
    "emf_documents",
    "printed_counts",
    "tally",
    "validate_emf",
]

_UNITS = {unit.value for unit in MetricUnit}

RECORD_COUNTERS = (
    "BatchSize",
    "RecordsProcessed",
    "RecordsFailed",
    "RecordsSkipped",
    "RecordsAlreadyCompleted",
)


def emf_documents(text: str) -> list[dict[str, Any]]:
    """Every EMF document in ``text``: the lines that are JSON objects with ``_aws``."""
    documents = []
    for line in text.splitlines():
        if not line.startswith("{"):
            continue
        document = json.loads(line)
        if "_aws" in document:
            documents.append(document)
    return documents


def batch_counts(document: dict[str, Any], *, namespace: str, service: str) -> dict[str, float]:
    """The record counters of one invocation's document, once it is checked to be valid EMF
    in ``namespace`` with the ``Service`` dimension ``service``."""
    metrics = validate_emf(document)
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == namespace
    assert "Service" in directive["Dimensions"][0] and document["Service"] == service
    counts: dict[str, float] = {}
    for name in RECORD_COUNTERS:
        [counts[name]] = metrics[name]  # one value per invocation
    return counts


def printed_counts(text: str, *, namespace: str, service: str) -> dict[str, float]:
    """The record counters of the one batch EMF document in ``text`` (one invocation's output;
    per-target ``ChangeToHandlerLatency`` documents, dimension ``Target``, are not batches)."""
    [document] = [d for d in emf_documents(text) if "Target" not in d]
    return batch_counts(document, namespace=namespace, service=service)


def tally(
    size: int, *, processed: int = 0, failed: int = 0, skipped: int = 0, already: int = 0
) -> dict[str, float]:
    """The record counters expected of a batch of ``size`` records."""
    assert processed + failed + skipped + already == size, "every record is counted once"
    return dict(zip(RECORD_COUNTERS, (size, processed, failed, skipped, already), strict=True))


def validate_emf(document: Any) -> dict[str, list[float]]:
    """Assert ``document`` is a valid EMF document; return ``{metric: [values]}``.

    Rules: a root object with ``_aws``; ``_aws`` holds an integer ``Timestamp`` (epoch ms)
    and a non-empty ``CloudWatchMetrics`` array of directives with exactly ``Namespace``,
    ``Dimensions`` and ``Metrics``; each dimension set has at most 30 names, each naming a
    string member of the root; at most 100 metric definitions ``{Name, Unit[,
    StorageResolution]}``, each naming a root member that is a number or an array of at
    most 100 numbers.
    """
    assert isinstance(document, dict)
    aws = document["_aws"]
    assert isinstance(aws, dict) and set(aws) == {"Timestamp", "CloudWatchMetrics"}
    stamp = aws["Timestamp"]
    assert isinstance(stamp, int) and not isinstance(stamp, bool)
    assert 1_500_000_000_000 < stamp < 10_000_000_000_000  # milliseconds, not seconds
    directives = aws["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    found: dict[str, list[float]] = {}
    for directive in directives:
        assert set(directive) == {"Namespace", "Dimensions", "Metrics"}
        namespace = directive["Namespace"]
        assert isinstance(namespace, str) and namespace.strip() and len(namespace) <= 255
        dimension_sets = directive["Dimensions"]
        assert isinstance(dimension_sets, list) and dimension_sets
        for dimension_set in dimension_sets:
            assert isinstance(dimension_set, list) and len(dimension_set) <= 30
            for name in dimension_set:
                value = document[name]
                assert isinstance(value, str) and value.strip() and len(value) <= 1024
        definitions = directive["Metrics"]
        assert isinstance(definitions, list) and 1 <= len(definitions) <= 100
        for definition in definitions:
            assert set(definition) <= {"Name", "Unit", "StorageResolution"}
            assert definition["Unit"] in _UNITS
            assert definition.get("StorageResolution", 60) in (1, 60)
            value = document[definition["Name"]]
            values = value if isinstance(value, list) else [value]
            assert 1 <= len(values) <= 100
            for number in values:
                assert isinstance(number, int | float) and not isinstance(number, bool)
                assert math.isfinite(number)
            found[definition["Name"]] = values
    return found
