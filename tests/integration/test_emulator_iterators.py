"""The embedded emulator forgets a shard iterator once GetRecords has consumed it, so a reader
polling an idle stream does not grow the emulator's memory; reusing one is an expired iterator."""

from __future__ import annotations

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


def test_idle_polling_keeps_the_iterator_count_flat(
    embedded_emulator: Emulator, aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    stream_arn = create_stream_table(aws.dynamodb, unique_name("iters"))
    streams = aws.dynamodbstreams
    shard_id = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0][
        "ShardId"
    ]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    aws.dynamodb.put_item(TableName=stream_arn.split("/")[1], Item={"pk": {"S": "a"}})
    before = iterator_count()
    seen = []
    for _ in range(50):  # an idle reader's polls, following NextShardIterator
        response = streams.get_records(ShardIterator=iterator, Limit=100)
        seen += [r["dynamodb"]["Keys"]["pk"]["S"] for r in response["Records"]]
        iterator = response["NextShardIterator"]
    assert seen == ["a"]
    # Other tests may poll concurrently; without the patch this would be +50.
    assert iterator_count() - before <= 5


def test_a_consumed_iterator_cannot_be_used_again(
    embedded_emulator: Emulator, aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    stream_arn = create_stream_table(aws.dynamodb, unique_name("iters"))
    streams = aws.dynamodbstreams
    shard_id = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0][
        "ShardId"
    ]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    response = streams.get_records(ShardIterator=iterator)
    with pytest.raises(ClientError) as reused:
        streams.get_records(ShardIterator=iterator)
    assert reused.value.response["Error"]["Code"] == "ExpiredIteratorException"
    assert reused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # The iterator it handed out instead works, once.
    streams.get_records(ShardIterator=response["NextShardIterator"])
    with pytest.raises(ClientError) as unknown:
        streams.get_records(ShardIterator=iterator[:-8] + "AAAAAAAA")
    assert unknown.value.response["Error"]["Code"] == "ExpiredIteratorException"
