"""Batch processing benchmarks: streamkit.process_batch against Powertools' BatchProcessor.

The anchor is Powertools' documented pattern for DynamoDB Streams::

    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
    process_partial_response(event, record_handler, processor, context)

Both sides get the same orders batch (``tests.helpers.stream_data.orders_event(1000)``, 1,000
realistic order records, INSERT/MODIFY/REMOVE mixed), round-tripped through JSON once
(untimed) so that it is made of fresh objects the way the Lambda runtime's ``json.loads``
hands it over. Each timed call processes the whole batch and returns the response; before
timing, each case checks that both sides answer ``{"batchItemFailures": []}`` and that the
reading handlers saw equal values.

Targets (ratio = Powertools time / streamkit time; higher is better for streamkit):

- no-op handler: streamkit within 1.5x of Powertools (ratio >= 0.67). Powertools decodes
  nothing for a no-op handler, so this measures the per-record machinery only.
- handler reading ``new_image``: streamkit at least 3x faster. Powertools decodes the image
  with boto3's TypeDeserializer on every access; streamkit decodes lazily, once, with its
  own codec.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import (
    DynamoDBRecord,
)
from tests.helpers import stream_data as _data

from benchmarks import Case, Result, measure
from streamkit.batch import process_batch
from streamkit.records import StreamRecord

NOOP_TARGET = 1 / 1.5  # streamkit may be at most 1.5x slower
READ_TARGET = 3.0
RECORDS = 1000


def lambda_event(n: int = RECORDS) -> dict[str, Any]:
    """The orders batch as the Lambda runtime hands it to the handler."""
    event: dict[str, Any] = json.loads(json.dumps(_data.orders_event(n)))
    return event


def streamkit_call(
    event: dict[str, Any], handler: Callable[[StreamRecord], Any], **options: Any
) -> Callable[[], Any]:
    def run() -> Any:
        return process_batch(event, handler, **options)

    return run


def powertools_call(event: dict[str, Any], handler: Callable[..., Any]) -> Callable[[], Any]:
    processor = BatchProcessor(event_type=EventType.DynamoDBStreams)

    def run() -> Any:
        return process_partial_response(event=event, record_handler=handler, processor=processor)

    return run


# Powertools passes the record by keyword: the parameter must be called ``record``.
def streamkit_noop(record: StreamRecord) -> None:
    return None


def powertools_noop(record: DynamoDBRecord) -> None:
    return None


def streamkit_read_status(record: StreamRecord) -> Any:
    image = record.new_image  # None for a REMOVE
    return image["status"] if image else None


def powertools_read_status(record: DynamoDBRecord) -> Any:
    image = record.dynamodb.new_image if record.dynamodb else None  # {} for a REMOVE
    return image["status"] if image else None


def _check_same_answers(event: dict[str, Any]) -> None:
    """Both sides succeed on every record, and the reading handlers read the same values."""
    seen_ours: list[Any] = []
    seen_theirs: list[Any] = []
    ours = process_batch(event, lambda record: seen_ours.append(streamkit_read_status(record)))

    def theirs_handler(record: DynamoDBRecord) -> None:
        seen_theirs.append(powertools_read_status(record))

    theirs = powertools_call(event, theirs_handler)()
    empty = {"batchItemFailures": []}
    if ours != empty or theirs != empty:
        raise AssertionError(f"unexpected responses: streamkit {ours}, Powertools {theirs}")
    if seen_ours != seen_theirs or len(seen_ours) != len(event["Records"]):
        raise AssertionError("streamkit and Powertools handlers read different values")
    for options in ({}, {"ordering": "per_key"}):
        if process_batch(event, streamkit_noop, **options) != empty:
            raise AssertionError(f"no-op batch with {options} reported failures")


def cases(event: dict[str, Any]) -> list[Case]:
    n = len(event["Records"])
    anchor = "Powertools BatchProcessor"
    return [
        Case(
            "no-op handler, fail_fast",
            streamkit_call(event, streamkit_noop),
            powertools_call(event, powertools_noop),
            anchor,
            n,
            NOOP_TARGET,
        ),
        Case(
            "handler reads new_image, fail_fast",
            streamkit_call(event, streamkit_read_status),
            powertools_call(event, powertools_read_status),
            anchor,
            n,
            READ_TARGET,
        ),
        Case(
            "no-op handler, per_key",
            streamkit_call(event, streamkit_noop, ordering="per_key"),
            powertools_call(event, powertools_noop),
            anchor,
            n,
            None,
        ),
        Case(
            "handler reads new_image, numbers='native'",
            streamkit_call(event, streamkit_read_status, numbers="native"),
            powertools_call(event, powertools_read_status),
            anchor,
            n,
            None,
        ),
    ]


def print_results(title: str, results: list[Result]) -> None:
    header = (
        f"{'case':<42} {'streamkit':>12} {'powertools':>12} {'ratio':>7} {'median':>7}"
        f"  {'target':<22} verdict"
    )
    print(f"\n{title}\n{header}\n{'-' * len(header)}")
    for r in results:
        target = r.case.target
        if target is None:
            wanted = "-"
        elif target < 1:
            wanted = f">= {target:.2f}x (<= {1 / target:.1f}x slower)"
        else:
            wanted = f">= {target:.1f}x faster"
        verdict = {True: "PASS", False: "FAIL", None: "info"}[r.passed]
        print(
            f"{r.case.name:<42} {r.ours_us:>9.2f} us {r.anchor_us:>9.2f} us {r.ratio:>6.2f}x"
            f" {r.median_ratio:>6.2f}x  {wanted:<22} {verdict}"
        )
    print(
        "(us per record, fastest of interleaved calls of the whole 1,000-record batch; "
        "ratio = Powertools time / streamkit time)"
    )


def main() -> bool:
    event = lambda_event()
    _check_same_answers(event)
    results = [measure(case) for case in cases(event)]
    print_results("batch: streamkit.process_batch vs Powertools process_partial_response", results)
    return all(r.passed is not False for r in results)


if __name__ == "__main__":
    main()
