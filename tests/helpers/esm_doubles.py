"""Doubles and builders for the event source mapping pipeline's unit tests: a scripted
invoker and its outcomes, stats and destination recorders, one batch builder and one
processor builder over the in-memory stream double."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streamkit.local.esm.batcher import Batch, BatchPoller
from streamkit.local.esm.checkpointer import ShardCheckpointer
from streamkit.local.esm.destinations import DeliveryPolicy, FailureContext
from streamkit.local.esm.intake import RecordIntake
from streamkit.local.esm.processor import (
    BatchProcessor,
    FailureReporter,
    ProcessingPolicy,
    RetryDelay,
)
from streamkit.streams.reader import ShardReader, StartPosition
from tests.helpers.fake_streams import FakeStreamsClient

FUNCTION_ARN = "arn:aws:lambda:eu-west-1:123456789012:function:consumer"
NO_DELAY = RetryDelay(initial=0.0, maximum=0.0)


# -- doubles -------------------------------------------------------------------------------


@dataclass
class Outcome:
    ok: bool = True
    payload: Any = None
    function_error: str | None = None
    status_code: int = 200
    timed_out: bool = False
    init_error: bool = False
    executed_version: str = "$LATEST"
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))


def error(message: str = "boom") -> Outcome:
    return Outcome(
        ok=False,
        function_error="Unhandled",
        payload={"errorMessage": message, "errorType": "RuntimeError", "stackTrace": []},
    )


def failures(*identifiers: Any) -> Outcome:
    return Outcome(payload={"batchItemFailures": [{"itemIdentifier": i} for i in identifiers]})


class ScriptedInvoker:
    """Answers each invoke with ``respond(records, call_number)``; remembers every event."""

    def __init__(self, respond: Callable[[list[dict[str, Any]], int], Outcome]) -> None:
        self.respond = respond
        self.events: list[list[dict[str, Any]]] = []

    def invoke(self, payload: Mapping[str, Any]) -> Outcome:
        records = list(payload["Records"])
        self.events.append(records)
        return self.respond(records, len(self.events))

    def sequences(self) -> list[list[str]]:
        return [[r["dynamodb"]["SequenceNumber"] for r in event] for event in self.events]


class Stats:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.errors: list[str | None] = []
        self.ages: list[float] = []

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] = self.counts.get(name, 0) + n

    def note_error(self, message: str | None) -> None:
        self.errors.append(message)

    def note_iterator_age(self, age_ms: float) -> None:
        self.ages.append(age_ms)


class RecordingDestination:
    arn = "arn:aws:sqs:eu-west-1:123456789012:dlq"

    def __init__(self, fail_times: int = 0) -> None:
        self.fail_times = fail_times
        self.attempts = 0
        self.sent: list[tuple[dict[str, Any], FailureContext]] = []

    def send(self, record: Mapping[str, Any], context: FailureContext) -> None:
        self.attempts += 1
        if self.attempts <= self.fail_times:
            raise ConnectionError("queue unavailable")
        self.sent.append((json.loads(json.dumps(record)), context))


def make_batch(
    streams: FakeStreamsClient, arn: str, count: int, *, filtered: set[int] = frozenset()
) -> Batch:  # type: ignore[assignment]
    """Put ``count`` records and read them into one batch; indexes in ``filtered`` are dropped
    by the filter (eventName REMOVE)."""
    for i in range(count):
        streams.put(
            arn,
            f"k{i}",
            event_name="REMOVE" if i in filtered else "INSERT",
            new_image={"n": {"N": str(i)}},
        )
    shard = streams.shard_ids(arn)[0]
    reader = ShardReader(streams, arn, shard, StartPosition("TRIM_HORIZON"))
    patterns = ['{"eventName": ["INSERT"]}'] if filtered else []
    poller = BatchPoller(
        reader, batch_size=count, batching_window_s=0, intake=RecordIntake(arn, patterns)
    )
    batch = poller.next_batch(threading.Event())
    assert batch is not None
    assert len(batch.sequence_numbers) == count
    return batch


def make_processor(
    arn: str,
    invoker: ScriptedInvoker,
    commits: list[str],
    stats: Stats | None = None,
    *,
    destination: RecordingDestination | None = None,
    delivery: DeliveryPolicy | None = None,
    **policy: Any,
) -> BatchProcessor:
    """A processor of one mapping (``policy``: ProcessingPolicy fields) whose checkpoints
    are appended to ``commits``; no retry delays unless asked."""
    stats = stats or Stats()
    policy.setdefault("retry_delay", NO_DELAY)
    reporter = FailureReporter(
        FUNCTION_ARN,
        arn,
        stats,
        destination,
        delivery or DeliveryPolicy(initial_delay=0.0, max_delay=0.0),
    )
    return BatchProcessor(
        invoker=invoker,
        checkpointer=ShardCheckpointer(commits.append),
        stats=stats,
        reporter=reporter,
        policy=ProcessingPolicy(**policy),
    )


def seqs(batch: Batch, *indexes: int) -> list[str]:
    return [batch.sequence_numbers[i] for i in indexes]
