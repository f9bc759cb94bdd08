"""Stream records in the exact shape Lambda delivers them (streamkit.streams.envelope)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from tests.helpers.fake_streams import FakeStreamsClient

from streamkit.streams.envelope import LambdaRecordConverter


def test_records_have_the_exact_lambda_shape(streams: FakeStreamsClient) -> None:
    arn = streams.create_stream("orders", view_type="NEW_AND_OLD_IMAGES")
    created = dt.datetime(2024, 5, 1, 12, 0, 7, 654321, tzinfo=dt.UTC)
    streams.put(
        arn,
        "o-1",
        event_name="MODIFY",
        new_image={
            "blob": {"B": b"\x00\xff"},
            "tags": {"BS": [b"a"]},
            "m": {"M": {"x": {"B": b"b"}}},
        },
        old_image={"n": {"N": "1"}},
        created=created,
    )
    raw = streams.get_records(
        ShardIterator=streams.get_shard_iterator(
            StreamArn=arn, ShardId=streams.shard_ids(arn)[0], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
    )["Records"][0]
    record = LambdaRecordConverter(arn)(raw)
    assert list(record) == [
        "eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN",
    ]  # fmt: skip
    assert record["eventName"] == "MODIFY"
    assert record["eventSource"] == "aws:dynamodb"
    assert record["awsRegion"] == "us-east-1"
    assert record["eventSourceARN"] == arn
    body = record["dynamodb"]
    assert list(body) == [
        "ApproximateCreationDateTime", "Keys", "NewImage", "OldImage", "SequenceNumber", "SizeBytes", "StreamViewType",
    ]  # fmt: skip
    # DynamoDB rounds the creation time down to the second; Lambda sends epoch seconds.
    assert body["ApproximateCreationDateTime"] == 1714564807.0
    assert body["Keys"] == {"pk": {"S": "o-1"}}
    assert body["NewImage"]["blob"] == {"B": "AP8="}
    assert body["NewImage"]["tags"] == {"BS": ["YQ=="]}
    assert body["NewImage"]["m"] == {"M": {"x": {"B": "Yg=="}}}
    assert body["OldImage"] == {"pk": {"S": "o-1"}, "n": {"N": "1"}}
    assert body["StreamViewType"] == "NEW_AND_OLD_IMAGES"
    json.dumps(record)  # JSON-serialisable as sent to the function


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2024, 5, 1, 12, 0, 7, tzinfo=dt.UTC),
        1714564807,
        1714564807.9,
        1714564807000,
        "2024-05-01T12:00:07Z",
        "1714564807",
    ],
)
def test_creation_time_is_normalised_from_any_form(value: Any) -> None:
    arn = "arn:aws:dynamodb:eu-west-1:123456789012:table/t/stream/L"
    raw = {
        "eventID": "e",
        "eventName": "INSERT",
        "dynamodb": {"ApproximateCreationDateTime": value, "Keys": {}, "SequenceNumber": "1"},
    }
    record = LambdaRecordConverter(arn)(raw)
    assert record["dynamodb"]["ApproximateCreationDateTime"] == 1714564807.0
    assert record["awsRegion"] == "eu-west-1"
