"""Stream records as DynamoDB writes them: eventVersion, SizeBytes, no-op writes, upserts.

SizeBytes figures are AWS's, recorded in LocalStack's snapshot
tests/aws/services/lambda_/event_source_mapping/test_lambda_integration_dynamodbstreams.snapshot.json.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from streamkit.local.emulator.stream_records import item_size
from tests.helpers import AwsClients, create_stream_table, read_stream


def _table(
    aws: AwsClients, unique_name: Callable[[str], str], view: str, key: str
) -> tuple[str, str]:
    name = unique_name("records")
    return name, create_stream_table(aws.dynamodb, name, view_type=view, hash_key=key)


def test_records_carry_event_version_1_1_and_dynamodbs_size(
    aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    table, stream = _table(aws, unique_name, "NEW_AND_OLD_IMAGES", "id")
    aws.dynamodb.put_item(TableName=table, Item={"id": {"S": "id_value"}})
    aws.dynamodb.put_item(
        TableName=table, Item={"id": {"S": "id_value"}, "id2": {"S": "id2_new_value"}}
    )
    records = read_stream(aws.dynamodbstreams, stream)
    assert [r["eventVersion"] for r in records] == ["1.1", "1.1"]
    assert [(r["eventName"], r["dynamodb"]["SizeBytes"]) for r in records] == [
        ("INSERT", 20),
        ("MODIFY", 46),
    ]


def test_size_counts_only_the_images_the_view_type_carries(
    aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    table, stream = _table(aws, unique_name, "NEW_IMAGE", "my_partition_key")
    item = {"my_partition_key": {"S": "hello world"}, "binary_key": {"B": b"foobar"}}
    aws.dynamodb.put_item(TableName=table, Item=item)
    aws.dynamodb.delete_item(TableName=table, Key={"my_partition_key": {"S": "hello world"}})
    records = read_stream(aws.dynamodbstreams, stream)
    # INSERT: 27 (keys) + 43 (NewImage) as AWS recorded; REMOVE under NEW_IMAGE: the keys only.
    assert [(r["eventName"], r["dynamodb"]["SizeBytes"]) for r in records] == [
        ("INSERT", 70),
        ("REMOVE", 27),
    ]


@pytest.mark.parametrize(
    ("image", "size"),
    [
        ({"n": {"N": "12345"}}, 1 + 4),  # 5 significant digits: 3 bytes + 1
        ({"n": {"N": "-0.00100"}}, 1 + 2),  # zeros trimmed: one digit
        ({"flag": {"BOOL": True}, "nothing": {"NULL": True}}, 4 + 7 + 2),
        ({"m": {"M": {"a": {"S": "xy"}}}}, 1 + 3 + 1 + 1 + 2),  # overhead, element byte, a, xy
        ({"l": {"L": [{"S": "a"}, {"N": "1"}]}}, 1 + 3 + (1 + 1) + (1 + 2)),
        ({"ss": {"SS": ["ab", "c"]}}, 2 + 3),
        ({"é": {"S": "ü"}}, 2 + 2),  # UTF-8 bytes, not characters
    ],
)
def test_item_size_follows_dynamodbs_rules(image: dict[str, Any], size: int) -> None:
    assert item_size(image) == size


def test_a_write_that_changes_nothing_adds_no_record(
    aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    table, stream = _table(aws, unique_name, "NEW_AND_OLD_IMAGES", "pk")
    item = {"pk": {"S": "a"}, "n": {"N": "1.50"}, "tags": {"SS": ["x", "y"]}}
    aws.dynamodb.put_item(TableName=table, Item=item)
    aws.dynamodb.put_item(TableName=table, Item=item)  # identical
    aws.dynamodb.put_item(TableName=table, Item={**item, "n": {"N": "1.5"}})  # same number
    aws.dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": "a"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "1.5"}},
    )
    aws.dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": "a"}},
        UpdateExpression="SET n = :n",
        ExpressionAttributeValues={":n": {"N": "2"}},
    )
    records = read_stream(aws.dynamodbstreams, stream)
    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY"]
    assert records[1]["dynamodb"]["NewImage"]["n"] == {"N": "2"}


def test_update_item_that_creates_the_item_is_one_insert_with_the_whole_item(
    aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    table, stream = _table(aws, unique_name, "NEW_AND_OLD_IMAGES", "pk")
    aws.dynamodb.update_item(
        TableName=table,
        Key={"pk": {"S": "new"}},
        UpdateExpression="SET #s = :s, qty = :q",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "PAID"}, ":q": {"N": "3"}},
    )
    records = read_stream(aws.dynamodbstreams, stream)
    assert len(records) == 1
    body = records[0]["dynamodb"]
    assert records[0]["eventName"] == "INSERT"
    assert body["NewImage"] == {"pk": {"S": "new"}, "status": {"S": "PAID"}, "qty": {"N": "3"}}
    assert "OldImage" not in body


def test_transactional_upsert_is_one_insert(
    aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    table, stream = _table(aws, unique_name, "NEW_AND_OLD_IMAGES", "pk")
    aws.dynamodb.transact_write_items(
        TransactItems=[
            {
                "Update": {
                    "TableName": table,
                    "Key": {"pk": {"S": "t"}},
                    "UpdateExpression": "SET v = :v",
                    "ExpressionAttributeValues": {":v": {"S": "1"}},
                }
            }
        ]
    )
    records = read_stream(aws.dynamodbstreams, stream)
    assert [(r["eventName"], r["dynamodb"]["NewImage"]) for r in records] == [
        ("INSERT", {"pk": {"S": "t"}, "v": {"S": "1"}})
    ]


def test_records_round_trip_every_attribute_type(
    aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    # GetRecords is served by the emulator's own writer (streams_api): the answer must parse
    # to exactly what was written, and the creation time must be the write's.
    table, stream = _table(aws, unique_name, "NEW_AND_OLD_IMAGES", "pk")
    item = {
        "pk": {"S": "all"},
        "n": {"N": "-12.50"},
        "b": {"B": b"\x00\xffbytes"},
        "bs": {"BS": [b"a", b"\x01"]},
        "ns": {"NS": ["1", "2.5"]},
        "ss": {"SS": ["x", "é"]},
        "m": {"M": {"deep": {"L": [{"NULL": True}, {"BOOL": False}, {"S": "ü"}]}}},
    }
    before = time.time()
    aws.dynamodb.put_item(TableName=table, Item=item)
    (record,) = read_stream(aws.dynamodbstreams, stream)
    body = record["dynamodb"]
    assert body["NewImage"]["b"] == {"B": b"\x00\xffbytes"}
    assert sorted(body["NewImage"]["bs"]["BS"]) == sorted([b"a", b"\x01"])
    assert {k: v for k, v in body["NewImage"].items() if k not in ("b", "bs", "ns", "ss")} == {
        k: v for k, v in item.items() if k not in ("b", "bs", "ns", "ss")
    }
    assert sorted(body["NewImage"]["ss"]["SS"]) == ["x", "é"]
    assert abs(body["ApproximateCreationDateTime"].timestamp() - before) < 5
    assert record["awsRegion"] == aws.region
