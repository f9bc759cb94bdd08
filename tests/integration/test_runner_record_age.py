"""MaximumRecordAgeInSeconds end to end, measured from each record's ApproximateCreationDateTime:
records already too old are never invoked, and records that age out while their batch is being
retried stop being retried. Both go to the destination as "RecordAgeExceeded".

The smallest allowed age is 60 s, so the runner is given a clock that runs ahead of the
emulator's (``Runner(clock=...)``, the clock it measures ages and windows with)."""

from __future__ import annotations

import time
from collections.abc import Callable

from streamkit.local.esm.checkpoints import CheckpointStore
from tests.integration import test_runner as base
from tests.integration.test_runner import Scenario
from tests.integration.test_runner_support import calls, deploy, shard_id_of

scenario = base.scenario  # the fixture, shared


def arrival(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(seconds)))


def test_records_older_than_the_maximum_age_are_discarded_uninvoked(
    scenario: Callable[..., Scenario],
) -> None:
    s: Scenario = scenario()
    function = deploy(s)
    dlq_url, dlq_arn = s.queue()
    uuid = s.map(
        FunctionName=function,
        BatchSize=10,
        MaximumRecordAgeInSeconds=60,
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
    )
    for key in ("a", "b", "c"):
        s.put(key)
    records = s.aws.dynamodbstreams.get_records(
        ShardIterator=s.aws.dynamodbstreams.get_shard_iterator(
            StreamArn=s.stream_arn, ShardId=shard_id_of(s), ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
    )["Records"]
    first, last = records[0]["dynamodb"], records[-1]["dynamodb"]
    runner = s.runner(clock=lambda: time.time() + 3600)  # every record is an hour old
    (failure,) = s.messages(dlq_url, 1)
    failure.pop("timestamp")
    failure["requestContext"].pop("requestId")
    assert failure == {
        "requestContext": {
            "functionArn": runner.stats()[uuid]["function_arn"],
            "condition": "RecordAgeExceeded",
            "approximateInvokeCount": 0,
        },
        "responseContext": {
            "statusCode": None,
            "executedVersion": "$LATEST",
            "functionError": None,
        },
        "version": "1.0",
        "DDBStreamBatchInfo": {
            "shardId": shard_id_of(s),
            "startSequenceNumber": first["SequenceNumber"],
            "endSequenceNumber": last["SequenceNumber"],
            "approximateArrivalOfFirstRecord": arrival(
                first["ApproximateCreationDateTime"].timestamp()
            ),
            "approximateArrivalOfLastRecord": arrival(
                last["ApproximateCreationDateTime"].timestamp()
            ),
            "batchSize": 3,
            "streamArn": s.stream_arn,
        },
    }
    s.assert_no_more()  # the function never saw them
    stats = runner.stats()[uuid]
    assert (stats["invoked"], stats["sent_to_destination"]) == (0, 3)
    runner.stop()
    (checkpoint,) = CheckpointStore(s.state_dir).all()
    assert checkpoint.sequence_number == last["SequenceNumber"]


def test_records_that_age_out_while_retried_stop_being_retried(
    scenario: Callable[..., Scenario],
) -> None:
    s: Scenario = scenario()
    function = deploy(s, MODE="raise", POISON="bad")
    dlq_url, dlq_arn = s.queue()
    uuid = s.map(
        FunctionName=function,
        BatchSize=10,
        MaximumRecordAgeInSeconds=60,  # MaximumRetryAttempts stays -1: retry forever
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
    )
    s.put("bad")
    ahead = [0.0]
    runner = s.runner(clock=lambda: time.time() + ahead[0])
    runner.wait_until(lambda st: st[uuid]["invoked"] >= 2, timeout=20)
    ahead[0] = 120.0  # two minutes pass in the middle of the retries
    (failure,) = s.messages(dlq_url, 1)
    ahead[0] = 0.0
    s.put("good")
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 1, timeout=20)
    reported = calls(s, 3)
    bad_invokes = [c for c in reported if c.keys == ["bad"]]
    assert len(bad_invokes) >= 2
    assert [c.keys for c in reported] == [["bad"]] * len(bad_invokes) + [["good"]]
    assert failure["requestContext"]["condition"] == "RecordAgeExceeded"
    assert failure["requestContext"]["approximateInvokeCount"] == len(bad_invokes)
    assert failure["responseContext"]["functionError"] == "Unhandled"  # the last invoke's
    assert failure["DDBStreamBatchInfo"]["startSequenceNumber"] == bad_invokes[0].seqs[0]
    assert failure["DDBStreamBatchInfo"]["batchSize"] == 1
