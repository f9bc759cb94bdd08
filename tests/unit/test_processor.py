"""The ESM pipeline without an emulator: stream reader, poller and processor, driven by the
in-memory stream double and a scripted invoker. Exact invoke counts, checkpoint rules for every
ReportBatchItemFailures case, and the on-failure record shape."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from tests.helpers.fake_streams import FakeStreamsClient

from streamkit.exceptions import StreamNotFoundError
from streamkit.local.esm.batcher import Batch, BatchPoller, IdleBackoff
from streamkit.local.esm.checkpoints import CheckpointStore
from streamkit.local.esm.config import MappingConfig
from streamkit.local.esm.destinations import DeliveryPolicy, FailureContext
from streamkit.local.esm.mapping import MappingStats, MappingWorker, WorkerSettings
from streamkit.local.esm.processor import (
    BatchOutcome,
    BatchProcessor,
    BisectPolicy,
    LambdaRecordConverter,
    RecordAgePolicy,
    RetryDelay,
    RetryPolicy,
    VerdictKind,
    build_record_filter,
    judge_response,
)
from streamkit.local.esm.runner import Runner
from streamkit.streams.reader import ShardReader, StartPosition, describe_stream

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


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def streams() -> FakeStreamsClient:
    return FakeStreamsClient()


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
    record_filter = build_record_filter(['{"eventName": ["INSERT"]}']) if filtered else None
    poller = BatchPoller(
        reader,
        batch_size=count,
        batching_window_s=0,
        convert=LambdaRecordConverter(arn),
        record_filter=record_filter,
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
    **options: Any,
) -> BatchProcessor:
    options.setdefault("retry_delay", NO_DELAY)
    options.setdefault("delivery", DeliveryPolicy(initial_delay=0.0, max_delay=0.0))
    return BatchProcessor(
        function_arn=FUNCTION_ARN,
        stream_arn=arn,
        invoker=invoker,
        commit=commits.append,
        stats=stats or Stats(),
        **options,
    )


def seqs(batch: Batch, *indexes: int) -> list[str]:
    return [batch.sequence_numbers[i] for i in indexes]


# -- the event envelope ----------------------------------------------------------------------


def test_records_have_the_exact_lambda_shape(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream("orders", view_type="NEW_AND_OLD_IMAGES")
    created = dt.datetime(2024, 5, 1, 12, 0, 7, 654321, tzinfo=dt.UTC)
    streams.put(
        arn,
        "o-1",
        event_name="MODIFY",
        new_image={
            "blob": {"B": b"\x00\xff"},
            "tags": {"BS": [b"a"]},
            "m": {"M": {"x": {"B": b"b"}}},
        },
        old_image={"n": {"N": "1"}},
        created=created,
    )
    raw = streams.get_records(
        ShardIterator=streams.get_shard_iterator(
            StreamArn=arn, ShardId=streams.shard_ids(arn)[0], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
    )["Records"][0]
    record = LambdaRecordConverter(arn)(raw)
    assert list(record) == [
        "eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN",
    ]  # fmt: skip
    assert record["eventName"] == "MODIFY"
    assert record["eventSource"] == "aws:dynamodb"
    assert record["awsRegion"] == "us-east-1"
    assert record["eventSourceARN"] == arn
    body = record["dynamodb"]
    assert list(body) == [
        "ApproximateCreationDateTime", "Keys", "NewImage", "OldImage", "SequenceNumber", "SizeBytes", "StreamViewType",
    ]  # fmt: skip
    # DynamoDB rounds the creation time down to the second; Lambda sends epoch seconds.
    assert body["ApproximateCreationDateTime"] == 1714564807.0
    assert body["Keys"] == {"pk": {"S": "o-1"}}
    assert body["NewImage"]["blob"] == {"B": "AP8="}
    assert body["NewImage"]["tags"] == {"BS": ["YQ=="]}
    assert body["NewImage"]["m"] == {"M": {"x": {"B": "Yg=="}}}
    assert body["OldImage"] == {"pk": {"S": "o-1"}, "n": {"N": "1"}}
    assert body["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    json.dumps(record)  # JSON-serialisable as sent to the function


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2024, 5, 1, 12, 0, 7, tzinfo=dt.UTC),
        1714564807,
        1714564807.9,
        1714564807000,
        "2024-05-01T12:00:07Z",
        "1714564807",
    ],
)
def test_creation_time_is_normalised_from_any_form(value: Any) -> None:
    arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/L"
    raw = {
        "eventID": "e",
        "eventName": "INSERT",
        "dynamodb": {"ApproximateCreationDateTime": value, "Keys": {}, "SequenceNumber": "1"},
    }
    record = LambdaRecordConverter(arn)(raw)
    assert record["dynamodb"]["ApproximateCreationDateTime"] == 1714564807.0
    assert record["awsRegion"] == "eu-west-1"


# -- ReportBatchItemFailures judgement -------------------------------------------------------

RECORDS = [{"dynamodb": {"SequenceNumber": s}} for s in ("100", "200", "300")]


@pytest.mark.parametrize(
    "payload",
    [None, {}, [], "", {"batchItemFailures": []}, {"batchItemFailures": None}, {"other": 1}],
)
def test_success_responses(payload: Any) -> None:
    verdict = judge_response(Outcome(payload=payload), RECORDS, report_batch_item_failures=True)
    assert verdict.kind is VerdictKind.SUCCESS


def test_a_json_bytes_payload_is_decoded() -> None:
    outcome = Outcome(payload=b'{"batchItemFailures": [{"itemIdentifier": "200"}]}')
    verdict = judge_response(outcome, RECORDS, report_batch_item_failures=True)
    assert (verdict.kind, verdict.retry_from) == (VerdictKind.PARTIAL, "200")


def test_partial_failure_retries_from_the_lowest_identifier() -> None:
    verdict = judge_response(failures("300", "200"), RECORDS, report_batch_item_failures=True)
    assert (verdict.kind, verdict.retry_from) == (VerdictKind.PARTIAL, "200")


@pytest.mark.parametrize(
    "payload",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifier": "999"}]},
        {"batchItemFailures": [{"itemIdentifier": 200}]},
        {"batchItemFailures": [{"itemIdentifer": "200"}]},
        {"batchItemFailures": [{"itemIdentifier": "200"}, {"foo": "300"}]},
        {"batchItemFailures": "200"},
        "not an object",
        [{"itemIdentifier": "200"}],
    ],
)
def test_whole_batch_failure_responses(payload: Any) -> None:
    verdict = judge_response(Outcome(payload=payload), RECORDS, report_batch_item_failures=True)
    assert verdict.kind is VerdictKind.FAILURE


def test_function_errors_fail_the_batch_and_responses_are_ignored_without_the_setting() -> None:
    assert (
        judge_response(error(), RECORDS, report_batch_item_failures=True).kind
        is VerdictKind.FAILURE
    )
    assert (
        judge_response(error(), RECORDS, report_batch_item_failures=False).kind
        is VerdictKind.FAILURE
    )
    ignored = judge_response(failures("200"), RECORDS, report_batch_item_failures=False)
    assert ignored.kind is VerdictKind.SUCCESS


# -- retries and the on-failure destination -------------------------------------------------


@pytest.mark.parametrize(("max_retries", "invokes"), [(0, 1), (1, 2), (3, 4)])
def test_maximum_retry_attempts_means_that_many_retries(
    streams: FakeStreamsClient, max_retries: int, invokes: int
) -> None:
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 3)
    invoker = ScriptedInvoker(lambda records, n: error())
    destination = RecordingDestination()
    commits: list[str] = []
    stats = Stats()
    processor = make_processor(
        arn, invoker, commits, stats, retry=RetryPolicy(max_retries), destination=destination
    )
    assert processor.process(batch, threading.Event()) is BatchOutcome.COMPLETED
    assert len(invoker.events) == invokes
    assert commits == [batch.sequence_numbers[-1]]
    ((record, _context),) = destination.sent
    assert record["requestContext"]["approximateInvokeCount"] == invokes
    assert stats.counts == {"invoked": invokes, "failed": invokes, "sent_to_destination": 3}


def test_the_failure_record_has_aws_shape(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 2)
    last = error()
    invoker = ScriptedInvoker(lambda records, n: last)
    destination = RecordingDestination()
    processor = make_processor(arn, invoker, [], retry=RetryPolicy(1), destination=destination)
    processor.process(batch, threading.Event())
    ((record, _),) = destination.sent
    timestamp = record.pop("timestamp")
    assert dt.datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ")
    assert len(timestamp) == len("2019-11-14T00:13:49.717Z")
    arrival = dt.datetime.fromtimestamp(
        batch.records[0]["dynamodb"]["ApproximateCreationDateTime"], dt.UTC
    )
    arrival_text = arrival.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert record == {
        "requestContext": {
            "requestId": last.request_id,
            "functionArn": FUNCTION_ARN,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 2,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "DDBStreamBatchInfo": {
            "shardId": batch.shard_id,
            "startSequenceNumber": batch.sequence_numbers[0],
            "endSequenceNumber": batch.sequence_numbers[1],
            "approximateArrivalOfFirstRecord": arrival_text,
            "approximateArrivalOfLastRecord": record["DDBStreamBatchInfo"][
                "approximateArrivalOfLastRecord"
            ],
            "batchSize": 2,
            "streamArn": arn,
        },
    }
    assert record["DDBStreamBatchInfo"]["approximateArrivalOfLastRecord"].endswith("Z")


def test_without_a_destination_exhausted_records_are_skipped(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 2)
    stats = Stats()
    commits: list[str] = []
    invoker = ScriptedInvoker(lambda records, n: error())
    make_processor(arn, invoker, commits, stats, retry=RetryPolicy(2)).process(
        batch, threading.Event()
    )
    assert len(invoker.events) == 3
    assert commits == [batch.sequence_numbers[-1]]
    assert stats.counts["discarded"] == 2


def test_retry_forever_until_stopped_abandons_without_a_checkpoint(
    streams: FakeStreamsClient,
) -> None:
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 2)
    stop = threading.Event()

    def respond(records: list[dict[str, Any]], n: int) -> Outcome:
        if n == 25:
            stop.set()
        return error()

    invoker = ScriptedInvoker(respond)
    commits: list[str] = []
    outcome = make_processor(arn, invoker, commits, retry=RetryPolicy(-1)).process(batch, stop)
    assert outcome is BatchOutcome.ABANDONED
    assert len(invoker.events) == 25
    assert commits == []


# -- ReportBatchItemFailures checkpoints ----------------------------------------------------


def test_partial_failure_checkpoints_before_the_lowest_failure_and_retries_the_rest(
    streams: FakeStreamsClient,
) -> None:
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 5)
    s = batch.sequence_numbers

    def respond(records: list[dict[str, Any]], n: int) -> Outcome:
        return failures(s[4], s[2]) if n == 1 else Outcome()

    invoker = ScriptedInvoker(respond)
    commits: list[str] = []
    stats = Stats()
    make_processor(arn, invoker, commits, stats, report_batch_item_failures=True).process(
        batch, threading.Event()
    )
    assert invoker.sequences() == [s, s[2:]]
    assert commits == [s[1], s[4]]
    assert stats.counts == {"invoked": 2, "failed": 1, "succeeded": 5}


def test_partial_failure_at_the_first_record_does_not_move_the_checkpoint(
    streams: FakeStreamsClient,
) -> None:
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 3)
    s = batch.sequence_numbers
    invoker = ScriptedInvoker(lambda records, n: failures(s[0]) if n == 1 else Outcome())
    commits: list[str] = []
    make_processor(arn, invoker, commits, report_batch_item_failures=True).process(
        batch, threading.Event()
    )
    assert invoker.sequences() == [s, s]
    assert commits == [s[2]]


def test_partial_failures_count_against_retries_and_only_failing_records_are_described(
    streams: FakeStreamsClient,
) -> None:
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 4)
    s = batch.sequence_numbers
    invoker = ScriptedInvoker(lambda records, n: failures(s[2]))
    destination = RecordingDestination()
    commits: list[str] = []
    make_processor(
        arn,
        invoker,
        commits,
        report_batch_item_failures=True,
        retry=RetryPolicy(3),
        destination=destination,
    ).process(batch, threading.Event())
    assert invoker.sequences() == [s, s[2:], s[2:], s[2:]]
    assert commits == [s[1], s[3]]
    ((record, _context),) = destination.sent
    info = record["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        s[2],
        s[3],
        2,
    )
    assert record["requestContext"]["approximateInvokeCount"] == 4
    # The function did not error: it reported failures, so functionError is null (as on AWS).
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": None,
    }


@pytest.mark.parametrize(
    "payload",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"foo": "1"}]},
        "oops",
    ],
)
def test_invalid_failure_reports_retry_the_whole_batch(
    streams: FakeStreamsClient, payload: Any
) -> None:
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 3)
    invoker = ScriptedInvoker(lambda records, n: Outcome(payload=payload) if n == 1 else Outcome())
    commits: list[str] = []
    make_processor(arn, invoker, commits, report_batch_item_failures=True).process(
        batch, threading.Event()
    )
    assert invoker.sequences() == [batch.sequence_numbers] * 2
    assert commits == [batch.sequence_numbers[-1]]


def test_filtered_records_move_the_checkpoint_and_are_never_invoked(
    streams: FakeStreamsClient,
) -> None:
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 6, filtered={0, 3, 5})
    s = batch.sequence_numbers
    assert [r["dynamodb"]["SequenceNumber"] for r in batch.records] == seqs(batch, 1, 2, 4)
    invoker = ScriptedInvoker(lambda records, n: failures(s[4]) if n == 1 else Outcome())
    commits: list[str] = []
    make_processor(arn, invoker, commits, report_batch_item_failures=True).process(
        batch, threading.Event()
    )
    assert invoker.sequences() == [seqs(batch, 1, 2, 4), seqs(batch, 4)]
    # Resume at record 4: records 0..3 are done, including the filtered record 3.
    assert commits == [s[3], s[5]]


def test_a_fully_filtered_batch_is_checkpointed_without_an_invoke(
    streams: FakeStreamsClient,
) -> None:
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 3, filtered={0, 1, 2})
    invoker = ScriptedInvoker(lambda records, n: Outcome())
    commits: list[str] = []
    make_processor(arn, invoker, commits).process(batch, threading.Event())
    assert invoker.events == []
    assert commits == [batch.sequence_numbers[-1]]


# -- delivery, bisect, record age -----------------------------------------------------------


def test_the_checkpoint_waits_for_the_failure_record_to_be_delivered(
    streams: FakeStreamsClient,
) -> None:
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 2)
    destination = RecordingDestination(fail_times=2)
    commits: list[str] = []
    stats = Stats()
    make_processor(
        arn,
        ScriptedInvoker(lambda r, n: error()),
        commits,
        stats,
        retry=RetryPolicy(0),
        destination=destination,
    ).process(batch, threading.Event())
    assert destination.attempts == 3
    assert len(destination.sent) == 1
    assert commits == [batch.sequence_numbers[-1]]
    assert any(e and "could not deliver" in e for e in stats.errors)


def test_stopping_while_delivery_fails_leaves_the_checkpoint_alone(
    streams: FakeStreamsClient,
) -> None:
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 2)
    stop = threading.Event()

    class Unreachable(RecordingDestination):
        def send(self, record: Mapping[str, Any], context: FailureContext) -> None:
            stop.set()
            raise ConnectionError("down")

    commits: list[str] = []
    outcome = make_processor(
        arn,
        ScriptedInvoker(lambda r, n: error()),
        commits,
        retry=RetryPolicy(0),
        destination=Unreachable(),
    ).process(batch, stop)
    assert outcome is BatchOutcome.ABANDONED
    assert commits == []


def test_bisect_isolates_a_poison_record_without_consuming_retries(
    streams: FakeStreamsClient,
) -> None:
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 4)
    s = batch.sequence_numbers
    poison = s[2]
    invoker = ScriptedInvoker(
        lambda records, n: (
            error()
            if any(r["dynamodb"]["SequenceNumber"] == poison for r in records)
            else Outcome()
        )
    )
    destination = RecordingDestination()
    commits: list[str] = []
    make_processor(
        arn,
        invoker,
        commits,
        retry=RetryPolicy(0),
        bisect=BisectPolicy(True),
        destination=destination,
    ).process(batch, threading.Event())
    assert invoker.sequences() == [s, s[:2], s[2:], [s[2]], [s[3]]]
    ((record, _),) = destination.sent
    assert record["DDBStreamBatchInfo"]["startSequenceNumber"] == poison
    assert record["DDBStreamBatchInfo"]["batchSize"] == 1
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert commits == [s[1], s[2], s[3]]


def test_records_older_than_the_maximum_age_go_to_the_destination_uninvoked(
    streams: FakeStreamsClient,
) -> None:
    arn = streams.create_stream()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=600)
    streams.put(arn, "old1", new_image={}, created=old)
    streams.put(arn, "old2", new_image={}, created=old)
    streams.put(arn, "new", new_image={})
    reader = ShardReader(streams, arn, streams.shard_ids(arn)[0], StartPosition("TRIM_HORIZON"))
    batch = BatchPoller(
        reader, batch_size=10, batching_window_s=0, convert=LambdaRecordConverter(arn)
    ).next_batch(threading.Event())
    assert batch is not None
    s = batch.sequence_numbers
    invoker = ScriptedInvoker(lambda r, n: Outcome())
    destination = RecordingDestination()
    commits: list[str] = []
    make_processor(
        arn, invoker, commits, record_age=RecordAgePolicy(60), destination=destination
    ).process(batch, threading.Event())
    assert invoker.sequences() == [[s[2]]]
    ((record, _),) = destination.sent
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert record["DDBStreamBatchInfo"]["batchSize"] == 2
    assert commits == [s[1], s[2]]


def test_records_that_age_out_mid_retry_stop_being_retried(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 2)
    now = [dt.datetime.now(dt.UTC).timestamp()]

    def respond(records: list[dict[str, Any]], n: int) -> Outcome:
        now[0] += 40  # each failed invoke "takes" 40 s
        return error()

    invoker = ScriptedInvoker(respond)
    destination = RecordingDestination()
    make_processor(
        arn,
        invoker,
        [],
        record_age=RecordAgePolicy(60),
        destination=destination,
        clock=lambda: now[0],
    ).process(batch, threading.Event())
    assert len(invoker.events) == 2  # at 80 s the records are over 60 s old
    ((record, _),) = destination.sent
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 2


def test_retry_delay_grows_and_is_capped() -> None:
    delay = RetryDelay(initial=0.1, maximum=0.5)
    assert [delay.before_retry(n) for n in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.5, 0.5]


# -- the poller --------------------------------------------------------------------------------


def poller_for(streams: FakeStreamsClient, arn: str, **options: Any) -> BatchPoller:
    reader = ShardReader(
        streams, arn, streams.shard_ids(arn)[0], options.pop("start", StartPosition("TRIM_HORIZON"))
    )
    options.setdefault("batching_window_s", 0)
    options.setdefault("backoff", IdleBackoff(min_delay=0.001, max_delay=0.005))
    return BatchPoller(reader, convert=LambdaRecordConverter(arn), **options)


def test_batches_close_at_batch_size(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    for i in range(7):
        streams.put(arn, f"k{i}", new_image={})
    poller = poller_for(streams, arn, batch_size=3)
    sizes = [len(poller.next_batch(threading.Event()).records) for _ in range(3)]  # type: ignore[union-attr]
    assert sizes == [3, 3, 1]
    assert poller.counters.polled == 7


def test_batches_close_at_the_payload_limit(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    for i in range(6):
        streams.put(arn, f"k{i}", new_image={"pad": {"S": "x" * 1000}})
    poller = poller_for(streams, arn, batch_size=100, max_payload_bytes=3000)
    batches = [poller.next_batch(threading.Event()) for _ in range(3)]
    assert [len(b.records) for b in batches] == [2, 2, 2]  # type: ignore[union-attr]
    assert all(b.payload_bytes <= 3000 for b in batches)  # type: ignore[union-attr]


def test_the_batching_window_gathers_records_until_it_elapses(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    streams.put(arn, "first", new_image={})
    clock = [0.0]
    poller = poller_for(streams, arn, batch_size=10, batching_window_s=5, clock=lambda: clock[0])
    stop = threading.Event()
    reads = 0
    original = poller.reader.read

    def read(limit: int) -> Any:
        nonlocal reads
        reads += 1
        if reads == 2:
            streams.put(arn, "second", new_image={})
        clock[0] += 1.0
        return original(limit)

    poller.reader.read = read  # type: ignore[method-assign]
    batch = poller.next_batch(stop)
    assert batch is not None
    assert len(batch.records) == 2
    assert clock[0] >= 5


def test_the_batching_window_does_not_wait_for_a_full_batch(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    for i in range(3):
        streams.put(arn, f"k{i}", new_image={})
    poller = poller_for(streams, arn, batch_size=3, batching_window_s=300)
    batch = poller.next_batch(threading.Event())
    assert batch is not None and len(batch.records) == 3


def test_idle_polling_backs_off_and_stop_ends_the_wait(streams: FakeStreamsClient) -> None:
    backoff = IdleBackoff(min_delay=0.01, max_delay=0.04)
    assert [backoff.next_delay() for _ in range(5)] == [0.01, 0.02, 0.04, 0.04, 0.04]
    backoff.reset()
    assert backoff.next_delay() == 0.01
    arn = streams.create_stream()
    poller = poller_for(streams, arn, batch_size=10)
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    assert poller.next_batch(stop) is None
    calls = streams.calls["get_records"]
    assert 3 <= calls <= 40, calls  # backed off, not a busy loop


def test_latest_skips_existing_records(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    streams.put(arn, "before", new_image={})
    poller = poller_for(streams, arn, batch_size=10, start=StartPosition("LATEST"))
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    assert poller.next_batch(stop) is None
    streams.put(arn, "after", new_image={})
    batch = poller.next_batch(threading.Event())
    assert batch is not None
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in batch.records] == ["after"]


# -- the stream reader ---------------------------------------------------------------------------


def test_reader_resumes_after_a_checkpoint(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    sequences = [streams.put(arn, f"k{i}", new_image={}) for i in range(4)]
    reader = ShardReader(streams, arn, streams.shard_ids(arn)[0], StartPosition.after(sequences[1]))
    assert [r["dynamodb"]["SequenceNumber"] for r in reader.read(10).records] == sequences[2:]


def test_reader_reacquires_an_expired_iterator_after_the_last_record_read(
    streams: FakeStreamsClient,
) -> None:
    arn = streams.create_stream()
    sequences = [streams.put(arn, f"k{i}", new_image={}) for i in range(4)]
    reader = ShardReader(streams, arn, streams.shard_ids(arn)[0], StartPosition("TRIM_HORIZON"))
    assert len(reader.read(2).records) == 2
    streams.expire_iterators()
    assert [r["dynamodb"]["SequenceNumber"] for r in reader.read(10).records] == sequences[2:]
    assert streams.calls["get_shard_iterator"] == 2


def test_reader_reports_a_gap_after_trimming(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    shard = streams.shard_ids(arn)[0]
    sequences = [streams.put(arn, f"k{i}", new_image={}) for i in range(5)]
    reader = ShardReader(streams, arn, shard, StartPosition.after(sequences[0]))
    streams.trim(arn, shard, keep_from=sequences[3])
    result = reader.read(10)
    assert result.gap
    assert [r["dynamodb"]["SequenceNumber"] for r in result.records] == sequences[3:]


def test_reader_ends_at_the_end_of_a_closed_shard(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream()
    parent = streams.shard_ids(arn)[0]
    streams.put(arn, "k", new_image={})
    streams.split(arn, parent)
    reader = ShardReader(streams, arn, parent, StartPosition("TRIM_HORIZON"))
    result = reader.read(10)
    assert len(result.records) == 1
    assert result.shard_ended and reader.ended


def test_describe_stream_pages_through_shards_and_keeps_lineage(streams: FakeStreamsClient) -> None:
    streams.describe_page_size = 1
    arn = streams.create_stream()
    parent = streams.shard_ids(arn)[0]
    left, right = streams.split(arn, parent)
    description = describe_stream(streams, arn)
    assert [s.shard_id for s in description.shards] == [parent, left, right]
    assert description.shards[0].is_closed
    assert [s.parent_shard_id for s in description.shards] == [None, parent, parent]
    assert streams.calls["describe_stream"] == 3


def test_a_missing_or_recreated_stream_is_not_found(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream("orders", label="2024-01-01T00:00:00.000")
    stale = arn.replace("2024-01-01T00:00:00.000", "2023-01-01T00:00:00.000")
    streams._streams[stale] = streams._streams[arn]  # same table, older stream label in the ARN
    with pytest.raises(StreamNotFoundError, match=f"Stream not found: {stale}"):
        describe_stream(streams, stale)
    streams.delete(arn)
    with pytest.raises(StreamNotFoundError) as info:
        describe_stream(streams, arn)
    assert str(info.value) == f"Stream not found: {arn}"


# -- a whole mapping on the stream double -----------------------------------------------------------


def test_a_mapping_reads_a_parent_shard_to_its_end_before_its_children(
    tmp_path: Path, streams: FakeStreamsClient
) -> None:
    arn = streams.create_stream()
    parent = streams.shard_ids(arn)[0]
    for i in range(3):
        streams.put(arn, f"p{i}", new_image={})
    left, right = streams.split(arn, parent)
    streams.put(arn, "left", new_image={}, shard_id=left)
    streams.put(arn, "right", new_image={}, shard_id=right)
    invoker = ScriptedInvoker(lambda records, n: Outcome())
    checkpoints = CheckpointStore(tmp_path)
    settings = WorkerSettings(
        streams_client=streams,
        client_for=lambda service: None,
        checkpoints=checkpoints,
        invoker_factory=lambda function_arn, *, max_concurrency: invoker,
        state_dir=tmp_path,
        refresh_interval=0.05,
        idle_backoff=lambda: IdleBackoff(min_delay=0.001, max_delay=0.01),
    )
    config = MappingConfig(
        uuid="m-1",
        function_arn=FUNCTION_ARN,
        event_source_arn=arn,
        batch_size=10,
        starting_position="TRIM_HORIZON",
    )
    stats = MappingStats("m-1")
    worker = MappingWorker(config, settings, stats)
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while stats.snapshot()["succeeded"] < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.stop()
    keys = [[r["dynamodb"]["Keys"]["pk"]["S"] for r in event] for event in invoker.events]
    assert keys[0] == ["p0", "p1", "p2"]
    assert sorted(keys[1:]) == [["left"], ["right"]]
    assert checkpoints.is_shard_finished(
        "m-1", arn, parent, stream_label=describe_stream(streams, arn).stream_label
    )
    assert {c.shard_id for c in checkpoints.all()} == {parent, left, right}
    assert stats.snapshot()["state"] == "polling"


def test_a_mapping_survives_throttling_and_an_expired_iterator(
    tmp_path: Path, streams: FakeStreamsClient
) -> None:
    arn = streams.create_stream()
    invoker = ScriptedInvoker(lambda records, n: Outcome())
    settings = WorkerSettings(
        streams_client=streams,
        client_for=lambda service: None,
        checkpoints=CheckpointStore(tmp_path),
        invoker_factory=lambda function_arn, *, max_concurrency: invoker,
        state_dir=tmp_path,
        refresh_interval=0.05,
        idle_backoff=lambda: IdleBackoff(min_delay=0.001, max_delay=0.01),
    )
    config = MappingConfig(
        uuid="m-2",
        function_arn=FUNCTION_ARN,
        event_source_arn=arn,
        batch_size=1,
        starting_position="TRIM_HORIZON",
    )
    stats = MappingStats("m-2")
    worker = MappingWorker(config, settings, stats)
    streams.put(arn, "a", new_image={})
    worker.start()
    try:
        deadline = time.monotonic() + 10
        while stats.snapshot()["succeeded"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        streams.expire_iterators()
        streams.fail_next("get_records", "ThrottlingException", times=2)
        streams.put(arn, "b", new_image={})
        while stats.snapshot()["succeeded"] < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.stop()
    assert [[r["dynamodb"]["Keys"]["pk"]["S"] for r in event] for event in invoker.events] == [
        ["a"],
        ["b"],
    ]
    assert "ThrottlingException" in (stats.snapshot()["last_error"] or "")


class FakeLambda:
    """ListEventSourceMappings in two pages, as an endpoint that does not validate might store them."""

    def __init__(self, mappings: list[dict[str, Any]]) -> None:
        self.mappings = mappings

    def list_event_source_mappings(self, Marker: str | None = None) -> dict[str, Any]:
        start = int(Marker or 0)
        page: dict[str, Any] = {"EventSourceMappings": self.mappings[start : start + 2]}
        if start + 2 < len(self.mappings):
            page["NextMarker"] = str(start + 2)
        return page

    def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
        return {"CodeSha256": "abc", "LastModified": "2024-01-01"}


def test_the_runner_reports_invalid_mappings_and_ignores_other_sources(
    tmp_path: Path, streams: FakeStreamsClient
) -> None:
    arn = streams.create_stream()
    base = {
        "FunctionArn": FUNCTION_ARN,
        "EventSourceArn": arn,
        "StartingPosition": "TRIM_HORIZON",
        "State": "Enabled",
    }
    lambda_client = FakeLambda(
        [
            {**base, "UUID": "too-big", "BatchSize": 20000},
            {**base, "UUID": "off", "State": "Disabled"},
            {**base, "UUID": "queue", "EventSourceArn": "arn:aws:sqs:us-east-1:123456789012:q"},
        ]
    )
    clients = {"lambda": lambda_client, "dynamodbstreams": streams}
    runner = Runner("http://unused", tmp_path, client_factory=clients.__getitem__)
    try:
        runner.reconcile()
        stats = runner.stats()
        assert set(stats) == {"too-big", "off"}
        assert stats["too-big"]["state"] == "invalid"
        assert stats["too-big"]["last_error"] == (
            "mapping not run: 1 validation error detected: Value '20000' at 'batchSize' failed to "
            "satisfy constraint: Member must have value less than or equal to 10000"
        )
        assert stats["off"]["state"] == "disabled"
        lambda_client.mappings = lambda_client.mappings[1:]
        runner.reconcile()
        assert runner.stats()["too-big"]["state"] == "deleted"
    finally:
        runner.stop()


class ClosableInvoker(ScriptedInvoker):
    def __init__(self) -> None:
        super().__init__(lambda records, n: Outcome())
        self.closed = False

    def close(self) -> None:
        self.closed = True


def test_a_vanished_stream_stops_shards_and_function_workers_until_it_is_back(
    tmp_path: Path, streams: FakeStreamsClient
) -> None:
    arn = streams.create_stream()
    invokers: list[ClosableInvoker] = []

    def load(function_arn: str, *, max_concurrency: int) -> ClosableInvoker:
        invokers.append(ClosableInvoker())
        return invokers[-1]

    settings = WorkerSettings(
        streams_client=streams,
        client_for=lambda service: None,
        checkpoints=CheckpointStore(tmp_path),
        invoker_factory=load,
        state_dir=tmp_path,
        refresh_interval=0.02,
        idle_backoff=lambda: IdleBackoff(min_delay=0.001, max_delay=0.01),
    )
    config = MappingConfig(
        uuid="m-3",
        function_arn=FUNCTION_ARN,
        event_source_arn=arn,
        starting_position="TRIM_HORIZON",
    )
    stats = MappingStats("m-3")
    worker = MappingWorker(config, settings, stats)
    streams.put(arn, "a", new_image={})
    worker.start()

    def wait(condition: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 10
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert condition()

    try:
        wait(lambda: stats.snapshot()["succeeded"] == 1)
        streams.delete(arn)
        wait(lambda: stats.snapshot()["shards_running"] == 0 and invokers[0].closed)
        snapshot = stats.snapshot()
        assert (snapshot["state"], snapshot["last_error"]) == ("error", f"Stream not found: {arn}")
        streams._streams[arn].deleted = False  # it was only briefly unreadable
        streams.put(arn, "b", new_image={})
        wait(lambda: stats.snapshot()["succeeded"] == 2)
    finally:
        worker.stop()
    assert len(invokers) == 2  # the function was loaded again for the returned stream
    assert invokers[1].closed  # and shut down when the mapping stopped
    assert [[r["dynamodb"]["Keys"]["pk"]["S"] for r in e] for e in invokers[1].events] == [["b"]]
