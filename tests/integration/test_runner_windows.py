"""Tumbling windows end to end: the exact event AWS sends, state carried between invokes, the
final invoke with no records once the window has closed, a failed final invoke blocking the
shard, early termination beyond 1 MB of state, and ParallelizationFactor 1 enforced."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError

from streamkit.local.esm.checkpoints import CheckpointStore
from tests.integration import test_runner as base
from tests.integration.test_runner import Scenario
from tests.integration.test_runner_support import Call, calls, deploy, shard_id_of

scenario = base.scenario  # the fixture, shared


def epoch(iso: str) -> int:
    return int(dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp())


def at_window_start(size_s: int) -> None:
    """Sleep until just after a window boundary, so a few writes share one window."""
    now = time.time()
    time.sleep(size_s - now % size_s + 0.05)


def summary(reported: list[Call]) -> list[tuple[str, list[str], str]]:
    return [(c.kind, c.keys, c.outcome) for c in reported]


def test_the_window_event_state_and_final_invoke(scenario: Callable[..., Scenario]) -> None:
    s: Scenario = scenario()
    function = deploy(s, MODE="window", FULL="1")
    uuid = s.map(FunctionName=function, BatchSize=2, TumblingWindowInSeconds=2)
    runner = s.runner()
    runner.wait_until(lambda st: st[uuid]["state"] == "polling", timeout=20)
    at_window_start(2)
    for key in ("a", "b", "c"):
        s.put(key)
    runner.wait_until(lambda st: st[uuid]["windows_closed"] == 1, timeout=20)
    reported = calls(s, 3)
    while reported[-1].kind != "final":  # 2 or 3 aggregation invokes, as reads met writes
        reported += calls(s, 1)
    assert [c.kind for c in reported] == ["invoke"] * (len(reported) - 1) + ["final"]
    assert [k for c in reported for k in c.keys] == ["a", "b", "c"]
    events = [c.body["event"] for c in reported]
    first, final = events[0], events[-1]
    assert list(first) == [
        "Records", "window", "state", "shardId", "eventSourceARN",
        "isFinalInvokeForWindow", "isWindowTerminatedEarly",
    ]  # fmt: skip
    start, end = epoch(first["window"]["start"]), epoch(first["window"]["end"])
    assert (start % 2, end - start) == (0, 2)  # aligned on the epoch, 2 s long
    created = first["Records"][0]["dynamodb"]["ApproximateCreationDateTime"]
    assert start <= created < end  # by the record's arrival time
    # The state each invoke gets is what the previous invokes of the window returned.
    so_far: list[str] = []
    for event in events[:-1]:
        assert event["state"] == ({"count": len(so_far), "keys": so_far} if so_far else {})
        so_far = so_far + [r["dynamodb"]["Keys"]["pk"]["S"] for r in event["Records"]]
    assert (first["shardId"], first["eventSourceARN"]) == (shard_id_of(s), s.stream_arn)
    assert first["isFinalInvokeForWindow"] is False
    assert first["isWindowTerminatedEarly"] is False
    assert final == {
        "Records": [],
        "window": first["window"],
        "state": {"count": 3, "keys": ["a", "b", "c"]},
        "shardId": shard_id_of(s),
        "eventSourceARN": s.stream_arn,
        "isFinalInvokeForWindow": True,
        "isWindowTerminatedEarly": False,
    }
    assert reported[-1].body["started"] >= end  # only once the window has closed
    s.assert_no_more()
    runner.stop()
    (checkpoint,) = CheckpointStore(s.state_dir).all()
    assert checkpoint.sequence_number == events[-2]["Records"][-1]["dynamodb"]["SequenceNumber"]


def test_a_failed_final_invoke_blocks_the_shard_until_it_succeeds(
    scenario: Callable[..., Scenario],
) -> None:
    s: Scenario = scenario()
    function = deploy(s, MODE="window", FAIL_FINAL="2")
    uuid = s.map(FunctionName=function, TumblingWindowInSeconds=1)
    runner = s.runner()
    runner.wait_until(lambda st: st[uuid]["state"] == "polling", timeout=20)
    at_window_start(1)
    s.put("a")
    at_window_start(1)
    s.put("b")  # the next window
    runner.wait_until(lambda st: st[uuid]["windows_closed"] == 2, timeout=20)
    reported = calls(s, 6)
    assert summary(reported) == [
        ("invoke", ["a"], "ok"),
        ("final", [], "raised"),
        ("final", [], "raised"),
        ("final", [], "ok"),
        ("invoke", ["b"], "ok"),  # only after the final invoke succeeded
        ("final", [], "ok"),
    ]
    assert reported[4].body["started"] >= reported[3].body["finished"]
    assert reported[3].window["state"] == {"count": 1, "keys": ["a"]}
    assert reported[4].window["state"] == {}  # a new window starts afresh
    assert runner.stats()[uuid]["failed"] == 2


def test_a_final_invoke_out_of_retries_goes_to_the_destination(
    scenario: Callable[..., Scenario],
) -> None:
    s: Scenario = scenario()
    function = deploy(s, MODE="window", FAIL_FINAL="99")
    dlq_url, dlq_arn = s.queue()
    s.map(
        FunctionName=function,
        TumblingWindowInSeconds=1,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": dlq_arn}},
    )
    at_window_start(1)
    s.put("a")
    s.put("b")
    s.runner()
    (failure,) = s.messages(dlq_url, 1)
    reported = calls(s, 3)
    records = [seq for c in reported for seq in c.seqs]
    assert [c.kind for c in reported][-2:] == ["final", "final"]  # 1 retry
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 2
    info = failure["DDBStreamBatchInfo"]
    assert (info["startSequenceNumber"], info["endSequenceNumber"]) == (records[0], records[-1])
    assert info["batchSize"] == 2


def test_state_over_1_mb_terminates_the_window_early(scenario: Callable[..., Scenario]) -> None:
    s: Scenario = scenario()
    function = deploy(s, MODE="window", BIG_STATE="1")
    uuid = s.map(FunctionName=function, BatchSize=1, TumblingWindowInSeconds=2)
    runner = s.runner()
    runner.wait_until(lambda st: st[uuid]["state"] == "polling", timeout=20)
    at_window_start(2)
    s.put("a")
    s.put("b")
    runner.wait_until(lambda st: st[uuid]["windows_closed"] == 2, timeout=20)
    first, early, second, final = calls(s, 4)
    assert (first.kind, first.keys) == ("invoke", ["a"])
    assert (early.kind, early.keys) == ("final", [])
    assert early.window["isWindowTerminatedEarly"] is True
    assert early.window["state"]["size"] > 1024 * 1024  # the big state was handed over
    # The same window goes on with a fresh state.
    assert (second.keys, second.window["state"]) == (["b"], {})
    assert second.window["window"] == first.window["window"] == final.window["window"]
    assert final.window["state"] == {"count": 1, "keys": ["b"]}
    assert final.window["isWindowTerminatedEarly"] is False


def test_a_response_without_state_is_a_failed_invoke(scenario: Callable[..., Scenario]) -> None:
    s: Scenario = scenario()
    function = deploy(s, MODE="window", NO_STATE="1")
    uuid = s.map(FunctionName=function, TumblingWindowInSeconds=1)
    s.put("a")
    runner = s.runner()
    runner.wait_until(lambda st: st[uuid]["windows_closed"] == 1, timeout=20)
    reported = calls(s, 3)
    assert summary(reported) == [
        ("invoke", ["a"], "raised"),  # returned {"batchItemFailures": []} but no state
        ("invoke", ["a"], "ok"),
        ("final", [], "ok"),
    ]
    assert "must contain a state object" in runner.stats()[uuid]["last_error"]
    assert runner.stats()[uuid]["failed"] == 1


def test_tumbling_windows_require_a_parallelization_factor_of_1(
    scenario: Callable[..., Scenario],
) -> None:
    s: Scenario = scenario()
    with pytest.raises(ClientError) as info:
        s.map(TumblingWindowInSeconds=60, ParallelizationFactor=2)
    assert info.value.response["Error"] == {
        "Code": "InvalidParameterValueException",
        "Message": "TumblingWindowInSeconds (60) requires a ParallelizationFactor of 1, not 2.",
    }
