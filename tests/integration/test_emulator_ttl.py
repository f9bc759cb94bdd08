"""Time to Live: the emulator deletes expired items with a REMOVE record whose userIdentity is
the DynamoDB service, as DynamoDB does (TTL-driven routes recognise deletions by it)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from streamkit import parse_event
from streamkit.local.emulator import Emulator
from tests.helpers import AwsClients, create_stream_table, read_stream
from tests.integration import test_runner as base
from tests.integration.test_runner import Scenario

scenario = base.scenario  # the fixture, shared


def test_expired_items_are_deleted_by_the_service(
    embedded_emulator: Emulator,
    aws: AwsClients,
    unique_name: Callable[[str], str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMKIT_EMULATOR_TTL_SWEEP_SECONDS", "0.2")
    table = unique_name("ttl")
    stream_arn = create_stream_table(aws.dynamodb, table)
    aws.dynamodb.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )
    now = int(time.time())
    items = {
        "expired": {"N": str(now - 10)},
        "future": {"N": str(now + 3600)},
        "not-a-number": {"S": str(now - 10)},
        "ancient": {"N": str(now - 6 * 365 * 86400)},  # over five years: DynamoDB ignores it
    }
    for key, expires in items.items():
        aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": key}, "expires_at": expires})
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "no-ttl"}})

    deadline = time.monotonic() + 15
    removes: list[dict[str, object]] = []
    while not removes and time.monotonic() < deadline:
        removes = [
            r for r in read_stream(aws.dynamodbstreams, stream_arn) if r["eventName"] == "REMOVE"
        ]
        time.sleep(0.2)
    time.sleep(0.6)  # a few more sweeps: nothing else may go
    removes = [
        r for r in read_stream(aws.dynamodbstreams, stream_arn) if r["eventName"] == "REMOVE"
    ]
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in removes] == ["expired"]  # type: ignore[index]
    assert removes[0]["userIdentity"] == {  # GetRecords' Identity shape
        "PrincipalId": "dynamodb.amazonaws.com",
        "Type": "Service",
    }
    left = aws.dynamodb.scan(TableName=table)["Items"]
    assert sorted(i["pk"]["S"] for i in left) == ["ancient", "future", "no-ttl", "not-a-number"]
    assert removes[0]["dynamodb"]["OldImage"]["expires_at"] == {"N": str(now - 10)}  # type: ignore[index]


def test_a_users_delete_carries_no_service_identity(
    aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    table = unique_name("ttl")
    stream_arn = create_stream_table(aws.dynamodb, table)
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}})
    aws.dynamodb.delete_item(TableName=table, Key={"pk": {"S": "a"}})
    remove = read_stream(aws.dynamodbstreams, stream_arn)[-1]
    assert remove["eventName"] == "REMOVE" and "userIdentity" not in remove


def test_the_runner_delivers_ttl_deletes_as_lambda_does(
    embedded_emulator: Emulator,
    scenario: Callable[..., Scenario],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STREAMKIT_EMULATOR_TTL_SWEEP_SECONDS", "0.2")
    s = scenario()
    s.aws.dynamodb.update_time_to_live(
        TableName=s.table, TimeToLiveSpecification={"Enabled": True, "AttributeName": "ttl"}
    )
    uuid = s.map(FilterCriteria={"Filters": [{"Pattern": '{"eventName": ["REMOVE"]}'}]})
    s.put("session", ttl={"N": str(int(time.time()) - 1)})
    runner = s.runner()
    runner.wait_until(lambda st: st[uuid]["succeeded"] >= 1, timeout=30)
    (call,) = s.invocations(1)
    (raw,) = call.records
    assert raw["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    (record,) = parse_event({"Records": call.records})
    assert record.is_ttl_delete and record.keys == {"pk": "session"}
