"""The event source mapping runner end to end: real tables, function zips and mappings made
through boto3 as a user would, executed by ``streamkit.local.esm.runner.Runner`` (in-process) or
``streamkit run`` (a subprocess), observed through what the function does: it sends every
event it receives to an SQS "recorder" queue.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from streamkit.local.emulator.process import spawn_emulator
from streamkit.local.esm.checkpoints import CheckpointStore
from tests.helpers import AwsClients, create_function
from tests.helpers.kill_runs import streamkit_run
from tests.helpers.runner_scenario import HANDLER, Scenario
from tests.helpers.streams import create_stream_table

# -- the event envelope ----------------------------------------------------------------------


def test_the_function_gets_the_lambda_event_envelope(scenario: Callable[..., Scenario]) -> None:
    s = scenario()
    uuid = s.map(BatchSize=10, MaximumBatchingWindowInSeconds=1)
    s.put("a", blob={"B": b"\x00\x01\xfe"}, qty={"N": "3"}, tags={"SS": ["x"]})
    s.aws.dynamodb.update_item(
        TableName=s.table,
        Key={"pk": {"S": "a"}},
        UpdateExpression="SET qty = :q",
        ExpressionAttributeValues={":q": {"N": "4"}},
    )
    s.aws.dynamodb.delete_item(TableName=s.table, Key={"pk": {"S": "a"}})
    runner = s.runner()
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 3, timeout=20)
    records = [r for invocation in s.invocations(1) for r in invocation.records]
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    for record in records:
        assert list(record) == [
            "eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN",
        ]  # fmt: skip
        assert record["eventSource"] == "aws:dynamodb"
        assert record["awsRegion"] == "us-east-1"
        assert record["eventSourceARN"] == s.stream_arn
        body = record["dynamodb"]
        assert isinstance(body["ApproximateCreationDateTime"], float)
        assert abs(body["ApproximateCreationDateTime"] - time.time()) < 120
        assert body["Keys"] == {"pk": {"S": "a"}}
        assert body["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert isinstance(body["SizeBytes"], int)
    insert, modify, remove = (r["dynamodb"] for r in records)
    assert insert["NewImage"]["blob"] == {"B": "AAH+"}  # base64, as Lambda delivers binary
    assert "OldImage" not in insert
    assert (modify["OldImage"]["qty"], modify["NewImage"]["qty"]) == ({"N": "3"}, {"N": "4"})
    assert "NewImage" not in remove and remove["OldImage"]["qty"] == {"N": "4"}
    sequence_numbers = [int(b["SequenceNumber"]) for b in (insert, modify, remove)]
    assert sequence_numbers == sorted(sequence_numbers)


# -- ReportBatchItemFailures -------------------------------------------------------------------


def test_partial_batch_failure_retries_from_the_lowest_failed_record(
    scenario: Callable[..., Scenario],
) -> None:
    s = scenario(MODE="report")
    uuid = s.map(
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    for i in range(5):
        s.put(f"k{i}", **({"fail_times": {"N": "1"}} if i in (2, 4) else {}))
    runner = s.runner()
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 5, timeout=20)
    first, second = s.invocations(2)
    assert first.keys == ["k0", "k1", "k2", "k3", "k4"]
    assert second.keys == ["k2", "k3", "k4"]  # from the lowest failed record on
    s.assert_no_more()
    stats = runner.stats()[uuid]
    assert (stats["invoked"], stats["failed"], stats["succeeded"]) == (2, 1, 5)
    runner.stop()
    checkpoint = CheckpointStore(s.state_dir).all()
    assert [c.sequence_number for c in checkpoint] == [
        first.records[-1]["dynamodb"]["SequenceNumber"]
    ]


@pytest.mark.parametrize("response", [{"batchItemFailures": []}, None, {}])
def test_empty_or_null_failure_reports_are_success(
    scenario: Callable[..., Scenario], response: Any
) -> None:
    s = scenario(MODE="respond", RESPONSE=json.dumps(response))
    uuid = s.map(
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
    )
    s.put("k0")
    s.put("k1")
    runner = s.runner()
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 2, timeout=20)
    assert [i.keys for i in s.invocations(1)] == [["k0", "k1"]]
    s.assert_no_more()
    assert runner.stats()[uuid]["failed"] == 0


@pytest.mark.parametrize(
    "response",
    [{"batchItemFailures": [{"itemIdentifier": ""}]}, {"batchItemFailures": [{"id": "1"}]}],
    ids=["empty-identifier", "wrong-key"],
)
def test_invalid_failure_reports_fail_the_whole_batch(
    scenario: Callable[..., Scenario], response: Any
) -> None:
    s = scenario(MODE="respond", RESPONSE=json.dumps(response))
    dlq_url, dlq_arn = s.queue()
    uuid = s.map(
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
    )
    s.put("k0")
    s.put("k1")
    s.runner()
    (failure,) = s.messages(dlq_url, 1)
    assert [i.keys for i in s.invocations(2)] == [["k0", "k1"], ["k0", "k1"]]
    assert failure["requestContext"]["approximateInvokeCount"] == 2
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 2
    assert failure["responseContext"]["functionError"] is None  # the function did not error
    assert uuid


# -- retries and the on-failure destination ----------------------------------------------------


def test_retries_then_the_on_failure_destination_then_the_next_batch(
    scenario: Callable[..., Scenario],
) -> None:
    s = scenario(MODE="raise_on_poison")
    dlq_url, dlq_arn = s.queue()
    uuid = s.map(
        BatchSize=1,
        MaximumRetryAttempts=2,
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
    )
    s.put("bad", poison={"BOOL": True})
    s.put("good")
    runner = s.runner()
    (failure,) = s.messages(dlq_url, 1)
    invocations = s.invocations(4)
    assert [i.keys for i in invocations] == [["bad"]] * 3 + [["good"]]  # 2 retries = 3 invokes
    bad_record = invocations[0].records[0]
    timestamp = failure.pop("timestamp")
    assert time.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ") and len(timestamp) == 24
    info = failure["DDBStreamBatchInfo"]
    arrival = time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(bad_record["dynamodb"]["ApproximateCreationDateTime"])
    )
    assert failure == {
        "requestContext": {
            "requestId": invocations[2].request_id,
            "functionArn": runner.stats()[uuid]["function_arn"],
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 3,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "DDBStreamBatchInfo": {
            "shardId": info["shardId"],
            "startSequenceNumber": bad_record["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": bad_record["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": arrival,
            "approximateArrivalOfLastRecord": arrival,
            "batchSize": 1,
            "streamArn": s.stream_arn,
        },
    }
    assert info["shardId"].startswith("shardId-")
    runner.wait_until(
        lambda st: st[uuid]["succeeded"] == 1 and st[uuid]["sent_to_destination"] == 1
    )
    stats = runner.stats()[uuid]
    assert (stats["invoked"], stats["failed"]) == (4, 3)
    assert "poison record" in (stats["last_error"] or "")


def test_a_function_timeout_is_a_failed_invoke(scenario: Callable[..., Scenario]) -> None:
    s = scenario(MODE="sleep", SLEEP_S="5", timeout=1)
    dlq_url, dlq_arn = s.queue()
    uuid = s.map(
        BatchSize=5,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
    )
    s.put("slow")
    runner = s.runner()
    (failure,) = s.messages(dlq_url, 1, timeout=30)
    assert [i.keys for i in s.invocations(2)] == [["slow"], ["slow"]]
    assert failure["requestContext"]["approximateInvokeCount"] == 2
    assert failure["responseContext"]["functionError"] == "Unhandled"
    assert "timed out" in (runner.stats()[uuid]["last_error"] or "").lower()


# -- filters, disabled mappings, changes picked up later ------------------------------------------


def test_filter_criteria_drop_records_and_move_the_checkpoint_past_them(
    scenario: Callable[..., Scenario],
) -> None:
    s = scenario()
    pattern = {"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": ["PAID"]}}}}
    uuid = s.map(
        BatchSize=10,
        MaximumBatchingWindowInSeconds=1,
        FilterCriteria={"Filters": [{"Pattern": json.dumps(pattern)}]},
    )
    s.put("o1", status={"S": "PAID"})
    s.put("o2", status={"S": "NEW"})
    s.put("o3", status={"S": "PAID"})
    s.put("o4", status={"S": "CANCELLED"})
    runner = s.runner()
    runner.wait_until(lambda st: st[uuid]["polled"] == 4 and st[uuid]["succeeded"] == 2, timeout=20)
    assert [i.keys for i in s.invocations(1)] == [["o1", "o3"]]
    runner.wait_until(lambda st: st[uuid]["filtered"] == 2)
    runner.stop()
    all_records = s.aws.dynamodbstreams.get_records(
        ShardIterator=s.aws.dynamodbstreams.get_shard_iterator(
            StreamArn=s.stream_arn,
            ShardId=s.aws.dynamodbstreams.describe_stream(StreamArn=s.stream_arn)[
                "StreamDescription"
            ]["Shards"][0]["ShardId"],
            ShardIteratorType="TRIM_HORIZON",
        )["ShardIterator"]
    )["Records"]
    (checkpoint,) = CheckpointStore(s.state_dir).all()
    assert (
        checkpoint.sequence_number == all_records[-1]["dynamodb"]["SequenceNumber"]
    )  # o4, filtered out


def test_a_disabled_mapping_runs_nothing_until_enabled(scenario: Callable[..., Scenario]) -> None:
    s = scenario()
    uuid = s.map(BatchSize=10, Enabled=False)
    s.put("k0")
    runner = s.runner()
    runner.wait_until(lambda st: st[uuid]["state"] == "disabled")
    s.assert_no_more(wait=1.0)
    assert runner.stats()[uuid]["polled"] == 0
    s.aws.lambda_.update_event_source_mapping(UUID=uuid, Enabled=True)
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 1, timeout=20)
    assert [i.keys for i in s.invocations(1)] == [["k0"]]


def test_mappings_created_updated_and_deleted_later_take_effect(
    scenario: Callable[..., Scenario],
) -> None:
    s = scenario()
    runner = s.runner()
    uuid = s.map(
        BatchSize=10,
        FilterCriteria={"Filters": [{"Pattern": json.dumps({"eventName": ["REMOVE"]})}]},
    )
    runner.wait_until(lambda st: st[uuid]["state"] == "polling", timeout=20)
    s.put("created")  # an INSERT: filtered out
    runner.wait_until(lambda st: st[uuid]["filtered"] == 1, timeout=10)
    s.aws.lambda_.update_event_source_mapping(UUID=uuid, FilterCriteria={"Filters": []})
    # A reconcile (the runner's next, or this one) restarts the mapping from its checkpoint;
    # once it returns, no worker with the old filter reads the next record.
    runner.reconcile()
    s.put("updated")
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 1, timeout=20)
    assert [i.keys for i in s.invocations(1)] == [["updated"]]
    s.aws.lambda_.delete_event_source_mapping(UUID=uuid)
    runner.wait_until(lambda st: st[uuid]["state"] == "deleted", timeout=10)
    s.put("deleted")
    s.assert_no_more(wait=1.0)


# -- durability ------------------------------------------------------------------------------------


def test_a_restarted_runner_resumes_where_it_stopped(scenario: Callable[..., Scenario]) -> None:
    s = scenario()
    uuid = s.map(BatchSize=10)
    for i in range(3):
        s.put(f"a{i}")
    first = s.runner()
    first.wait_until(lambda st: st[uuid]["succeeded"] == 3, timeout=20)
    first.stop()
    for i in range(3):
        s.put(f"b{i}")
    second = s.runner()
    second.wait_until(lambda st: st[uuid]["succeeded"] == 3, timeout=20)
    keys = [k for invocation in s.invocations(2) for k in invocation.keys]
    assert sorted(keys) == ["a0", "a1", "a2", "b0", "b1", "b2"]  # none lost, none repeated
    s.assert_no_more()


@pytest.fixture
def private_endpoint(tmp_path: Path) -> Iterator[str]:
    """An emulator of its own (a subprocess), so ``streamkit run`` sees only this test's mapping."""
    with spawn_emulator() as endpoint:
        yield endpoint


def test_kill_9_then_restart_loses_nothing(
    private_endpoint: str, tmp_path: Path, unique_name: Callable[[str], str]
) -> None:
    aws = AwsClients(private_endpoint)
    table = unique_name("kill")
    stream_arn = create_stream_table(aws.dynamodb, table)
    queue = aws.sqs.create_queue(QueueName=unique_name("recorder"))["QueueUrl"]
    function = unique_name("consumer")
    create_function(
        aws.lambda_,
        function,
        {"app.py": HANDLER},
        env={"RECORD_QUEUE": queue, "MODE": "sleep", "SLEEP_S": "0.2"},
    )
    batch_size = 2
    aws.lambda_.create_event_source_mapping(
        FunctionName=function,
        EventSourceArn=stream_arn,
        StartingPosition="TRIM_HORIZON",
        BatchSize=batch_size,
    )
    s = Scenario(
        aws, private_endpoint, table, stream_arn, queue, function, tmp_path / "state", unique_name
    )
    log = tmp_path / "run.log"
    keys = [f"k{i:02d}" for i in range(30)]
    for key in keys[:20]:
        s.put(key)
    runner = streamkit_run(private_endpoint, s.state_dir, log)
    seen = [k for invocation in s.invocations(3, timeout=30) for k in invocation.keys]
    os.kill(runner.pid, signal.SIGKILL)
    runner.wait(timeout=10)
    assert len(seen) >= 6, log.read_text()
    # Whatever was in flight when killed is either done (and recorded) or not checkpointed.
    time.sleep(0.3)
    seen += [k for invocation in s.invocations(10, timeout=0.5) for k in invocation.keys]
    assert len(set(seen)) < 20, "killed too late to test anything"
    for key in keys[20:]:
        s.put(key)
    restarted = streamkit_run(private_endpoint, s.state_dir, log)
    try:
        deadline = time.monotonic() + 60
        while set(keys) - set(seen) and time.monotonic() < deadline:
            seen += [k for invocation in s.invocations(1, timeout=1) for k in invocation.keys]
        assert set(seen) == set(keys), log.read_text()
        duplicates = len(seen) - len(set(seen))
        # At-least-once: only the batch in flight at the kill may run twice.
        assert duplicates <= batch_size, (duplicates, seen)
        assert list(dict.fromkeys(seen)) == keys  # in stream order
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(timeout=15) == 0  # a clean stop on SIGTERM
    finally:
        if restarted.poll() is None:
            restarted.kill()
    text = log.read_text()
    assert "reading from AFTER_SEQUENCE_NUMBER" in text  # the restart resumed from the checkpoint
    assert "received SIGTERM; stopping" in text


# -- bad mappings -----------------------------------------------------------------------------------


def test_a_mapping_whose_stream_is_gone_reports_stream_not_found(
    scenario: Callable[..., Scenario],
) -> None:
    s = scenario()
    uuid = s.map(BatchSize=10)
    s.aws.dynamodb.delete_table(TableName=s.table)
    runner = s.runner()
    stats = runner.wait_until(lambda st: st[uuid]["state"] == "error", timeout=15)
    assert stats[uuid]["last_error"] == f"Stream not found: {s.stream_arn}"
    assert stats[uuid]["invoked"] == 0


def test_code_that_cannot_be_imported_is_reported_and_not_run(
    scenario: Callable[..., Scenario],
) -> None:
    s = scenario()
    broken = s.unique_name("broken")
    create_function(s.aws.lambda_, broken, {"app.py": "import module_that_does_not_exist\n"})
    uuid = s.map(BatchSize=10, FunctionName=broken)
    s.put("k0")
    runner = s.runner()
    stats = runner.wait_until(lambda st: st[uuid]["state"] == "error", timeout=20)
    assert "cannot run the function's deployed code" in stats[uuid]["last_error"]
    assert "module_that_does_not_exist" in stats[uuid]["last_error"]
    assert stats[uuid]["polled"] == 0  # the records wait in the stream
    # Deploying fixed code: the runner notices the new CodeSha256 and runs the new code.
    from tests.helpers import make_zip

    s.aws.lambda_.update_function_code(FunctionName=broken, ZipFile=make_zip({"app.py": HANDLER}))
    s.aws.lambda_.update_function_configuration(
        FunctionName=broken, Environment={"Variables": {"RECORD_QUEUE": s.record_queue}}
    )
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 1, timeout=30)
    assert [i.keys for i in s.invocations(1)] == [["k0"]]


def test_the_endpoint_rejects_out_of_range_settings(scenario: Callable[..., Scenario]) -> None:
    s = scenario()
    with pytest.raises(ClientError) as info:
        s.map(BatchSize=10, MaximumRecordAgeInSeconds=30)
    error = info.value.response["Error"]
    assert error["Code"] == "InvalidParameterValueException"
    assert error["Message"] == (
        "MaximumRecordAgeInSeconds must be either -1 (forever) or between 60 and 604800 (inclusive)"
    )


@pytest.mark.parametrize("kind", ["sns", "s3"])
def test_sns_and_s3_on_failure_destinations(scenario: Callable[..., Scenario], kind: str) -> None:
    s = scenario(MODE="raise_on_poison")
    if kind == "sns":
        topic = s.aws.sns.create_topic(Name=s.unique_name("failures"))["TopicArn"]
        inbox_url, inbox_arn = s.queue("sns-inbox")
        s.aws.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
        destination = topic
    else:
        bucket = s.unique_name("failures")
        s.aws.s3.create_bucket(Bucket=bucket)
        destination = f"arn:aws:s3:::{bucket}"
    uuid = s.map(
        BatchSize=1,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": destination}},
    )
    s.put("bad", poison={"BOOL": True})
    runner = s.runner()
    runner.wait_until(lambda st: st[uuid]["sent_to_destination"] == 1, timeout=20)
    (invocation,) = s.invocations(1)
    if kind == "sns":
        (notification,) = s.messages(inbox_url, 1)
        failure = json.loads(notification["Message"])
    else:
        (listed,) = s.aws.s3.list_objects_v2(Bucket=bucket)["Contents"]
        key = listed["Key"]
        description = s.aws.dynamodbstreams.describe_stream(StreamArn=s.stream_arn)[
            "StreamDescription"
        ]
        shard_id = description["Shards"][0]["ShardId"]
        prefix = f"aws/lambda/{uuid}/{shard_id}/{time.strftime('%Y/%m/%d', time.gmtime())}/"
        assert key.startswith(prefix), key
        assert len(key) == len(prefix) + len("2024-01-01T00.00.00-") + 36, key
        failure = json.loads(s.aws.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        assert failure.pop("payload") == {"Records": invocation.records}
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 1
    assert (
        failure["DDBStreamBatchInfo"]["startSequenceNumber"]
        == invocation.records[0]["dynamodb"]["SequenceNumber"]
    )
