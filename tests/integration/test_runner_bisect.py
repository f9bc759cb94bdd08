"""BisectBatchOnFunctionError end to end: a poison record in a batch of N is isolated, only it
reaches the on-failure destination, every other record is processed exactly once, splitting
uses no retries, and a partial response (ReportBatchItemFailures) splits at the returned
sequence number."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streamkit.local.esm.checkpoints import CheckpointStore
from tests.helpers.runner_scenario import Scenario
from tests.helpers.runner_support import calls, deploy, processed_keys, shard_id_of


def test_a_poison_record_in_a_batch_of_8_is_isolated(scenario: Callable[..., Scenario]) -> None:
    s: Scenario = scenario()
    function = deploy(s, MODE="raise", POISON="k5")
    dlq_url, dlq_arn = s.queue()
    uuid = s.map(
        FunctionName=function,
        BatchSize=8,
        BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
    )
    keys = [f"k{i}" for i in range(8)]
    for key in keys:
        s.put(key)
    runner = s.runner()  # after the writes: one read, one batch of 8
    (failure,) = s.messages(dlq_url, 1)
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 7, timeout=20)
    reported = calls(s, 8)
    expected = [
        keys,  # fails: split in two, no retry used
        keys[:4],  # ok
        keys[4:],  # fails: split
        ["k4", "k5"],  # fails: split
        ["k4"],  # ok
        ["k5"],  # fails: the one retry (MaximumRetryAttempts=1)
        ["k5"],  # fails again: retries exhausted -> on-failure destination
        ["k6", "k7"],  # ok
    ]
    assert [c.keys for c in reported] == expected
    s.assert_no_more()
    assert sorted(processed_keys(reported)) == [k for k in keys if k != "k5"]  # each once
    poison_seq = reported[5].seqs[0]
    info = failure["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"], info["batchSize"]) == (
        poison_seq,
        poison_seq,
        1,
    )
    assert info["shardId"] == shard_id_of(s)
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    # The poison record was in 5 invokes: the 8, the 4, the 2 and itself twice.
    assert failure["requestContext"]["approximateInvokeCount"] == 5
    assert failure["requestContext"]["requestId"] == reported[6].body["request_id"]
    assert failure["responseContext"]["functionError"] == "Unhandled"
    stats = runner.stats()[uuid]
    assert (stats["invoked"], stats["failed"], stats["sent_to_destination"]) == (8, 5, 1)
    runner.stop()
    (checkpoint,) = CheckpointStore(s.state_dir).all()
    assert checkpoint.sequence_number == reported[-1].seqs[-1]


@pytest.mark.parametrize("bisect", [True, False], ids=["bisect", "no-bisect"])
def test_a_partial_response_splits_at_the_returned_sequence_number(
    scenario: Callable[..., Scenario], bisect: bool
) -> None:
    # k3 is reported failed every time; MaximumRetryAttempts=0 allows no retry at all.
    s: Scenario = scenario()
    function = deploy(s, MODE="report", POISON="k3")
    dlq_url, dlq_arn = s.queue()
    uuid = s.map(
        FunctionName=function,
        BatchSize=6,
        BisectBatchOnFunctionError=bisect,
        MaximumRetryAttempts=0,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
    )
    keys = [f"k{i}" for i in range(6)]
    for key in keys:
        s.put(key)
    runner = s.runner()
    (failure,) = s.messages(dlq_url, 1)
    info = failure["DDBStreamBatchInfo"]
    if bisect:
        runner.wait_until(lambda st: st[uuid]["succeeded"] == 5, timeout=20)
        reported = calls(s, 4)
        expected = [
            keys,  # k0-k2 done; split at k3: a new batch (no retry used)
            keys[3:],  # k3 fails first: split in halves
            ["k3"],  # fails; no retry allowed -> destination
            ["k4", "k5"],  # ok
        ]
        assert [c.keys for c in reported] == expected
        assert sorted(processed_keys(reported)) == ["k0", "k1", "k2", "k4", "k5"]
        # Counted from the new batch: k3-k5, then k3 alone.
        assert (info["batchSize"], failure["requestContext"]["approximateInvokeCount"]) == (1, 2)
    else:
        runner.wait_until(lambda st: st[uuid]["sent_to_destination"] == 3, timeout=20)
        reported = calls(s, 2)
        # k0-k2 done: k3-k5 are a new batch with a full budget (1 invoke, no retry), then
        # they are given up together.
        assert [c.keys for c in reported] == [keys, keys[3:]]
        assert processed_keys(reported) == ["k0", "k1", "k2"]
        assert (info["batchSize"], failure["requestContext"]["approximateInvokeCount"]) == (3, 1)
        assert info["endSequenceNumber"] == reported[0].seqs[-1]
    s.assert_no_more()
    assert info["startSequenceNumber"] == reported[0].seqs[3]
    # The function did not error: it reported an item failure.
    assert failure["responseContext"] == {
        "statusCode": 200,
        "executedVersion": "$LATEST",
        "functionError": None,
    }


def test_a_record_failing_alone_after_a_partial_success_gets_a_full_retry_budget(
    scenario: Callable[..., Scenario],
) -> None:
    # AWS recorded (MaximumRetryAttempts 3): the record is delivered once in its batch, then
    # 1 + MaximumRetryAttempts times alone; approximateInvokeCount counts only the latter.
    retries = 2
    s: Scenario = scenario()
    function = deploy(s, MODE="report", POISON="k2")
    dlq_url, dlq_arn = s.queue()
    uuid = s.map(
        FunctionName=function,
        BatchSize=3,
        MaximumRetryAttempts=retries,
        FunctionResponseTypes=["ReportBatchItemFailures"],
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
    )
    keys = ["k0", "k1", "k2"]
    for key in keys:
        s.put(key)
    runner = s.runner()
    (failure,) = s.messages(dlq_url, 1)
    runner.wait_until(lambda st: st[uuid]["sent_to_destination"] == 1, timeout=20)
    reported = calls(s, 1 + 1 + retries)
    assert [c.keys for c in reported] == [keys] + [["k2"]] * (1 + retries)
    s.assert_no_more()
    assert processed_keys(reported) == ["k0", "k1"]
    info = failure["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["batchSize"]) == (reported[0].seqs[2], 1)
    assert failure["requestContext"]["approximateInvokeCount"] == 1 + retries
    assert failure["requestContext"]["requestId"] == reported[-1].body["request_id"]
    stats = runner.stats()[uuid]
    assert (stats["invoked"], stats["retries"]) == (2 + retries, retries)
