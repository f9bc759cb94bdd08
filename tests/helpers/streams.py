"""Create stream-enabled tables and read their streams, for tests."""

from __future__ import annotations

from typing import Any

__all__ = ["create_plain_table", "create_stream_table", "lambda_records", "read_stream"]


def create_plain_table(dynamodb_client: Any, name: str, key: str = "pk") -> str:
    """Create an on-demand table with one string hash key and no stream; returns its name."""
    dynamodb_client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return name


def create_stream_table(
    dynamodb_client: Any,
    name: str,
    *,
    view_type: str = "NEW_AND_OLD_IMAGES",
    hash_key: str = "pk",
    range_key: str | None = None,
) -> str:
    """Create an on-demand table with string keys and a stream; returns the stream ARN."""
    key_schema = [{"AttributeName": hash_key, "KeyType": "HASH"}]
    attributes = [{"AttributeName": hash_key, "AttributeType": "S"}]
    if range_key is not None:
        key_schema.append({"AttributeName": range_key, "KeyType": "RANGE"})
        attributes.append({"AttributeName": range_key, "AttributeType": "S"})
    response = dynamodb_client.create_table(
        TableName=name,
        KeySchema=key_schema,
        AttributeDefinitions=attributes,
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": view_type},
    )
    if response["TableDescription"].get("TableStatus") != "ACTIVE":
        dynamodb_client.get_waiter("table_exists").wait(TableName=name)
    arn: str = response["TableDescription"]["LatestStreamArn"]
    return arn


def read_stream(
    streams_client: Any, stream_arn: str, *, max_calls: int = 100
) -> list[dict[str, Any]]:
    """Every record currently in the stream, shard by shard from TRIM_HORIZON.

    A shard is read until GetRecords returns no records (an open shard never ends), or at most
    ``max_calls`` GetRecords calls in all.
    """
    description = streams_client.describe_stream(StreamArn=stream_arn)["StreamDescription"]
    records: list[dict[str, Any]] = []
    calls = 0
    for shard in description["Shards"]:
        iterator = streams_client.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        ).get("ShardIterator")
        while iterator and calls < max_calls:
            calls += 1
            response = streams_client.get_records(ShardIterator=iterator)
            if not response["Records"]:
                break
            records.extend(response["Records"])
            iterator = response.get("NextShardIterator")
    return records


def lambda_records(
    streams_client: Any, stream_arn: str, *, max_calls: int = 500
) -> list[dict[str, Any]]:
    """Every record of the stream (as :func:`read_stream` reads it), shaped as in a Lambda
    event (epoch-seconds creation time, ``eventSourceARN``), to replay a stream through a
    handler in-process."""
    out = []
    for record in read_stream(streams_client, stream_arn, max_calls=max_calls):
        body = dict(record["dynamodb"])
        body["ApproximateCreationDateTime"] = body["ApproximateCreationDateTime"].timestamp()
        out.append({**record, "dynamodb": body, "eventSourceARN": stream_arn})
    return out
