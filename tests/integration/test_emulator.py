"""The embedded emulator: lifecycle, CLI, and the moto behaviours it corrects.

Tests that take the ``aws``/``endpoint_url`` fixtures also run against STREAMKIT_ENDPOINT_URL
(e.g. LocalStack); the ones about the emulator itself start their own or need the embedded one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from streamkit.exceptions import EmulatorError, PortInUseError
from streamkit.local.emulator import HEALTH_PATH, Emulator
from streamkit.local.emulator.moto_patches import request_base_url_fallback
from tests.helpers import (
    AwsClients,
    create_function,
    create_stream_table,
    ensure_lambda_role,
    make_zip,
    read_stream,
    wait_for_mapping_gone,
    wait_for_mapping_settled,
)
from tests.helpers.queues import create_queue

REPO_ROOT = Path(__file__).resolve().parents[2]
HANDLER_FILES = {"app.py": "def handler(event, context):\n    return None\n"}


def _sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        body: bytes = response.read()
    return body


def _answers(endpoint_url: str) -> bool:
    try:
        _fetch(f"{endpoint_url}{HEALTH_PATH}")
    except OSError:
        return False
    return True


def _running(emulator: Emulator) -> bool:
    # A function, not the property inline: mypy would keep an earlier assert's narrowing.
    return emulator.running


@pytest.fixture
def listening_socket() -> Iterator[socket.socket]:
    """A port on 127.0.0.1 that another program is listening on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    yield sock
    sock.close()


# --- lifecycle ----------------------------------------------------------------------------------


def test_start_serves_http_and_stop_releases_the_port() -> None:
    emulator = Emulator(port=0)
    emulator.start()
    try:
        port = emulator.port
        assert port > 0
        assert emulator.endpoint_url == f"http://127.0.0.1:{port}"
        assert _running(emulator)
        assert emulator.startup_seconds is not None and emulator.startup_seconds > 0
        assert _answers(emulator.endpoint_url)
        identity = AwsClients(emulator.endpoint_url).client("sts").get_caller_identity()
        assert identity["Account"] == "123456789012"  # moto answers behind the middleware
    finally:
        emulator.stop()
    assert not _running(emulator)
    assert not _answers(f"http://127.0.0.1:{port}")
    emulator.stop()  # a second stop is harmless

    # The port is free again: a new emulator can take it straight away.
    with Emulator(port=port) as again:
        assert again.port == port
        assert _answers(again.endpoint_url)


def test_context_manager_stops_on_exit() -> None:
    with Emulator() as emulator:
        endpoint = emulator.endpoint_url
        assert _answers(endpoint)
    assert not _answers(endpoint)


def test_health_probe_is_answered_by_the_emulator_itself(embedded_emulator: Emulator) -> None:
    url = f"{embedded_emulator.endpoint_url}{HEALTH_PATH}"
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert json.loads(response.read()) == {"status": "ok"}
    head = urllib.request.Request(url, method="HEAD")
    with urllib.request.urlopen(head, timeout=30) as response:
        assert response.status == 200
        assert response.headers["Content-Length"] == str(len(b'{"status": "ok"}'))
        assert response.read() == b""


def test_a_new_emulator_starts_while_functions_exist(
    embedded_emulator: Emulator, unique_name: Callable[[str], str]
) -> None:
    # moto's state is per process, so a function made on the session emulator exists for every
    # emulator started later in this process. The readiness probe used to be moto's
    # /moto-api/data.json, which fails with HTTP 500 once a function exists (no docker): start()
    # then retried for 30 s and gave up. No reset here: other tests own the shared resources.
    from moto.awslambda.models import lambda_backends
    from moto.core.models import DEFAULT_ACCOUNT_ID

    session = AwsClients(embedded_emulator.endpoint_url)
    function = unique_name("existing")
    create_function(session.lambda_, function, HANDLER_FILES)
    in_process = lambda_backends[DEFAULT_ACCOUNT_ID][session.region].list_functions()
    assert function in [f.function_name for f in in_process]  # the state the new one will share

    fresh = Emulator(port=0)
    fresh.start()
    try:
        assert fresh.startup_seconds is not None and fresh.startup_seconds < 5
        assert fresh.port != embedded_emulator.port
        seen = AwsClients(fresh.endpoint_url).lambda_.get_function(FunctionName=function)
        assert seen["Code"]["Location"].startswith(f"{fresh.endpoint_url}/_streamkit/")
        assert request_base_url_fallback() == fresh.endpoint_url
    finally:
        fresh.stop()

    # Stopping it leaves the session emulator, its resources and its URL fallback in place.
    assert _answers(embedded_emulator.endpoint_url)
    assert session.lambda_.get_function(FunctionName=function)["Configuration"]["FunctionName"] == (
        function
    )
    assert request_base_url_fallback() == embedded_emulator.endpoint_url


def test_port_in_use_is_a_clear_error(listening_socket: socket.socket) -> None:
    port = listening_socket.getsockname()[1]
    emulator = Emulator(host="127.0.0.1", port=port)
    with pytest.raises(PortInUseError) as caught:
        emulator.start()
    assert caught.value.port == port
    assert f"127.0.0.1:{port}" in str(caught.value)
    assert "--port 0" in str(caught.value)
    assert isinstance(caught.value, EmulatorError)
    assert not _running(emulator)


def test_endpoint_before_start_is_an_error() -> None:
    with pytest.raises(EmulatorError, match="not running"):
        _ = Emulator().endpoint_url


def test_starting_twice_is_an_error() -> None:
    with Emulator() as emulator, pytest.raises(EmulatorError, match="already running"):
        emulator.start()


def test_reset_drops_every_resource() -> None:
    # moto's state is process-wide, so a reset here would also wipe the session emulator's
    # resources; run it in a process of its own. A function is among the resources: moto's
    # Lambda model is the one that breaks its data dump, and must not break reset.
    script = textwrap.dedent(
        """
        import boto3
        from streamkit.local.emulator import Emulator
        from tests.helpers import create_function
        with Emulator() as emu:
            ddb = boto3.client("dynamodb", endpoint_url=emu.endpoint_url)
            lam = boto3.client("lambda", endpoint_url=emu.endpoint_url)
            ddb.create_table(
                TableName="t",
                KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            create_function(lam, "f", {"app.py": "def handler(event, context):\\n    pass\\n"})
            def names():
                functions = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
                return ddb.list_tables()["TableNames"] + functions
            before = names()
            emu.reset()
            print(before, names())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=REPO_ROOT,  # so the script can import tests.helpers
    )
    assert result.stdout.strip() == "['t', 'f'] []"


@pytest.mark.parametrize(
    ("service", "operation", "result_key"),
    [
        ("dynamodb", "list_tables", "TableNames"),
        ("dynamodbstreams", "list_streams", "Streams"),
        ("lambda", "list_functions", "Functions"),
        ("sqs", "list_queues", "ResponseMetadata"),
        ("sns", "list_topics", "Topics"),
        ("s3", "list_buckets", "Buckets"),
        ("iam", "list_roles", "Roles"),
        ("sts", "get_caller_identity", "Account"),
        ("cloudwatch", "describe_alarms", "MetricAlarms"),
        ("logs", "describe_log_groups", "logGroups"),
        ("kms", "list_keys", "Keys"),
    ],
)
def test_one_endpoint_serves_every_service_terraform_uses(
    aws: AwsClients, service: str, operation: str, result_key: str
) -> None:
    # The service is told apart by the SigV4 credential scope, as with Terraform's single
    # `endpoints` block pointing every service at the emulator.
    response = getattr(aws.client(service), operation)()
    assert result_key in response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200


# --- streams ------------------------------------------------------------------------------------


def test_writes_produce_stream_records(aws: AwsClients, unique_name: Callable[[str], str]) -> None:
    table = unique_name("orders")
    stream_arn = create_stream_table(aws.dynamodb, table)
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "n": {"N": "1"}})
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "n": {"N": "2"}})
    aws.dynamodb.delete_item(TableName=table, Key={"pk": {"S": "a"}})

    records = read_stream(aws.dynamodbstreams, stream_arn)

    assert [r["eventName"] for r in records] == ["INSERT", "MODIFY", "REMOVE"]
    assert records[1]["dynamodb"]["OldImage"] == {"pk": {"S": "a"}, "n": {"N": "1"}}
    assert records[1]["dynamodb"]["NewImage"] == {"pk": {"S": "a"}, "n": {"N": "2"}}
    assert all(r["dynamodb"]["Keys"] == {"pk": {"S": "a"}} for r in records)
    assert all(r["awsRegion"] == aws.region for r in records)


def test_stream_records_name_the_tables_region(
    embedded_emulator: Emulator, unique_name: Callable[[str], str]
) -> None:
    # moto hard-codes us-east-1; the emulator reports the table's region, as AWS does.
    clients = AwsClients(embedded_emulator.endpoint_url, region="eu-west-1")
    table = unique_name("eu")
    stream_arn = create_stream_table(clients.dynamodb, table)
    clients.dynamodb.put_item(TableName=table, Item={"pk": {"S": "x"}})
    records = read_stream(clients.dynamodbstreams, stream_arn)
    assert [r["awsRegion"] for r in records] == ["eu-west-1"]


def test_records_are_kept_while_a_mapping_exists(
    aws: AwsClients, unique_name: Callable[[str], str], emulator: Emulator | None
) -> None:
    # Unpatched moto "delivers" each write to the mapped function, fails without docker, and
    # then empties the shard: the stream would hold only the last record, or none.
    table = unique_name("orders")
    stream_arn = create_stream_table(aws.dynamodb, table)
    function = unique_name("consumer")
    create_function(aws.lambda_, function, HANDLER_FILES)
    mapping = aws.lambda_.create_event_source_mapping(
        EventSourceArn=stream_arn, FunctionName=function, StartingPosition="TRIM_HORIZON"
    )
    for i in range(10):
        aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": f"k{i}"}})
    aws.lambda_.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "after-disable"}})
    aws.lambda_.delete_event_source_mapping(UUID=mapping["UUID"])
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "after-delete"}})

    records = read_stream(aws.dynamodbstreams, stream_arn)

    keys = [r["dynamodb"]["Keys"]["pk"]["S"] for r in records]
    assert keys == [f"k{i}" for i in range(10)] + ["after-disable", "after-delete"]
    sequence_numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence_numbers == sorted(set(sequence_numbers))
    if emulator is not None:  # moto numbers one shard's records without gaps; AWS need not
        first = sequence_numbers[0]
        assert sequence_numbers == list(range(first, first + len(records)))


def test_concurrent_writes_keep_stream_numbering_and_image_chains(
    aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    # moto alone hands out duplicate sequence numbers and loses OldImage versions when writes
    # race; a tiny GIL switch interval makes the race show up within a few hundred writes
    # (the emulator's server threads run in this process).
    table = unique_name("race")
    stream_arn = create_stream_table(aws.dynamodb, table)
    writers, writes_each, keys = 6, 60, 4

    def write(writer: int) -> None:
        for i in range(writes_each):
            aws.dynamodb.put_item(
                TableName=table,
                Item={
                    "pk": {"S": f"k{i % keys}"},
                    "writer": {"N": str(writer)},
                    "i": {"N": str(i)},
                },
            )

    previous_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(previous_interval)

    records = read_stream(aws.dynamodbstreams, stream_arn, max_calls=1000)
    assert len(records) == writers * writes_each
    sequence_numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence_numbers == sorted(set(sequence_numbers))
    latest_image: dict[str, Any] = {}
    for record in records:  # each record's OldImage is the previous record's NewImage
        key = record["dynamodb"]["Keys"]["pk"]["S"]
        assert record["dynamodb"].get("OldImage") == latest_image.get(key)
        latest_image[key] = record["dynamodb"]["NewImage"]


# --- event source mappings ----------------------------------------------------------------------


@pytest.fixture
def stream_and_function(aws: AwsClients, unique_name: Callable[[str], str]) -> tuple[str, str]:
    stream_arn = create_stream_table(aws.dynamodb, unique_name("src"))
    function = unique_name("fn")
    create_function(aws.lambda_, function, HANDLER_FILES)
    return stream_arn, function


def _queue_arn(aws: AwsClients, name: str) -> str:
    return create_queue(aws.sqs, name)[1]


def _filters(*patterns: dict[str, Any]) -> dict[str, Any]:
    return {"Filters": [{"Pattern": json.dumps(p)} for p in patterns]}


# field -> (value at create, value after update); DestinationConfig is built per test.
MAPPING_FIELDS: dict[str, tuple[Any, Any]] = {
    "BatchSize": (7, 250),
    "MaximumBatchingWindowInSeconds": (3, 0),
    "Enabled": (False, True),
    "FilterCriteria": (
        _filters({"eventName": ["INSERT"]}),
        _filters(
            {"dynamodb": {"NewImage": {"status": {"S": ["PAID"]}}}},
            {"eventName": ["REMOVE"]},
        ),
    ),
    "FunctionResponseTypes": (["ReportBatchItemFailures"], []),
    "MaximumRetryAttempts": (2, -1),
    "MaximumRecordAgeInSeconds": (120, -1),
    "BisectBatchOnFunctionError": (True, False),
    "ParallelizationFactor": (3, 10),
    "TumblingWindowInSeconds": (30, 900),
    "DestinationConfig": ("first-dlq", "second-dlq"),
}


def _reported(config: dict[str, Any], field: str) -> Any:
    if field == "Enabled":  # Lambda reports it as State
        return {"Enabled": True, "Disabled": False}.get(config["State"], config["State"])
    return config.get(field)


@pytest.mark.parametrize("field", list(MAPPING_FIELDS))
def test_mapping_field_round_trips(
    aws: AwsClients,
    unique_name: Callable[[str], str],
    stream_and_function: tuple[str, str],
    field: str,
) -> None:
    stream_arn, function = stream_and_function
    created_value, updated_value = MAPPING_FIELDS[field]
    if field == "DestinationConfig":
        created_value = {"OnFailure": {"Destination": _queue_arn(aws, unique_name(created_value))}}
        updated_value = {"OnFailure": {"Destination": _queue_arn(aws, unique_name(updated_value))}}

    created = aws.lambda_.create_event_source_mapping(
        EventSourceArn=stream_arn,
        FunctionName=function,
        StartingPosition="TRIM_HORIZON",
        **{field: created_value},
    )
    uuid = created["UUID"]
    if field != "Enabled":  # the answer says Creating; Enabled/Disabled comes after
        assert _reported(created, field) == created_value
    assert _reported(wait_for_mapping_settled(aws.lambda_, uuid), field) == created_value

    updated = aws.lambda_.update_event_source_mapping(UUID=uuid, **{field: updated_value})
    if field != "Enabled":
        assert _reported(updated, field) == updated_value
    fetched = wait_for_mapping_settled(aws.lambda_, uuid)
    assert _reported(fetched, field) == updated_value
    listed = aws.lambda_.list_event_source_mappings(EventSourceArn=stream_arn)
    assert [_reported(m, field) for m in listed["EventSourceMappings"]] == [updated_value]
    assert fetched["StartingPosition"] == "TRIM_HORIZON"
    assert fetched["FunctionArn"].endswith(f":function:{function}")

    deleted = aws.lambda_.delete_event_source_mapping(UUID=uuid)
    assert deleted["UUID"] == uuid
    assert wait_for_mapping_gone(aws.lambda_, uuid)
    listed_after = aws.lambda_.list_event_source_mappings(EventSourceArn=stream_arn)
    assert listed_after["EventSourceMappings"] == []


def test_mapping_reports_lambda_defaults(
    aws: AwsClients, stream_and_function: tuple[str, str]
) -> None:
    stream_arn, function = stream_and_function
    created = aws.lambda_.create_event_source_mapping(
        EventSourceArn=stream_arn, FunctionName=function, StartingPosition="LATEST"
    )
    fetched = wait_for_mapping_settled(aws.lambda_, created["UUID"])
    reported = {
        key: fetched.get(key)
        for key in (
            "BatchSize",
            "MaximumBatchingWindowInSeconds",
            "ParallelizationFactor",
            "MaximumRecordAgeInSeconds",
            "MaximumRetryAttempts",
            "BisectBatchOnFunctionError",
            "TumblingWindowInSeconds",
            "FunctionResponseTypes",
            "State",
        )
    }
    assert reported == {
        "BatchSize": 100,
        "MaximumBatchingWindowInSeconds": 0,
        "ParallelizationFactor": 1,
        "MaximumRecordAgeInSeconds": -1,
        "MaximumRetryAttempts": -1,
        "BisectBatchOnFunctionError": False,
        "TumblingWindowInSeconds": 0,
        "FunctionResponseTypes": [],
        "State": "Enabled",
    }


def test_mapping_update_moves_last_modified(
    aws: AwsClients, stream_and_function: tuple[str, str]
) -> None:
    stream_arn, function = stream_and_function
    created = aws.lambda_.create_event_source_mapping(
        EventSourceArn=stream_arn, FunctionName=function, StartingPosition="LATEST"
    )
    updated = aws.lambda_.update_event_source_mapping(UUID=created["UUID"], BatchSize=5)
    assert updated["LastModified"] >= created["LastModified"]
    assert (
        aws.lambda_.get_event_source_mapping(UUID=created["UUID"])["LastModified"]
        == (updated["LastModified"])
    )


def test_mapping_on_a_missing_stream_is_rejected(
    aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    function = unique_name("fn")
    create_function(aws.lambda_, function, HANDLER_FILES)
    missing = (
        f"arn:aws:dynamodb:{aws.region}:123456789012:table/{unique_name('nope')}"
        "/stream/2024-01-01T00:00:00.000"
    )
    with pytest.raises(ClientError) as caught:
        aws.lambda_.create_event_source_mapping(
            EventSourceArn=missing, FunctionName=function, StartingPosition="LATEST"
        )
    error = caught.value.response["Error"]
    assert error["Code"] == "InvalidParameterValueException"
    assert error["Message"] == f"Stream not found: {missing}"
    assert caught.value.response.get("Type") == "User"  # Lambda's error body shape
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize("operation", ["update", "delete"])
def test_unknown_mapping_is_resource_not_found(aws: AwsClients, operation: str) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"
    with pytest.raises(ClientError) as caught:
        if operation == "update":
            aws.lambda_.update_event_source_mapping(UUID=unknown, BatchSize=5)
        else:
            aws.lambda_.delete_event_source_mapping(UUID=unknown)
    assert caught.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_invalid_mapping_parameters_are_rejected_like_lambda(
    aws: AwsClients, stream_and_function: tuple[str, str]
) -> None:
    # The rules themselves are tested with streamkit.local.esm.config; this checks that the
    # emulator answers with Lambda's error codes and stores nothing.
    pytest.importorskip("streamkit.local.esm.config")
    stream_arn, function = stream_and_function
    with pytest.raises(ClientError) as out_of_range:  # an API-model constraint
        aws.lambda_.create_event_source_mapping(
            EventSourceArn=stream_arn,
            FunctionName=function,
            StartingPosition="LATEST",
            ParallelizationFactor=11,
        )
    assert out_of_range.value.response["Error"]["Code"] == "ValidationException"
    assert "parallelizationFactor" in out_of_range.value.response["Error"]["Message"]
    assert out_of_range.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    with pytest.raises(ClientError) as bad_pattern:  # a service-level check
        aws.lambda_.create_event_source_mapping(
            EventSourceArn=stream_arn,
            FunctionName=function,
            StartingPosition="LATEST",
            FilterCriteria={"Filters": [{"Pattern": "{not json"}]},
        )
    assert bad_pattern.value.response["Error"] == {
        "Code": "InvalidParameterValueException",
        "Message": "Invalid filter pattern definition.",
    }
    listed = aws.lambda_.list_event_source_mappings(EventSourceArn=stream_arn)
    assert listed["EventSourceMappings"] == []

    created = aws.lambda_.create_event_source_mapping(
        EventSourceArn=stream_arn, FunctionName=function, StartingPosition="LATEST"
    )
    with pytest.raises(ClientError) as on_update:
        aws.lambda_.update_event_source_mapping(UUID=created["UUID"], MaximumRecordAgeInSeconds=30)
    assert on_update.value.response["Error"]["Code"] == "InvalidParameterValueException"
    assert on_update.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    fetched = aws.lambda_.get_event_source_mapping(UUID=created["UUID"])
    assert fetched["MaximumRecordAgeInSeconds"] == -1


# --- deployed code ------------------------------------------------------------------------------


def test_code_location_serves_the_uploaded_zip(
    aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    function = unique_name("fn")
    create_function(aws.lambda_, function, HANDLER_FILES)
    expected = make_zip(HANDLER_FILES)

    response = aws.lambda_.get_function(FunctionName=function)
    served = _fetch(response["Code"]["Location"])

    assert served == expected
    assert response["Configuration"]["CodeSha256"] == _sha256_b64(served)
    assert response["Configuration"]["CodeSize"] == len(served)


def test_code_location_follows_update_and_versions(
    aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    function = unique_name("fn")
    create_function(aws.lambda_, function, HANDLER_FILES)
    first = make_zip(HANDLER_FILES)
    version_1 = aws.lambda_.publish_version(FunctionName=function)["Version"]
    second_files = {"app.py": "def handler(event, context):\n    return {'v': 2}\n"}
    second = make_zip(second_files)
    aws.lambda_.update_function_code(FunctionName=function, ZipFile=second)
    if aws.lambda_.get_function_configuration(FunctionName=function).get(
        "LastUpdateStatus"
    ) not in (
        None,
        "Successful",
    ):
        aws.lambda_.get_waiter("function_updated_v2").wait(FunctionName=function)

    latest = aws.lambda_.get_function(FunctionName=function)
    assert _fetch(latest["Code"]["Location"]) == second
    assert latest["Configuration"]["CodeSha256"] == _sha256_b64(second)

    pinned = aws.lambda_.get_function(FunctionName=function, Qualifier=version_1)
    assert _fetch(pinned["Code"]["Location"]) == first
    assert pinned["Configuration"]["CodeSha256"] == _sha256_b64(first)


def test_code_location_serves_code_uploaded_via_s3(
    aws: AwsClients, unique_name: Callable[[str], str]
) -> None:
    bucket = unique_name("code")
    aws.s3.create_bucket(Bucket=bucket)
    package = make_zip({"app.py": "def handler(event, context):\n    return 's3'\n"})
    aws.s3.put_object(Bucket=bucket, Key="fn.zip", Body=package)
    function = unique_name("fn")
    aws.lambda_.create_function(
        FunctionName=function,
        Runtime="python3.12",
        Role=ensure_lambda_role(aws.iam),
        Handler="app.handler",
        Code={"S3Bucket": bucket, "S3Key": "fn.zip"},
    )

    response = aws.lambda_.get_function(FunctionName=function)

    assert _fetch(response["Code"]["Location"]) == package
    assert response["Configuration"]["CodeSha256"] == _sha256_b64(package)


def test_code_location_uses_the_host_the_client_called(
    embedded_emulator: Emulator, unique_name: Callable[[str], str]
) -> None:
    endpoint = f"http://localhost:{embedded_emulator.port}"
    clients = AwsClients(endpoint)
    function = unique_name("fn")
    create_function(clients.lambda_, function, HANDLER_FILES)
    location = clients.lambda_.get_function(FunctionName=function)["Code"]["Location"]
    assert location.startswith(f"{endpoint}/_streamkit/lambda-code/")
    assert _fetch(location) == make_zip(HANDLER_FILES)


def test_code_url_for_unknown_function_is_404(embedded_emulator: Emulator) -> None:
    url = f"{embedded_emulator.endpoint_url}/_streamkit/lambda-code/123456789012/us-east-1/nope"
    with pytest.raises(urllib.error.HTTPError) as caught:
        _fetch(url)
    assert caught.value.code == 404


def test_make_zip_is_deterministic() -> None:
    files: dict[str, str | bytes] = {"b.py": "x = 1\n", "a/c.txt": b"\x00\x01"}
    assert make_zip(files) == make_zip(dict(reversed(list(files.items()))))
    assert make_zip(files) != make_zip({**files, "b.py": "x = 2\n"})


# --- CLI ----------------------------------------------------------------------------------------


def _start_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "streamkit.cli", "emulator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_cli_prints_endpoint_and_stops_on_sigterm() -> None:
    process = _start_cli("--port", "0")
    try:
        assert process.stdout is not None
        endpoint = process.stdout.readline().strip()
        assert endpoint.startswith("http://127.0.0.1:")
        assert "ready in" in process.stdout.readline()
        assert _answers(endpoint)
        process.send_signal(signal.SIGTERM)
        stdout, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert "stopped" in stdout
    assert not _answers(endpoint)


def test_cli_stops_on_sigint() -> None:
    process = _start_cli("--port", "0")
    try:
        assert process.stdout is not None
        process.stdout.readline()
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0


def test_cli_port_in_use_exits_nonzero(listening_socket: socket.socket) -> None:
    port = listening_socket.getsockname()[1]
    process = _start_cli("--port", str(port))
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 1
    assert f"127.0.0.1:{port}" in stderr
    assert "--port 0" in stderr
    assert stdout == ""


def test_a_cancelled_transaction_leaves_no_trace_in_the_stream(aws: Any, unique_name: Any) -> None:
    """moto rolls a cancelled TransactWriteItems back by swapping in table copies, which
    stranded stream readers on the old shard with phantom records; the emulator restores
    the live table in place, so readers see only committed changes and every later write."""
    table = unique_name("tx")
    stream_arn = create_stream_table(aws.dynamodb, table, view_type="NEW_AND_OLD_IMAGES")
    aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "A"}, "n": {"N": "0"}})
    shard = aws.dynamodbstreams.describe_stream(StreamArn=stream_arn)["StreamDescription"][
        "Shards"
    ][0]["ShardId"]
    seen: list[dict[str, Any]] = []
    stop = threading.Event()

    def read_continuously() -> None:
        iterator = aws.dynamodbstreams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while not stop.is_set():
            page = aws.dynamodbstreams.get_records(ShardIterator=iterator)
            iterator = page["NextShardIterator"]
            seen.extend(page["Records"])

    reader = threading.Thread(target=read_continuously)
    reader.start()
    try:
        for _ in range(30):
            with pytest.raises(ClientError, match="TransactionCanceled"):
                aws.dynamodb.transact_write_items(
                    TransactItems=[
                        {
                            "Update": {
                                "TableName": table,
                                "Key": {"pk": {"S": "A"}},
                                "UpdateExpression": "SET n = n + :one",
                                "ExpressionAttributeValues": {":one": {"N": "1"}},
                            }
                        },
                        {
                            "ConditionCheck": {
                                "TableName": table,
                                "Key": {"pk": {"S": "missing"}},
                                "ConditionExpression": "attribute_exists(pk)",
                            }
                        },
                    ]
                )
        aws.dynamodb.put_item(TableName=table, Item={"pk": {"S": "C"}})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(seen) < 2:
            time.sleep(0.05)
        time.sleep(0.3)  # give a phantom record the chance to show up
    finally:
        stop.set()
        reader.join(timeout=10)

    events = [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in seen]
    assert events == [("INSERT", "A"), ("INSERT", "C")]
    sequence_numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in seen]
    assert sequence_numbers[1] == sequence_numbers[0] + 1
    item = aws.dynamodb.get_item(TableName=table, Key={"pk": {"S": "A"}})["Item"]
    assert item["n"] == {"N": "0"}


@pytest.mark.parametrize("range_key", [None, "sk"])
def test_a_cancelled_transaction_puts_back_exactly_the_items_it_wrote(
    aws: Any, unique_name: Any, range_key: str | None
) -> None:
    """The emulator rolls a cancelled transaction back per item (not by copying whole tables):
    an item it created is gone again, one it deleted or updated is as before, and the stream
    holds only the writes before the transaction; a committed one then applies normally."""
    table = unique_name("txr")
    stream_arn = create_stream_table(aws.dynamodb, table, range_key=range_key)
    extra = {range_key: {"S": "r"}} if range_key else {}

    def key(pk: str) -> dict[str, Any]:
        return {"pk": {"S": pk}, **extra}

    aws.dynamodb.put_item(TableName=table, Item={**key("kept"), "n": {"N": "1"}})
    aws.dynamodb.put_item(TableName=table, Item={**key("doomed"), "n": {"N": "2"}})
    actions: list[dict[str, Any]] = [
        {"Put": {"TableName": table, "Item": {**key("new"), "n": {"N": "3"}}}},
        {"Delete": {"TableName": table, "Key": key("doomed")}},
        {
            "Update": {
                "TableName": table,
                "Key": key("kept"),
                "UpdateExpression": "SET n = n + :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        },
    ]
    with pytest.raises(ClientError, match="TransactionCanceled") as refused:
        aws.dynamodb.transact_write_items(
            TransactItems=[
                *actions,
                {
                    "ConditionCheck": {
                        "TableName": table,
                        "Key": key("missing"),
                        "ConditionExpression": "attribute_exists(pk)",
                    }
                },
            ]
        )
    reasons = [r["Code"] for r in refused.value.response["CancellationReasons"]]
    assert reasons == ["None", "None", "None", "ConditionalCheckFailed"]

    def items() -> dict[str, str]:
        scanned = aws.dynamodb.scan(TableName=table, ConsistentRead=True)["Items"]
        return {i["pk"]["S"]: i["n"]["N"] for i in scanned}

    assert items() == {"kept": "1", "doomed": "2"}
    aws.dynamodb.transact_write_items(TransactItems=actions)
    assert items() == {"kept": "2", "new": "3"}
    shard = aws.dynamodbstreams.describe_stream(StreamArn=stream_arn)["StreamDescription"][
        "Shards"
    ][0]["ShardId"]
    iterator = aws.dynamodbstreams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records = aws.dynamodbstreams.get_records(ShardIterator=iterator)["Records"]
    events = [(r["eventName"], r["dynamodb"]["Keys"]["pk"]["S"]) for r in records]
    assert events == [
        ("INSERT", "kept"),
        ("INSERT", "doomed"),
        ("INSERT", "new"),
        ("REMOVE", "doomed"),
        ("MODIFY", "kept"),
    ]
    numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert numbers == sorted(set(numbers))
