"""Streams whose shards live like DynamoDB's: several per table, closing into child shards.

The settings are environment variables the in-process emulator reads when it needs them (see
streamkit.local.emulator.stream_shards.Settings); each test shortens them for itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from streamkit.local.emulator import Emulator
from tests.helpers import AwsClients, create_stream_table
from tests.helpers.runner_scenario import Scenario


def _shards(aws: AwsClients, stream_arn: str) -> list[dict[str, Any]]:
    shards: list[dict[str, Any]] = aws.dynamodbstreams.describe_stream(StreamArn=stream_arn)[
        "StreamDescription"
    ]["Shards"]
    return shards


def _read_shard(
    aws: AwsClients, stream_arn: str, shard_id: str
) -> tuple[list[dict[str, Any]], bool]:
    """(records, whether the shard ended: GetRecords gave no NextShardIterator)."""
    iterator = aws.dynamodbstreams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    for _ in range(20):
        response = aws.dynamodbstreams.get_records(ShardIterator=iterator)
        records += response["Records"]
        iterator = response.get("NextShardIterator")
        if iterator is None:
            return records, True
        if not response["Records"]:
            break
    return records, False


def _key(record: dict[str, Any]) -> str:
    key: str = record["dynamodb"]["Keys"]["pk"]["S"]
    return key


def test_a_shard_closes_after_its_records_and_hands_over_to_a_child(
    embedded_emulator: Emulator,
    aws: AwsClients,
    unique_name: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMKIT_EMULATOR_SHARD_MAX_RECORDS", "3")
    table = unique_name("roll")
    stream_arn = create_stream_table(aws.dynamodb, table)
    for i in range(7):
        aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}})

    shards = _shards(aws, stream_arn)
    assert len(shards) == 3
    assert "ParentShardId" not in shards[0]
    assert [s.get("ParentShardId") for s in shards[1:]] == [s["ShardId"] for s in shards[:2]]
    assert all("EndingSequenceNumber" in s["SequenceNumberRange"] for s in shards[:2])
    assert "EndingSequenceNumber" not in shards[2]["SequenceNumberRange"]

    read = [_read_shard(aws, stream_arn, s["ShardId"]) for s in shards]
    assert [[_key(r) for r in records] for records, _ in read] == [
        ["k0", "k1", "k2"],
        ["k3", "k4", "k5"],
        ["k6"],
    ]
    assert [ended for _, ended in read] == [True, True, False]
    sequence = [int(r["dynamodb"]["SequenceNumber"]) for records, _ in read for r in records]
    assert sequence == sorted(sequence)
    first_range = shards[0]["SequenceNumberRange"]
    assert first_range["EndingSequenceNumber"] == read[0][0][-1]["dynamodb"]["SequenceNumber"]
    assert first_range["StartingSequenceNumber"] == read[0][0][0]["dynamodb"]["SequenceNumber"]


def test_a_shard_closes_after_its_age(
    embedded_emulator: Emulator,
    aws: AwsClients,
    unique_name: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMKIT_EMULATOR_SHARD_SECONDS", "1")
    table = unique_name("aged")
    stream_arn = create_stream_table(aws.dynamodb, table)
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}})
    assert len(_shards(aws, stream_arn)) == 1
    time.sleep(1.2)  # the scenario: the shard ages past its 1 s lifetime
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "b"}})
    parent, child = _shards(aws, stream_arn)
    assert child["ParentShardId"] == parent["ShardId"]
    assert [_key(r) for r in _read_shard(aws, stream_arn, parent["ShardId"])[0]] == ["a"]
    assert [_key(r) for r in _read_shard(aws, stream_arn, child["ShardId"])[0]] == ["b"]


def test_a_table_may_start_with_several_shards_each_key_in_one(
    embedded_emulator: Emulator,
    aws: AwsClients,
    unique_name: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMKIT_EMULATOR_SHARDS", "3")
    table = unique_name("wide")
    stream_arn = create_stream_table(aws.dynamodb, table)
    for version in range(2):
        for i in range(12):
            aws.dynamodb.put_item(
                TableName=table, Item={"pk": {"S": f"k{i}"}, "v": {"N": str(version)}}
            )
    shards = _shards(aws, stream_arn)
    assert len(shards) == 3
    assert all("ParentShardId" not in s for s in shards)
    per_shard = [_read_shard(aws, stream_arn, s["ShardId"])[0] for s in shards]
    assert sum(len(records) for records in per_shard) == 24
    assert sum(1 for records in per_shard if records) >= 2  # keys spread over the shards
    homes = {}
    for number, records in enumerate(per_shard):
        for record in records:
            assert homes.setdefault(_key(record), number) == number  # one shard per key
        names = [r["eventName"] for r in records]
        for key in {_key(r) for r in records}:  # and in order within it
            assert [n for r, n in zip(records, names, strict=True) if _key(r) == key] == [
                "INSERT",
                "MODIFY",
            ]


def test_the_runner_follows_shard_lineage_over_http(
    embedded_emulator: Emulator,
    scenario: Callable[..., Scenario],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMKIT_EMULATOR_SHARD_MAX_RECORDS", "4")
    s = scenario()
    for i in range(10):
        s.put(f"k{i:02d}")
    uuid = s.map(BatchSize=100)
    runner = s.runner()
    runner.wait_until(lambda st: st[uuid]["succeeded"] >= 3, timeout=30)
    for i in range(10, 13):
        s.put(f"k{i:02d}")
    delivered: list[str] = []
    deadline = time.monotonic() + 30
    while len(delivered) < 13 and time.monotonic() < deadline:
        delivered += [k for call in s.invocations(1, timeout=2) for k in call.keys]
    assert delivered == [f"k{i:02d}" for i in range(13)]  # parents first, nothing twice
    s.assert_no_more()


def test_the_runner_resumes_at_trim_horizon_after_the_emulator_trims_its_checkpoint(
    embedded_emulator: Emulator,
    scenario: Callable[..., Scenario],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = scenario()
    uuid = s.map(BatchSize=10)
    s.put("a")
    first = s.runner()
    first.wait_until(lambda st: st[uuid]["succeeded"] == 1, timeout=30)
    first.stop()
    assert [k for call in s.invocations(1) for k in call.keys] == ["a"]
    s.put("b")  # written while no runner reads: it will be trimmed before anyone does
    time.sleep(3.5)  # the scenario: "b" ages past the 3 s retention set next
    monkeypatch.setenv("STREAMKIT_EMULATOR_RETENTION_SECONDS", "3")
    second = s.runner()
    second.wait_until(lambda st: st[uuid]["trimmed_gaps"] == 1, timeout=30)
    s.put("c")  # fresh: read well within the retention
    second.wait_until(lambda st: st[uuid]["succeeded"] == 1, timeout=30)
    assert [k for call in s.invocations(1) for k in call.keys] == ["c"]
    assert second.stats()[uuid]["trimmed_gaps"] == 1
