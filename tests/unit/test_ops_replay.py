"""Replay's parts over the stream double and a recording invoker: reading exactly the failed
range, records that left the stream, the mapping's filter, judging the invoke; parsing failure
records; and the Lambda Invoke API invoker against botocore's Stubber."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from tests.helpers.fake_streams import FakeStreamsClient

from streamkit.exceptions import FunctionCodeError, RecordsUnavailableError
from streamkit.ops.failure_records import FailureRecord, parse_failure_record
from streamkit.ops.invokers import LambdaApiInvoker
from streamkit.ops.replay import MappingSettings, Replayer, ReplayStatus, read_batch
from streamkit.streams.envelope import LambdaRecordConverter

FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:consumer"


def failure_body(stream_arn: str, shard_id: str, start: str, end: str, size: int) -> str:
    return json.dumps(
        {
            "requestContext": {
                "requestId": "r-1",
                "functionArn": FUNCTION,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": 4,
            },
            "responseContext": {
                "statusCode": 200,
                "executedVersion": "$LATEST",
                "functionError": "Unhandled",
            },
            "version": "1.0",
            "timestamp": "2024-05-01T12:00:03.123Z",
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": start,
                "endSequenceNumber": end,
                "approximateArrivalOfFirstRecord": "2024-05-01T12:00:00Z",
                "approximateArrivalOfLastRecord": "2024-05-01T12:00:01Z",
                "batchSize": size,
                "streamArn": stream_arn,
            },
        }
    )


@dataclass
class Stream:
    client: FakeStreamsClient
    arn: str
    shard_id: str
    sequences: dict[str, str]  # key -> sequence number

    def failure(self, first: str, last: str, size: int | None = None) -> FailureRecord:
        keys = list(self.sequences)
        count = keys.index(last) - keys.index(first) + 1
        body = failure_body(
            self.arn, self.shard_id, self.sequences[first], self.sequences[last], size or count
        )
        parsed = parse_failure_record(body)
        assert parsed is not None
        return parsed


@pytest.fixture
def stream() -> Stream:
    client = FakeStreamsClient()
    arn = client.create_stream()
    (shard_id,) = client.shard_ids(arn)
    sequences = {
        key: client.put(arn, key, new_image={"status": {"S": status}})
        for key, status in [("a", "NEW"), ("b", "PAID"), ("c", "NEW"), ("d", "PAID"), ("e", "NEW")]
    }
    return Stream(client, arn, shard_id, sequences)


def _keys(records: list[dict[str, Any]]) -> list[str]:
    return [r["dynamodb"]["Keys"]["pk"]["S"] for r in records]


def test_read_batch_returns_exactly_the_described_range(stream: Stream) -> None:
    records = read_batch(stream.client, stream.failure("b", "d"))
    assert _keys(records) == ["b", "c", "d"]
    assert stream.client.iterator_requests[-1] == {
        "StreamArn": stream.arn,
        "ShardId": stream.shard_id,
        "ShardIteratorType": "AT_SEQUENCE_NUMBER",
        "SequenceNumber": stream.sequences["b"],
    }


def test_trimmed_records_are_reported_as_gone(stream: Stream) -> None:
    stream.client.trim(stream.arn, stream.shard_id, keep_from=stream.sequences["c"])
    with pytest.raises(RecordsUnavailableError, match="24-hour retention") as caught:
        read_batch(stream.client, stream.failure("a", "d"))
    assert caught.value.shard_id == stream.shard_id
    assert caught.value.start_sequence == stream.sequences["a"]


def test_a_deleted_stream_is_reported_as_gone(stream: Stream) -> None:
    stream.client.delete(stream.arn)
    with pytest.raises(RecordsUnavailableError, match="stream no longer exists"):
        read_batch(stream.client, stream.failure("a", "b"))


def test_a_shard_that_is_no_longer_listed_is_reported_as_gone(stream: Stream) -> None:
    failure = stream.failure("a", "b")
    body = json.loads(json.dumps(failure.raw))
    body["DDBStreamBatchInfo"]["shardId"] = "shardId-00000000000000000099-deadbeef"
    moved = parse_failure_record(body)
    assert moved is not None
    with pytest.raises(RecordsUnavailableError, match="no longer in the stream"):
        read_batch(stream.client, moved)


@dataclass
class Outcome:
    ok: bool = True
    payload: Any = None
    function_error: str | None = None
    request_id: str = "req-1"
    status_code: int = 200
    timed_out: bool = False
    init_error: bool = False


@dataclass
class RecordingInvoker:
    outcome: Outcome | Exception = field(default_factory=Outcome)
    calls: list[tuple[str, Mapping[str, Any]]] = field(default_factory=list)

    def invoke(self, function: str, event: Mapping[str, Any]) -> Outcome:
        self.calls.append((function, event))
        if isinstance(self.outcome, Exception):
            raise self.outcome
        return self.outcome

    def close(self) -> None:
        pass


def replayer(
    stream: Stream, invoker: RecordingInvoker, mapping: MappingSettings | None = None, **kw: Any
) -> Replayer:
    return Replayer(stream.client, None, invoker, find_mapping=lambda f, s: mapping, **kw)


def test_replay_invokes_the_function_with_the_runners_event(stream: Stream) -> None:
    invoker = RecordingInvoker()
    mapping = MappingSettings("uuid-1")
    outcome = replayer(stream, invoker, mapping).replay(stream.failure("b", "d"))
    assert outcome.status is ReplayStatus.REPLAYED
    assert outcome.request_id == "req-1"
    assert outcome.notes == []
    convert = LambdaRecordConverter(stream.arn)
    expected = [convert(r) for r in read_batch(stream.client, stream.failure("b", "d"))]
    assert invoker.calls == [(FUNCTION, {"Records": expected})]


def test_replay_to_another_function(stream: Stream) -> None:
    invoker = RecordingInvoker()
    outcome = replayer(stream, invoker, function_override="fixed").replay(stream.failure("a", "a"))
    assert outcome.status is ReplayStatus.REPLAYED and outcome.function == "fixed"
    assert invoker.calls[0][0] == "fixed"
    assert outcome.notes == ["its mapping no longer exists: FilterCriteria not applied"]


def test_replay_applies_the_mappings_filter(stream: Stream) -> None:
    invoker = RecordingInvoker()
    paid_only = MappingSettings(
        "uuid-1", filter_patterns=('{"dynamodb":{"NewImage":{"status":{"S":["PAID"]}}}}',)
    )
    # The runner sent only b and d (c was filtered out): the record says 2 records.
    outcome = replayer(stream, invoker, paid_only).replay(stream.failure("b", "d", size=2))
    assert outcome.status is ReplayStatus.REPLAYED
    assert _keys(list(invoker.calls[0][1]["Records"])) == ["b", "d"]
    assert outcome.plan is not None and outcome.plan.read == 3
    assert outcome.notes == []


def test_replay_notes_a_record_count_that_differs_from_the_failure_record(stream: Stream) -> None:
    outcome = replayer(stream, RecordingInvoker(), MappingSettings("u")).replay(
        stream.failure("b", "d", size=5)
    )
    assert outcome.notes == ["3 record(s) found, the failure record says 5"]


def test_a_batch_the_filter_drops_entirely_is_not_invoked(stream: Stream) -> None:
    invoker = RecordingInvoker()
    nothing = MappingSettings("u", filter_patterns=('{"eventName":["REMOVE"]}',))
    outcome = replayer(stream, invoker, nothing).replay(stream.failure("a", "b"))
    assert outcome.status is ReplayStatus.REPLAYED
    assert outcome.detail == "no record passes the mapping's filter"
    assert invoker.calls == []
    planned = replayer(stream, invoker, nothing).replay(stream.failure("a", "b"), dry_run=True)
    assert planned.status is ReplayStatus.DRY_RUN
    assert planned.detail == "no record passes the mapping's filter"


@pytest.mark.parametrize(
    ("outcome", "detail"),
    [
        (
            Outcome(ok=False, function_error="Unhandled", payload={"errorType": "KeyError", "errorMessage": "'x'"}),
            "KeyError: 'x'",
        ),
        (
            Outcome(payload={"batchItemFailures": [{"itemIdentifier": "7"}]}),
            "the function reported 1 batchItemFailures: [{'itemIdentifier': '7'}]",
        ),
        (
            Outcome(payload=b'{"batchItemFailures": [{"itemIdentifier": ""}]}'),
            "the function reported 1 batchItemFailures: [{'itemIdentifier': ''}]",
        ),
    ],
)  # fmt: skip
def test_function_errors_and_item_failures_fail_the_replay(
    stream: Stream, outcome: Outcome, detail: str
) -> None:
    result = replayer(stream, RecordingInvoker(outcome)).replay(stream.failure("a", "b"))
    assert result.status is ReplayStatus.FAILED
    assert result.detail == detail
    assert not result.succeeded


@pytest.mark.parametrize("payload", [None, {}, {"batchItemFailures": []}, "ok", b""])
def test_a_response_without_item_failures_is_a_success(stream: Stream, payload: Any) -> None:
    result = replayer(stream, RecordingInvoker(Outcome(payload=payload))).replay(
        stream.failure("a", "a")
    )
    assert result.status is ReplayStatus.REPLAYED


def test_code_that_cannot_be_loaded_fails_the_replay(stream: Stream) -> None:
    invoker = RecordingInvoker(FunctionCodeError("consumer", None, "no handler module"))
    result = replayer(stream, invoker).replay(stream.failure("a", "a"))
    assert result.status is ReplayStatus.FAILED
    assert "no handler module" in result.detail


def test_gone_records_are_not_invoked(stream: Stream) -> None:
    stream.client.trim(stream.arn, stream.shard_id, keep_from=stream.sequences["e"])
    invoker = RecordingInvoker()
    result = replayer(stream, invoker).replay(stream.failure("a", "b"))
    assert result.status is ReplayStatus.GONE
    assert "24-hour retention" in result.detail
    assert invoker.calls == []


def test_tumbling_window_failures_are_not_replayed(stream: Stream) -> None:
    invoker = RecordingInvoker()
    windowed = MappingSettings("u", tumbling_window_s=60)
    result = replayer(stream, invoker, windowed).replay(stream.failure("a", "b"))
    assert result.status is ReplayStatus.SKIPPED
    assert invoker.calls == []


def test_dry_run_plans_without_invoking(stream: Stream) -> None:
    invoker = RecordingInvoker()
    result = replayer(stream, invoker).replay(stream.failure("a", "c"), dry_run=True)
    assert result.status is ReplayStatus.DRY_RUN
    assert result.plan is not None and _keys(result.plan.records) == ["a", "b", "c"]
    assert invoker.calls == []


# -- failure records ----------------------------------------------------------------------------


def test_parse_failure_record_reads_every_field() -> None:
    body = failure_body(
        "arn:aws:dynamodb:us-east-1:1:table/orders/stream/L", "shard-1", "5", "9", 3
    )
    record = parse_failure_record(body)
    assert record is not None
    assert record.raw == json.loads(body)
    assert (record.condition, record.function_arn, record.request_id) == (
        "RetryAttemptsExhausted",
        FUNCTION,
        "r-1",
    )
    assert (record.shard_id, record.start_sequence_number, record.end_sequence_number) == (
        "shard-1",
        "5",
        "9",
    )
    assert (record.batch_size, record.approximate_invoke_count) == (3, 4)
    assert record.table_name == "orders"
    assert record.summary() == (
        "2024-05-01T12:00:03.123Z  RetryAttemptsExhausted  " + FUNCTION + "  table orders  "
        "shard shard-1  seq 5..9  batch 3  invokes 4"
    )


def test_parse_failure_record_unwraps_an_sns_envelope() -> None:
    body = failure_body("arn:aws:dynamodb:us-east-1:1:table/t/stream/L", "s", "1", "2", 2)
    envelope = json.dumps({"Type": "Notification", "MessageId": "m", "Message": body})
    record = parse_failure_record(envelope)
    assert record is not None and record.raw == json.loads(body)


@pytest.mark.parametrize(
    "body",
    [
        "not json",
        "[]",
        '{"Records": []}',
        '{"requestContext": {}, "DDBStreamBatchInfo": {}}',
        json.dumps(
            {"requestContext": {"functionArn": "f"}, "DDBStreamBatchInfo": {"shardId": "s"}}
        ),
    ],
)
def test_other_messages_are_not_failure_records(body: str) -> None:
    assert parse_failure_record(body) is None


# -- the Invoke API invoker -----------------------------------------------------------------------


def _payload(data: bytes) -> StreamingBody:
    return StreamingBody(io.BytesIO(data), len(data))


def test_lambda_api_invoker_reports_function_errors_and_responses() -> None:
    client = boto3.client(
        "lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    event = {"Records": [{"eventID": "1"}]}
    expected = {
        "FunctionName": "consumer",
        "InvocationType": "RequestResponse",
        "Payload": json.dumps(event).encode(),
    }
    error = b'{"errorType": "RuntimeError", "errorMessage": "boom"}'
    with Stubber(client) as stub:
        stub.add_response(
            "invoke",
            {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": _payload(error)},
            expected,
        )
        stub.add_response(
            "invoke",
            {"StatusCode": 200, "Payload": _payload(b'{"batchItemFailures": []}')},
            expected,
        )
        failed = LambdaApiInvoker(client).invoke("consumer", event)
        succeeded = LambdaApiInvoker(client).invoke("consumer", event)
        stub.assert_no_pending_responses()
    assert (failed.ok, failed.function_error) == (False, "Unhandled")
    assert failed.payload == {"errorType": "RuntimeError", "errorMessage": "boom"}
    assert (succeeded.ok, succeeded.payload) == (True, {"batchItemFailures": []})
