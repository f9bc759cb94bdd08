"""Shard iterators as DynamoDB Streams hands them out: reusable until they expire, with no
state kept per iterator (an idle reader's polling does not grow the emulator's memory), and
TrimmedDataAccessException for data older than the retention period."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from botocore.exceptions import ClientError

from streamkit.local.emulator import Emulator
from tests.helpers import AwsClients
from tests.helpers.streams import create_stream_table


def iterator_count(region: str = "us-east-1") -> int:
    from moto.core.models import DEFAULT_ACCOUNT_ID
    from moto.dynamodbstreams.models import dynamodbstreams_backends

    return len(dynamodbstreams_backends[DEFAULT_ACCOUNT_ID][region].shard_iterators)


def _first_shard_iterator(aws: AwsClients, stream_arn: str, kind: str = "TRIM_HORIZON") -> str:
    streams = aws.dynamodbstreams
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    iterator: str = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType=kind
    )["ShardIterator"]
    return iterator


def test_idle_polling_keeps_no_iterator_state(
    embedded_emulator: Emulator, aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    stream_arn = create_stream_table(aws.dynamodb, unique_name("iters"))
    iterator = _first_shard_iterator(aws, stream_arn)
    aws.dynamodb.put_item(TableName=stream_arn.split("/")[1], Item={"pk": {"S": "a"}})
    before = iterator_count()
    seen = []
    for _ in range(50):  # an idle reader's polls, following NextShardIterator
        response = aws.dynamodbstreams.get_records(ShardIterator=iterator, Limit=100)
        seen += [r["dynamodb"]["Keys"]["pk"]["S"] for r in response["Records"]]
        iterator = response["NextShardIterator"]
    assert seen == ["a"]
    assert iterator_count() == before


def test_an_iterator_may_be_used_again_until_it_expires(
    embedded_emulator: Emulator,
    aws: AwsClients,
    unique_name: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMKIT_EMULATOR_ITERATOR_SECONDS", "1.5")
    table = unique_name("iters")
    stream_arn = create_stream_table(aws.dynamodb, table)
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}})
    iterator = _first_shard_iterator(aws, stream_arn)
    first = aws.dynamodbstreams.get_records(ShardIterator=iterator)
    again = aws.dynamodbstreams.get_records(ShardIterator=iterator)  # AWS allows a reuse
    assert [r["eventID"] for r in again["Records"]] == [r["eventID"] for r in first["Records"]]
    time.sleep(1.8)  # the scenario: the iterator outlives its 1.5 s lifetime
    with pytest.raises(ClientError) as expired:
        aws.dynamodbstreams.get_records(ShardIterator=iterator)
    assert expired.value.response["Error"]["Code"] == "ExpiredIteratorException"
    assert "tolerated delay of 1500 milliseconds" in expired.value.response["Error"]["Message"]
    assert expired.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_a_forged_iterator_is_a_validation_error(
    embedded_emulator: Emulator, aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    stream_arn = create_stream_table(aws.dynamodb, unique_name("iters"))
    with pytest.raises(ClientError) as caught:
        aws.dynamodbstreams.get_records(ShardIterator=f"{stream_arn}|1|not-a-token")
    assert caught.value.response["Error"]["Code"] == "ValidationException"


def test_records_older_than_the_retention_period_are_trimmed(
    embedded_emulator: Emulator,
    aws: AwsClients,
    unique_name: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    table = unique_name("trim")
    stream_arn = create_stream_table(aws.dynamodb, table)
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "old"}})
    stale = _first_shard_iterator(aws, stream_arn)
    old_sequence = aws.dynamodbstreams.get_records(ShardIterator=stale)["Records"][0]["dynamodb"][
        "SequenceNumber"
    ]
    time.sleep(2.5)  # the scenario: "old" ages past the 2 s retention set next
    monkeypatch.setenv("STREAMKIT_EMULATOR_RETENTION_SECONDS", "2")
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "new"}})

    with pytest.raises(ClientError) as behind:  # the iterator points at a trimmed record
        aws.dynamodbstreams.get_records(ShardIterator=stale)
    assert behind.value.response["Error"]["Code"] == "TrimmedDataAccessException"
    shard_id = aws.dynamodbstreams.describe_stream(StreamArn=stream_arn)["StreamDescription"][
        "Shards"
    ][0]["ShardId"]
    with pytest.raises(ClientError) as at_old:
        aws.dynamodbstreams.get_shard_iterator(
            StreamArn=stream_arn,
            ShardId=shard_id,
            ShardIteratorType="AT_SEQUENCE_NUMBER",
            SequenceNumber=old_sequence,
        )
    assert at_old.value.response["Error"]["Code"] == "TrimmedDataAccessException"

    horizon = _first_shard_iterator(aws, stream_arn)  # TRIM_HORIZON starts after the gap
    records = aws.dynamodbstreams.get_records(ShardIterator=horizon)["Records"]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in records] == ["new"]
