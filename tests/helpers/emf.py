"""The EMF documents a handler printed among its log lines, for the handler tests of every
suite (in-process: captured stdout; deployed: the invoke's log output)."""

from __future__ import annotations

import json
from typing import Any

from tests.unit.test_observability_metrics import validate_emf

__all__ = ["RECORD_COUNTERS", "batch_counts", "emf_documents", "printed_counts", "tally"]

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
