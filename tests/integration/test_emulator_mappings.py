"""Event source mapping answers as Lambda gives them: states, status codes, conflicts.

The expected answers are AWS's, as recorded in LocalStack's snapshot
tests/aws/services/lambda_/event_source_mapping/test_lambda_integration_dynamodbstreams.snapshot.json
(see streamkit/local/emulator/esm_lifecycle.py).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from streamkit.local.emulator import Emulator
from streamkit.local.emulator.esm_lifecycle import TRANSITION_SECONDS_ENV
from tests.helpers import (
    AwsClients,
    create_function,
    create_stream_table,
    wait_for_mapping_gone,
    wait_for_mapping_settled,
)
from tests.integration import test_runner as base
from tests.integration.test_runner import Scenario

scenario = base.scenario  # the fixture, shared
HANDLER_FILES = {"app.py": "def handler(event, context):\n    return None\n"}


@pytest.fixture
def slow_transitions(
    embedded_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> Iterator[float]:
    """Transitions long enough to observe under load (the emulator runs in this process)."""
    monkeypatch.setenv(TRANSITION_SECONDS_ENV, "1.5")
    yield 1.5


@pytest.fixture
def stream_and_function(aws: AwsClients, unique_name: Callable[[str], str]) -> tuple[str, str]:
    stream_arn = create_stream_table(aws.dynamodb, unique_name("src"))
    function = unique_name("fn")
    create_function(aws.lambda_, function, HANDLER_FILES)
    return stream_arn, function


def _create(aws: AwsClients, stream_arn: str, function: str, **extra: Any) -> dict[str, Any]:
    extra.setdefault("StartingPosition", "LATEST")
    mapping: dict[str, Any] = aws.lambda_.create_event_source_mapping(
        EventSourceArn=stream_arn, FunctionName=function, **extra
    )
    return mapping


def _states_until_settled(aws: AwsClients, uuid: str) -> list[str]:
    """Every distinct State GetEventSourceMapping shows until Enabled or Disabled."""
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        state = aws.lambda_.get_event_source_mapping(UUID=uuid)["State"]
        if not seen or seen[-1] != state:
            seen.append(state)
        if state in ("Enabled", "Disabled"):
            break
        time.sleep(0.05)
    return seen


def test_create_answers_202_creating_then_enabled(
    aws: AwsClients, stream_and_function: tuple[str, str], slow_transitions: float
) -> None:
    stream_arn, function = stream_and_function
    created = _create(aws, stream_arn, function)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert {k: created.get(k) for k in _LIFECYCLE_FIELDS} == {
        "State": "Creating",
        "StateTransitionReason": "User action",
        "LastProcessingResult": "No records processed",
        "DestinationConfig": {"OnFailure": {}},
    }
    assert _states_until_settled(aws, created["UUID"]) == ["Creating", "Enabled"]


_LIFECYCLE_FIELDS = ("State", "StateTransitionReason", "LastProcessingResult", "DestinationConfig")


def test_created_disabled_settles_to_disabled(
    aws: AwsClients, stream_and_function: tuple[str, str]
) -> None:
    stream_arn, function = stream_and_function
    created = _create(aws, stream_arn, function, Enabled=False)
    assert created["State"] == "Creating"
    assert wait_for_mapping_settled(aws.lambda_, created["UUID"])["State"] == "Disabled"


def test_updates_go_through_lambdas_transitional_states(
    aws: AwsClients, stream_and_function: tuple[str, str], slow_transitions: float
) -> None:
    stream_arn, function = stream_and_function
    uuid = _create(aws, stream_arn, function)["UUID"]
    wait_for_mapping_settled(aws.lambda_, uuid)

    disabled = aws.lambda_.update_event_source_mapping(UUID=uuid, Enabled=False)
    assert disabled["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert disabled["State"] == "Disabling"
    assert _states_until_settled(aws, uuid) == ["Disabling", "Disabled"]

    enabled = aws.lambda_.update_event_source_mapping(UUID=uuid, Enabled=True)
    assert enabled["State"] == "Enabling"
    assert _states_until_settled(aws, uuid) == ["Enabling", "Enabled"]

    resized = aws.lambda_.update_event_source_mapping(UUID=uuid, BatchSize=10)
    assert resized["State"] == "Updating"
    assert resized["StateTransitionReason"] == "User action"
    assert _states_until_settled(aws, uuid) == ["Updating", "Enabled"]


def test_delete_answers_deleting_and_the_mapping_stays_listed_until_gone(
    aws: AwsClients, stream_and_function: tuple[str, str], slow_transitions: float
) -> None:
    stream_arn, function = stream_and_function
    uuid = _create(aws, stream_arn, function)["UUID"]
    deleted = aws.lambda_.delete_event_source_mapping(UUID=uuid)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert deleted["State"] == "Deleting"
    listed = aws.lambda_.list_event_source_mappings(EventSourceArn=stream_arn)
    assert [(m["UUID"], m["State"]) for m in listed["EventSourceMappings"]] == [(uuid, "Deleting")]
    assert wait_for_mapping_gone(aws.lambda_, uuid)
    assert (
        aws.lambda_.list_event_source_mappings(EventSourceArn=stream_arn)["EventSourceMappings"]
        == []
    )


def test_second_mapping_of_the_same_function_and_stream_is_a_conflict(
    aws: AwsClients, unique_name: Callable[[str], str], stream_and_function: tuple[str, str]
) -> None:
    stream_arn, function = stream_and_function
    first = _create(aws, stream_arn, function)
    with pytest.raises(ClientError) as caught:
        _create(aws, stream_arn, function, BatchSize=5)
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409
    assert caught.value.response["Error"] == {
        "Code": "ResourceConflictException",
        "Message": (
            f'The event source arn (" {stream_arn} ") and function (" {function} ") provided '
            "mapping already exists. Please update or delete the existing mapping with UUID "
            f"{first['UUID']}"
        ),
    }
    other = unique_name("fn")
    create_function(aws.lambda_, other, HANDLER_FILES)
    second = _create(aws, stream_arn, other)  # another function on the same stream is fine
    listed = aws.lambda_.list_event_source_mappings(EventSourceArn=stream_arn)
    assert sorted(m["UUID"] for m in listed["EventSourceMappings"]) == sorted(
        [first["UUID"], second["UUID"]]
    )


def test_mapping_outlives_its_table(aws: AwsClients, unique_name: Callable[[str], str]) -> None:
    table = unique_name("gone")
    stream_arn = create_stream_table(aws.dynamodb, table)
    function = unique_name("fn")
    create_function(aws.lambda_, function, HANDLER_FILES)
    uuid = _create(aws, stream_arn, function)["UUID"]
    aws.dynamodb.delete_table(TableName=table)
    listed = aws.lambda_.list_event_source_mappings(FunctionName=function)
    assert [m["UUID"] for m in listed["EventSourceMappings"]] == [uuid]
    assert aws.lambda_.get_event_source_mapping(UUID=uuid)["EventSourceArn"] == stream_arn


def _post_result(endpoint_url: str, uuid: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        f"{endpoint_url}/_streamkit/event-source-mappings/{uuid}/processing-result",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_runner_reported_result_shows_as_last_processing_result(
    aws: AwsClients, embedded_emulator: Emulator, stream_and_function: tuple[str, str]
) -> None:
    stream_arn, function = stream_and_function
    uuid = _create(aws, stream_arn, function)["UUID"]
    endpoint = embedded_emulator.endpoint_url
    assert _post_result(endpoint, uuid, {"LastProcessingResult": "OK"}) == 204
    assert aws.lambda_.get_event_source_mapping(UUID=uuid)["LastProcessingResult"] == "OK"
    unknown = "00000000-0000-0000-0000-000000000000"
    assert _post_result(endpoint, unknown, {"LastProcessingResult": "OK"}) == 404
    assert _post_result(endpoint, uuid, {"Result": "OK"}) == 400


def test_the_runner_reports_ok_after_a_batch(
    embedded_emulator: Emulator, scenario: Callable[..., Scenario]
) -> None:
    s = scenario()
    uuid = s.map()
    assert s.aws.lambda_.get_event_source_mapping(UUID=uuid)["LastProcessingResult"] == (
        "No records processed"
    )
    s.put("a")
    runner = s.runner()
    runner.wait_until(lambda st: st[uuid]["succeeded"] >= 1, timeout=30)
    deadline = time.monotonic() + 10
    result = None
    while result != "OK" and time.monotonic() < deadline:
        result = s.aws.lambda_.get_event_source_mapping(UUID=uuid)["LastProcessingResult"]
        time.sleep(0.1)
    assert result == "OK"


@pytest.mark.parametrize(
    ("position", "message"),
    [
        ("LATEST", "Timestamp only valid with StartingPosition AT_TIMESTAMP"),
        ("AT_TIMESTAMP", "Unsupported starting position for arn type: {arn}"),
    ],
)
def test_a_starting_timestamp_is_refused_as_lambda_refuses_it(
    aws: AwsClients, stream_and_function: tuple[str, str], position: str, message: str
) -> None:
    stream_arn, function = stream_and_function
    with pytest.raises(ClientError) as caught:
        _create(aws, stream_arn, function, StartingPosition=position, StartingPositionTimestamp=1)
    assert caught.value.response["Error"] == {
        "Code": "InvalidParameterValueException",
        "Message": message.format(arn=stream_arn),
    }
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
