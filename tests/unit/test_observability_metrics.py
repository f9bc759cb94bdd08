"""Metrics: Embedded Metric Format documents, checked against the spec's rules, and split to
its limits (https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from tests.helpers.emf import validate_emf

from streamkit.exceptions import InvalidMetricError
from streamkit.observability import Metrics, MetricUnit
from streamkit.observability.metrics import MAX_DIMENSIONS


def flushed(metrics: Metrics) -> list[dict[str, Any]]:
    """Flush through a list sink; parse each line as JSON (one document per line)."""
    lines: list[str] = []
    metrics._sink = lines.append
    metrics.flush()
    for line in lines:
        assert "\n" not in line
    return [json.loads(line) for line in lines]


def test_a_document_names_namespace_dimensions_and_units() -> None:
    metrics = Metrics("Orders", dimensions={"Service": "audit"}, clock=lambda: 1_800_000_000.5)
    metrics.add_metric("RecordsFailed", MetricUnit.COUNT, 2)
    metrics.add_metric("Latency", "Milliseconds", 12.5, resolution=1)
    [document] = flushed(metrics)
    assert validate_emf(document) == {"RecordsFailed": [2], "Latency": [12.5]}
    assert document["_aws"]["Timestamp"] == 1_800_000_000_500
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Orders"
    assert directive["Dimensions"] == [["Service"]]
    assert directive["Metrics"] == [
        {"Name": "RecordsFailed", "Unit": "Count"},
        {"Name": "Latency", "Unit": "Milliseconds", "StorageResolution": 1},
    ]
    assert document["Service"] == "audit"


def test_flush_writes_to_stdout_by_default_and_empties_the_buffer(
    capsys: pytest.CaptureFixture[str],
) -> None:
    metrics = Metrics("Orders")
    metrics.add_metric("A", MetricUnit.COUNT, 1)
    assert metrics.flush() == 1
    assert metrics.flush() == 0  # nothing buffered any more
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert validate_emf(json.loads(lines[0])) == {"A": [1]}


def test_repeated_values_become_an_array() -> None:
    metrics = Metrics("Orders")
    for value in (1.5, 2.5, 3.5):
        metrics.add_metric("HandlerDuration", MetricUnit.MILLISECONDS, value)
    [document] = flushed(metrics)
    assert document["HandlerDuration"] == [1.5, 2.5, 3.5]


def test_more_than_100_metrics_are_split_across_documents() -> None:
    metrics = Metrics("Orders", dimensions={"Service": "audit"})
    for i in range(250):
        metrics.add_metric(f"M{i}", MetricUnit.COUNT, i)
    documents = flushed(metrics)
    assert [len(d["_aws"]["CloudWatchMetrics"][0]["Metrics"]) for d in documents] == [100, 100, 50]
    merged: dict[str, list[float]] = {}
    for document in documents:
        merged.update(validate_emf(document))
        assert document["Service"] == "audit"  # every document carries the dimensions
    assert merged == {f"M{i}": [i] for i in range(250)}


def test_more_than_100_values_are_split_across_documents_keeping_every_value() -> None:
    metrics = Metrics("Orders")
    metrics.add_metric("HandlerDuration", MetricUnit.MILLISECONDS, [float(i) for i in range(250)])
    metrics.add_metric("BatchSize", MetricUnit.COUNT, 250)
    documents = flushed(metrics)
    assert len(documents) == 3
    durations: list[float] = []
    batch_sizes: list[float] = []
    for document in documents:
        values = validate_emf(document)
        durations += values.get("HandlerDuration", [])
        batch_sizes += values.get("BatchSize", [])
    assert durations == [float(i) for i in range(250)]
    assert batch_sizes == [250]  # written once, not once per document


def test_metrics_and_values_split_together() -> None:
    metrics = Metrics("Orders")
    for i in range(150):
        metrics.add_metric(f"M{i}", MetricUnit.COUNT, list(range(120)))
    documents = flushed(metrics)
    # Two rounds of values (100 + 20), each split into 100 + 50 metrics.
    assert len(documents) == 4
    totals: dict[str, list[float]] = {}
    for document in documents:
        for name, values in validate_emf(document).items():
            totals.setdefault(name, []).extend(values)
    assert totals == {f"M{i}": list(range(120)) for i in range(150)}


def test_no_metrics_no_document() -> None:
    metrics = Metrics("Orders", dimensions={"Service": "audit"})
    metrics.add_metadata("function_request_id", "r-1")
    assert flushed(metrics) == []


def test_metadata_is_written_but_never_shadows_a_metric() -> None:
    metrics = Metrics("Orders")
    metrics.add_metric("A", MetricUnit.COUNT, 1)
    metrics.add_metadata("function_request_id", "r-1")
    metrics.add_metadata("A", "not a number")
    [document] = flushed(metrics)
    assert document["function_request_id"] == "r-1"
    assert validate_emf(document) == {"A": [1]}


def test_at_most_30_dimensions() -> None:
    metrics = Metrics("Orders")
    for i in range(MAX_DIMENSIONS):
        metrics.add_dimension(f"D{i}", "v")
    metrics.add_dimension("D0", "replaced")  # replacing is not adding
    with pytest.raises(InvalidMetricError, match="at most 30"):
        metrics.add_dimension("OneTooMany", "v")
    metrics.add_metric("A", MetricUnit.COUNT, 1)
    [document] = flushed(metrics)
    validate_emf(document)
    assert document["D0"] == "replaced"


@pytest.mark.parametrize(
    ("name", "unit", "value", "match"),
    [
        ("", MetricUnit.COUNT, 1, "non-empty"),
        ("x" * 256, MetricUnit.COUNT, 1, "longer than 255"),
        ("A", "Parsecs", 1, "unknown unit"),
        ("A", MetricUnit.COUNT, float("nan"), "out of range"),
        ("A", MetricUnit.COUNT, float("inf"), "out of range"),
        ("A", MetricUnit.COUNT, 10**400, "out of range"),
        ("A", MetricUnit.COUNT, True, "must be a number"),
        ("A", MetricUnit.COUNT, "3", "must be a number"),
    ],
)
def test_invalid_metrics_are_rejected_when_added(
    name: str, unit: Any, value: Any, match: str
) -> None:
    metrics = Metrics("Orders")
    with pytest.raises(InvalidMetricError, match=match):
        metrics.add_metric(name, unit, value)
    assert metrics.metric_names == []


def test_a_metric_keeps_its_unit_and_cannot_reuse_a_dimension_name() -> None:
    metrics = Metrics("Orders", dimensions={"Service": "audit"})
    metrics.add_metric("A", MetricUnit.COUNT, 1)
    with pytest.raises(InvalidMetricError, match="already recorded"):
        metrics.add_metric("A", MetricUnit.MILLISECONDS, 1)
    with pytest.raises(InvalidMetricError, match="dimension"):
        metrics.add_metric("Service", MetricUnit.COUNT, 1)
    with pytest.raises(InvalidMetricError, match="metric"):
        metrics.add_dimension("A", "v")


@pytest.mark.parametrize("namespace", ["", "   ", "x" * 256, "Ordérs"])
def test_invalid_namespaces_are_rejected(namespace: str) -> None:
    with pytest.raises(InvalidMetricError):
        Metrics(namespace)


def test_dimension_values_must_be_non_empty_strings() -> None:
    metrics = Metrics("Orders")
    with pytest.raises(InvalidMetricError):
        metrics.add_dimension("TableName", "")
    with pytest.raises(InvalidMetricError):
        metrics.add_dimension("TableName", 7)  # type: ignore[arg-type]
    with pytest.raises(InvalidMetricError, match="':'"):
        metrics.add_dimension(":Table", "t")


def test_a_failing_sink_still_empties_the_buffer() -> None:
    def broken(line: str) -> None:
        raise OSError("stdout closed")

    metrics = Metrics("Orders", sink=broken)
    metrics.add_metric("A", MetricUnit.COUNT, 1)
    with pytest.raises(OSError):
        metrics.flush()
    assert metrics.documents() == []
