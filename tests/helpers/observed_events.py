"""Events, contexts and sinks for the observability tests: stream records with a secret in
their images, a fixed clock, an EMF sink that validates what it collects, and an X-Ray
recorder that fails on every call."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from streamkit import StreamRecord
from streamkit.observability import (
    ObservedBatchHandler,
    Tracer,
    observed_batch_handler,
)
from tests.helpers.emf import validate_emf
from tests.helpers.stream_data import numbered_record

SECRET = "s3cr3t-value-77"
NOW = 1_700_000_100.0  # the fixed clock: epoch seconds
TABLE_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024"


def record(i: int, key: str = "", *, created: float | None = None) -> dict[str, Any]:
    """Record ``i`` with the secret in its NewImage, created a minute before ``NOW``."""
    return numbered_record(
        i,
        key,
        image={"secret": {"S": SECRET}},
        created=NOW - 60 + i if created is None else created,
        arn=TABLE_ARN,
    )


def event(*records: dict[str, Any]) -> dict[str, Any]:
    return {"Records": list(records)}


def index_of(r: StreamRecord) -> int:
    return int(r.new_image["i"])  # type: ignore[index]


class LambdaContext:
    function_name = "orders-audit"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:orders-audit"
    memory_limit_in_mb = 256

    def __init__(self, request_id: str = "req-1") -> None:
        self.aws_request_id = request_id


class Sink:
    """Collects EMF lines; ``metrics()`` merges the values of every valid document."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    def documents(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.lines]

    def metrics(self) -> dict[str, list[float]]:
        merged: dict[str, list[float]] = {}
        for document in self.documents():
            for name, values in validate_emf(document).items():
                merged.setdefault(name, []).extend(values)
        return merged


def failing_on(*indices: int) -> Callable[[StreamRecord], None]:
    def handle(r: StreamRecord) -> None:
        if index_of(r) in indices:
            raise ValueError(f"boom {index_of(r)}")

    return handle


def observed(handler: Callable[..., Any], sink: Sink, **options: Any) -> ObservedBatchHandler:
    options.setdefault("namespace", "Orders")
    options.setdefault("service", "audit")
    options.setdefault("tracer", Tracer(enabled=False))
    return observed_batch_handler(metrics_sink=sink, clock=lambda: NOW, **options)(handler)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


class ExplodingRecorder:
    """An X-Ray recorder whose every call fails."""

    def __init__(self, fail_on_begin: bool) -> None:
        self.fail_on_begin = fail_on_begin

    def begin_subsegment(self, name: str) -> Any:
        if self.fail_on_begin:
            raise RuntimeError("xray is broken")
        return ExplodingSubsegment()

    def current_subsegment(self) -> Any:
        raise RuntimeError("xray is broken")

    def end_subsegment(self) -> None:
        raise RuntimeError("xray is broken")


class ExplodingSubsegment:
    def put_annotation(self, key: str, value: Any) -> None:
        raise RuntimeError("annotation broken")

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        raise RuntimeError("metadata broken")

    def add_exception(self, error: BaseException, stack: Any) -> None:
        raise RuntimeError("exception broken")
