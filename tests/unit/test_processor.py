"""The processor: exact invoke counts, the checkpoint rules of every ReportBatchItemFailures
case, bisect, record age, retries and the on-failure record, driven by a scripted invoker."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from typing import Any

import pytest
from tests.helpers.esm_doubles import (
    FUNCTION_ARN,
    Outcome,
    RecordingDestination,
    ScriptedInvoker,
    Stats,
    error,
    failures,
    make_batch,
    make_processor,
    seqs,
)
from tests.helpers.fake_streams import FakeStreamsClient

from streamkit.local.esm.batcher import BatchPoller
from streamkit.local.esm.destinations import FailureContext
from streamkit.local.esm.intake import RecordIntake
from streamkit.local.esm.processor import (
    BatchOutcome,
    BisectPolicy,
    RecordAgePolicy,
    RetryDelay,
    RetryPolicy,
)
from streamkit.streams.reader import ShardReader, StartPosition

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
    expected = {"invoked": invokes, "failed": invokes, "sent_to_destination": 3}
    if invokes > 1:
        expected["retries"] = invokes - 1
    assert stats.counts == expected


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
    # The rest is a new batch (the checkpoint moved): invoked at once, no retry used.
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


@pytest.mark.parametrize(("max_retries", "alone"), [(0, 1), (1, 2), (3, 4)])
def test_after_a_partial_success_the_rest_is_a_new_batch_with_a_full_retry_budget(
    streams: FakeStreamsClient, max_retries: int, alone: int
) -> None:
    # AWS recorded (MaximumRetryAttempts 3): a record failing alone after its batch partly
    # succeeded is delivered once in the batch, then 1 + MaximumRetryAttempts times alone,
    # and approximateInvokeCount counts only the latter.
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 4)
    s = batch.sequence_numbers
    invoker = ScriptedInvoker(lambda records, n: failures(s[2]))
    destination = RecordingDestination()
    commits: list[str] = []
    stats = Stats()
    make_processor(
        arn,
        invoker,
        commits,
        stats,
        report_batch_item_failures=True,
        retry=RetryPolicy(max_retries),
        destination=destination,
    ).process(batch, threading.Event())
    assert invoker.sequences() == [s] + [s[2:]] * alone
    assert stats.counts.get("retries", 0) == max_retries
    assert commits == [s[1], s[3]]
    ((record, _context),) = destination.sent
    info = record["DDBStreamBatchInfo"]
    # Only the still-failing records are described.
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        s[2],
        s[3],
        2,
    )
    assert record["requestContext"]["approximateInvokeCount"] == alone
    # The function did not error: it reported failures, so functionError is null (as on AWS).
    assert record["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": None,
    }


def test_every_partial_success_renews_the_budget(streams: FakeStreamsClient) -> None:
    # Each response reports the next record failed: the checkpoint moves by one record per
    # invoke, so with no retries allowed at all every record still gets its invoke.
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 4)
    s = batch.sequence_numbers
    invoker = ScriptedInvoker(lambda records, n: failures(s[n]) if n < 4 else Outcome())
    commits: list[str] = []
    make_processor(
        arn, invoker, commits, report_batch_item_failures=True, retry=RetryPolicy(0)
    ).process(batch, threading.Event())
    assert invoker.sequences() == [s, s[1:], s[2:], s[3:]]
    assert commits == [s[0], s[1], s[2], s[3]]


def test_a_new_batch_after_a_partial_success_still_ages_out(streams: FakeStreamsClient) -> None:
    # MaximumRecordAgeInSeconds counts from ApproximateCreationDateTime: a new retry budget
    # does not make a record younger.
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 3)
    s = batch.sequence_numbers
    now = [dt.datetime.now(dt.UTC).timestamp()]

    def respond(records: list[dict[str, Any]], n: int) -> Outcome:
        now[0] += 40  # each invoke "takes" 40 s
        return failures(s[1])

    invoker = ScriptedInvoker(respond)
    destination = RecordingDestination()
    commits: list[str] = []
    make_processor(
        arn,
        invoker,
        commits,
        report_batch_item_failures=True,
        retry=RetryPolicy(-1),
        record_age=RecordAgePolicy(60),
        destination=destination,
        clock=lambda: now[0],
    ).process(batch, threading.Event())
    assert invoker.sequences() == [s, s[1:]]  # at 80 s the rest is over 60 s old
    ((record, _),) = destination.sent
    assert record["requestContext"]["condition"] == "RecordAgeExceeded"
    assert record["requestContext"]["approximateInvokeCount"] == 1  # the new batch's one
    assert record["DDBStreamBatchInfo"]["batchSize"] == 2
    assert commits == [s[0], s[2]]


def test_bisect_after_a_partial_success_counts_the_new_batch_only(
    streams: FakeStreamsClient,
) -> None:
    arn = streams.create_stream()
    batch = make_batch(streams, arn, 6)
    s = batch.sequence_numbers
    poison = s[3]

    def respond(records: list[dict[str, Any]], n: int) -> Outcome:
        seen = [r["dynamodb"]["SequenceNumber"] for r in records]
        return failures(poison) if poison in seen else Outcome()

    invoker = ScriptedInvoker(respond)
    destination = RecordingDestination()
    stats = Stats()
    make_processor(
        arn,
        invoker,
        [],
        stats,
        report_batch_item_failures=True,
        retry=RetryPolicy(0),
        bisect=BisectPolicy(True),
        destination=destination,
    ).process(batch, threading.Event())
    # Split at the returned record (a new batch), then halves of the new batch.
    assert invoker.sequences() == [s, s[3:], [s[3]], s[4:]]
    assert stats.counts["bisects"] == 2 and "retries" not in stats.counts
    ((record, _),) = destination.sent
    assert record["requestContext"]["approximateInvokeCount"] == 2  # s[3:] and [s[3]]


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
    stats = Stats()
    make_processor(
        arn,
        invoker,
        commits,
        stats,
        retry=RetryPolicy(0),
        bisect=BisectPolicy(True),
        destination=destination,
    ).process(batch, threading.Event())
    assert invoker.sequences() == [s, s[:2], s[2:], [s[2]], [s[3]]]
    assert stats.counts["bisects"] == 2 and "retries" not in stats.counts
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
        reader, batch_size=10, batching_window_s=0, intake=RecordIntake(arn)
    ).next_batch(threading.Event())
    assert batch is not None
    s = batch.sequence_numbers
    invoker = ScriptedInvoker(lambda r, n: Outcome())
    destination = RecordingDestination()
    commits: list[str] = []
    stats = Stats()
    make_processor(
        arn, invoker, commits, stats, record_age=RecordAgePolicy(60), destination=destination
    ).process(batch, threading.Event())
    assert invoker.sequences() == [[s[2]]]
    assert stats.counts["record_age_expired"] == 2
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
    assert [delay.delay(n) for n in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.5, 0.5]
