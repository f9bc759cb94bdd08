"""Stream resilience end to end: real functions, mappings and destinations on the emulator, with
DynamoDB Streams served by a double that misbehaves on demand (moto's stream never splits,
expires, trims or throttles), and on the emulator's own stream where it can reproduce the case:

- shard lineage (a parent read to its end before its children; DescribeStream paginated), and
  records that come with a null NextShardIterator;
- ExpiredIteratorException: a new iterator AFTER_SEQUENCE_NUMBER of the checkpoint;
- TrimmedDataAccessException: resume at TRIM_HORIZON, report the gap (metric and warning);
- throttling: jittered backoff without re-reading anything;
- at most 2 readers per shard, at most 1000 records and 1 MB per GetRecords;
- a deleted or recreated table: the mapping stops cleanly; checkpoints never cross labels.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError

from streamkit.local.esm.checkpoints import CheckpointStore
from streamkit.streams.throttling import ThrottleBackoff
from tests.helpers.fake_streams import PAGE_LIMIT_BYTES, FakeStreamsClient
from tests.helpers.streams import create_stream_table
from tests.integration import test_runner as base
from tests.integration.test_runner import Scenario
from tests.integration.test_runner_support import (
    calls,
    calls_covering,
    deploy,
    fake_stream_for,
    streams_from,
)

scenario = base.scenario  # the fixture, shared


def keys_of(reported: list[object]) -> list[str]:
    return [k for call in reported for k in call.keys]  # type: ignore[attr-defined]


# -- shard lineage -----------------------------------------------------------------------------


def test_a_parent_shard_is_read_to_its_end_before_its_children(
    scenario: Callable[..., Scenario],
) -> None:
    s: Scenario = scenario()
    fake = FakeStreamsClient(describe_page_size=1)  # one shard per DescribeStream page
    arn = fake_stream_for(s, fake)
    parent = fake.shard_ids(arn)[0]
    for i in range(3):
        fake.put(arn, f"p{i}", new_image={})
    left, right = fake.split(arn, parent)
    for child in (left, right):
        for i in range(2):
            fake.put(arn, f"{child[-4:]}-{i}", new_image={}, shard_id=child)
    uuid = s.map(FunctionName=deploy(s, SLEEP_S="0.05"), BatchSize=10)
    runner = s.runner(client_factory=streams_from(fake, s))
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 7, timeout=20)
    reported = calls(s, 3)
    parent_calls = [c for c in reported if c.keys[0].startswith("p")]
    child_calls = [c for c in reported if not c.keys[0].startswith("p")]
    assert keys_of(parent_calls) == ["p0", "p1", "p2"]
    assert sorted(keys_of(child_calls)) == sorted(
        [f"{left[-4:]}-0", f"{left[-4:]}-1", f"{right[-4:]}-0", f"{right[-4:]}-1"]
    )
    last_parent_end = max(c.body["finished"] for c in parent_calls)
    assert all(c.body["started"] >= last_parent_end for c in child_calls)
    # The parent's records came in the page that ended the shard (no NextShardIterator).
    assert (parent, 3) in fake.last_pages
    # The children are only on DescribeStream's second and third pages.
    assert fake.calls["describe_stream"] >= 3
    runner.stop()
    finished = CheckpointStore(s.state_dir)
    assert finished.is_shard_finished(uuid, arn, parent, stream_label=arn.rsplit("/", 1)[1])
    assert {c.shard_id for c in finished.all()} == {parent, left, right}


# -- expiry, trimming, throttling ----------------------------------------------------------------


def test_an_expired_iterator_is_reacquired_after_the_checkpoint(
    scenario: Callable[..., Scenario],
) -> None:
    s: Scenario = scenario()
    fake = FakeStreamsClient()
    arn = fake_stream_for(s, fake)
    shard = fake.shard_ids(arn)[0]
    fake.put(arn, "a", new_image={})
    second = fake.put(arn, "b", new_image={})
    uuid = s.map(FunctionName=deploy(s), BatchSize=10)
    runner = s.runner(client_factory=streams_from(fake, s))
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 2, timeout=20)
    runner.wait_until(lambda st: CheckpointStore(s.state_dir).all() != [])
    requests_before = len(fake.iterator_requests)
    fake.expire_iterators()  # 15 minutes pass
    fake.put(arn, "c", new_image={})
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 3, timeout=20)
    reacquired = fake.iterator_requests[requests_before]
    assert reacquired == {
        "StreamArn": arn,
        "ShardId": shard,
        "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
        "SequenceNumber": second,  # the checkpoint: b was the last record done
    }
    assert keys_of(calls(s, 2)) == ["a", "b", "c"]  # nothing lost, nothing twice
    s.assert_no_more()


class ReplayingStreams:
    """The emulator's real Streams client; when ``replay`` is set, the next GetRecords uses the
    first iterator it was given, which the emulator answers with ExpiredIteratorException once
    that is older than the iterator lifetime."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.replay = False
        self.consumed: str | None = None  # the first iterator used
        self.iterator_requests: list[dict[str, Any]] = []
        self.expired = 0

    def describe_stream(self, **kwargs: Any) -> Any:
        return self.real.describe_stream(**kwargs)

    def get_shard_iterator(self, **kwargs: Any) -> Any:
        self.iterator_requests.append(dict(kwargs))
        return self.real.get_shard_iterator(**kwargs)

    def get_records(self, **kwargs: Any) -> Any:
        if self.replay and self.consumed is not None:
            self.replay = False
            kwargs = {**kwargs, "ShardIterator": self.consumed}
        try:
            response = self.real.get_records(**kwargs)
        except ClientError as exc:
            self.expired += exc.response["Error"]["Code"] == "ExpiredIteratorException"
            raise
        self.consumed = self.consumed or kwargs["ShardIterator"]
        return response


def test_an_expired_iterator_from_the_emulator_is_reacquired_after_the_checkpoint(
    scenario: Callable[..., Scenario],
    embedded_emulator: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMKIT_EMULATOR_ITERATOR_SECONDS", "1")  # read by the emulator
    s: Scenario = scenario()
    streams = ReplayingStreams(s.aws.dynamodbstreams)
    uuid = s.map(FunctionName=deploy(s), BatchSize=10)
    s.put("a")
    runner = s.runner(
        client_factory=lambda service: (
            streams if service == "dynamodbstreams" else s.aws.client(service)
        )
    )
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 1, timeout=20)
    runner.wait_until(lambda st: CheckpointStore(s.state_dir).all() != [])
    (checkpoint,) = CheckpointStore(s.state_dir).all()
    requests_before = len(streams.iterator_requests)
    time.sleep(1.2)  # the first iterator is now older than its lifetime
    streams.replay = True
    runner.wait_until(lambda st: streams.expired == 1)
    s.put("b")
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 2, timeout=20)
    assert streams.iterator_requests[requests_before] == {
        "StreamArn": s.stream_arn,
        "ShardId": checkpoint.shard_id,
        "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
        "SequenceNumber": checkpoint.sequence_number,
    }
    assert keys_of(calls(s, 2)) == ["a", "b"]
    s.assert_no_more()


def test_trimmed_records_resume_at_trim_horizon_and_report_the_gap(
    scenario: Callable[..., Scenario], caplog: pytest.LogCaptureFixture
) -> None:
    s: Scenario = scenario()
    fake = FakeStreamsClient()
    arn = fake_stream_for(s, fake)
    shard = fake.shard_ids(arn)[0]
    fake.put(arn, "a", new_image={})
    uuid = s.map(FunctionName=deploy(s), BatchSize=10)
    first = s.runner(client_factory=streams_from(fake, s))
    first.wait_until(lambda st: st[uuid]["succeeded"] == 1, timeout=20)
    first.stop()
    fake.put(arn, "lost1", new_image={})
    fake.put(arn, "lost2", new_image={})
    kept = fake.put(arn, "kept", new_image={})
    fake.trim(arn, shard, keep_from=kept)  # more than 24 hours pass while stopped
    caplog.set_level(logging.WARNING)
    second = s.runner(client_factory=streams_from(fake, s))
    stats = second.wait_until(lambda st: st[uuid]["succeeded"] == 1, timeout=20)
    assert stats[uuid]["trimmed_gaps"] == 1
    assert [r["ShardIteratorType"] for r in fake.iterator_requests[-2:]] == [
        "AFTER_SEQUENCE_NUMBER",  # from the checkpoint: trimmed away
        "TRIM_HORIZON",
    ]
    assert keys_of(calls(s, 2)) == ["a", "kept"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("trimmed" in w and "Records in between are lost" in w for w in warnings)


def test_throttling_is_waited_out_with_backoff_and_nothing_is_read_twice(
    scenario: Callable[..., Scenario],
) -> None:
    s: Scenario = scenario()
    fake = FakeStreamsClient()
    arn = fake_stream_for(s, fake)
    fake.put(arn, "a", new_image={})
    uuid = s.map(FunctionName=deploy(s), BatchSize=10)
    runner = s.runner(
        client_factory=streams_from(fake, s),
        throttle_backoff=ThrottleBackoff(multiplier=0.02, maximum=0.2),
    )
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 1, timeout=20)
    iterators_before = len(fake.iterator_requests)
    fake.fail_next("get_records", "LimitExceededException", times=2)
    fake.fail_next("get_records", "ProvisionedThroughputExceededException", times=2)
    fake.fail_next("get_shard_iterator", "LimitExceededException", times=1)
    fake.put(arn, "b", new_image={})
    stats = runner.wait_until(lambda st: st[uuid]["succeeded"] == 2, timeout=20)
    assert stats[uuid]["throttled"] == 4
    # The same iterator was simply tried again: no restart from the checkpoint.
    assert len(fake.iterator_requests) == iterators_before
    assert keys_of(calls(s, 2)) == ["a", "b"]
    s.assert_no_more()


# -- read limits ---------------------------------------------------------------------------------


def test_at_most_two_readers_per_shard(
    scenario: Callable[..., Scenario], caplog: pytest.LogCaptureFixture
) -> None:
    s: Scenario = scenario()
    fake = FakeStreamsClient()
    fake.get_records_delay = 0.05  # each GetRecords takes a while: readers overlap
    arn = fake_stream_for(s, fake)
    shard = fake.shard_ids(arn)[0]
    functions = [deploy(s) for _ in range(3)]
    uuids = [s.map(FunctionName=f, BatchSize=10) for f in functions]
    for i in range(3):
        fake.put(arn, f"k{i}", new_image={})
    caplog.set_level(logging.WARNING)
    runner = s.runner(client_factory=streams_from(fake, s))
    runner.wait_until(lambda st: all(st[u]["succeeded"] == 3 for u in uuids), timeout=30)
    runner.wait_until(lambda st: fake.calls["get_records"] >= 30, timeout=10)
    assert fake.max_concurrent_reads[shard] == 2  # three mappings, two readers at a time
    reported = calls_covering(s, 9)
    for function in functions:  # every mapping still got every record, once
        assert keys_of([c for c in reported if c.function == function]) == ["k0", "k1", "k2"]
    assert any(
        "3 mappings read" in r.getMessage() and "Router.fan_out" in r.getMessage()
        for r in caplog.records
    )


def test_get_records_asks_for_at_most_1000_records(scenario: Callable[..., Scenario]) -> None:
    s: Scenario = scenario()
    fake = FakeStreamsClient()
    arn = fake_stream_for(s, fake)
    for i in range(2500):
        fake.put(arn, f"k{i:04d}", new_image={})
    uuid = s.map(FunctionName=deploy(s), BatchSize=10000)
    runner = s.runner(client_factory=streams_from(fake, s))
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 2500, timeout=30)
    assert max(fake.get_records_limits) == 1000
    assert [len(c.keys) for c in calls_covering(s, 2500)] == [1000, 1000, 500]


def test_get_records_pages_stay_within_1_mb(scenario: Callable[..., Scenario]) -> None:
    s: Scenario = scenario()
    fake = FakeStreamsClient()
    arn = fake_stream_for(s, fake)
    blob = {"S": "x" * 200_000}  # half of DynamoDB's 400 KB item limit
    for i in range(12):
        fake.put(arn, f"k{i:02d}", new_image={"blob": blob})
    uuid = s.map(FunctionName=deploy(s), BatchSize=100)
    runner = s.runner(client_factory=streams_from(fake, s))
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 12, timeout=30)
    pages = [(records, size) for records, size in fake.pages if records]
    assert all(size <= PAGE_LIMIT_BYTES for _records, size in pages)
    assert [records for records, _size in pages] == [5, 5, 2]
    reported = calls_covering(s, 12)
    assert keys_of(reported) == [f"k{i:02d}" for i in range(12)]
    assert max(len(c.keys) for c in reported) == 5


def test_the_emulator_stream_gives_at_most_1000_records_per_read(
    scenario: Callable[..., Scenario],
) -> None:
    s: Scenario = scenario()
    table = s.stream_arn.split("/")[1]
    for start in range(0, 1500, 25):
        s.aws.dynamodb.batch_write_item(
            RequestItems={
                table: [
                    {"PutRequest": {"Item": {"pk": {"S": f"k{i:04d}"}}}}
                    for i in range(start, start + 25)
                ]
            }
        )
    uuid = s.map(FunctionName=deploy(s), BatchSize=10000)
    runner = s.runner()
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 1500, timeout=30)
    assert [len(c.keys) for c in calls_covering(s, 1500)] == [1000, 500]


# -- deleted and recreated tables ----------------------------------------------------------------


def test_a_deleted_table_stops_the_mapping_cleanly(scenario: Callable[..., Scenario]) -> None:
    s: Scenario = scenario()
    uuid = s.map(FunctionName=deploy(s), BatchSize=10)
    s.put("a")
    runner = s.runner()
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 1, timeout=20)
    assert runner.stats()[uuid]["shards_running"] == 1
    s.aws.dynamodb.delete_table(TableName=s.stream_arn.split("/")[1])
    stats = runner.wait_until(
        lambda st: st[uuid]["state"] == "error" and st[uuid]["shards_running"] == 0, timeout=20
    )
    assert stats[uuid]["last_error"] == f"Stream not found: {s.stream_arn}"
    assert stats[uuid]["invoked"] == 1
    assert keys_of(calls(s, 1)) == ["a"]


def test_a_recreated_table_is_a_new_stream_and_checkpoints_never_cross_labels(
    scenario: Callable[..., Scenario],
) -> None:
    s: Scenario = scenario()
    table = s.stream_arn.split("/")[1]
    function = deploy(s)
    old = s.map(FunctionName=function, BatchSize=10)
    s.put("old-1")
    s.put("old-2")
    runner = s.runner()
    runner.wait_until(lambda st: st[old]["succeeded"] == 2, timeout=20)
    s.aws.dynamodb.delete_table(TableName=table)
    runner.wait_until(lambda st: st[old]["shards_running"] == 0, timeout=20)
    new_arn = create_stream_table(s.aws.dynamodb, table)  # same name, new stream label
    assert new_arn != s.stream_arn
    s.put("new-1")  # a new stream: its own shards and sequence numbers
    new = s.aws.lambda_.create_event_source_mapping(
        EventSourceArn=new_arn, FunctionName=function, BatchSize=10, StartingPosition="TRIM_HORIZON"
    )["UUID"]
    s.mappings.append(new)
    runner.wait_until(lambda st: st[new]["succeeded"] == 1, timeout=20)
    reported = calls(s, 2)
    assert keys_of(reported) == ["old-1", "old-2", "new-1"]
    stats = runner.stats()
    assert stats[old]["state"] == "error" and stats[old]["succeeded"] == 2  # never read new-1
    runner.stop()
    checkpoints = {c.stream_arn: c for c in CheckpointStore(s.state_dir).all()}
    assert set(checkpoints) == {s.stream_arn, new_arn}
    assert checkpoints[new_arn].stream_label == new_arn.rsplit("/", 1)[1]
    assert checkpoints[s.stream_arn].stream_label == s.stream_arn.rsplit("/", 1)[1]
    assert shard_id_of_arn(s, new_arn) != checkpoints[s.stream_arn].shard_id


def shard_id_of_arn(s: Scenario, arn: str) -> str:
    description = s.aws.dynamodbstreams.describe_stream(StreamArn=arn)["StreamDescription"]
    return str(description["Shards"][0]["ShardId"])
