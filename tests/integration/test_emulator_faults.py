"""Fault injection in the embedded emulator, over real HTTP, seen through boto3 and streamkit.

Each rule targets a resource created for the test (``unique_name``), so the session emulator
stays usable by other tests; the ``faults`` fixture removes what a test added.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from streamkit.exceptions import FaultAdminError, InvalidFaultRuleError
from streamkit.idempotency import DynamoDBIdempotencyStore
from streamkit.idempotency.exceptions import IdempotencyStoreUnavailableError
from streamkit.idempotency.items import COMPLETED, IdempotencyItem
from streamkit.local.emulator import Emulator
from streamkit.local.faults import FaultsClient
from streamkit.streams.reader import ShardReader, StartPosition
from streamkit.streams.throttling import ThrottleBackoff

THE_FIVE = [
    ("ProvisionedThroughputExceededException", 400),
    ("ThrottlingException", 400),
    ("RequestLimitExceeded", 400),
    ("InternalServerError", 500),
    ("ServiceUnavailable", 503),
]
# botocore counts "max_attempts" here as retries after the first attempt.
_NO_RETRIES = Config(retries={"max_attempts": 0, "mode": "standard"}, read_timeout=30)


@pytest.fixture
def faults(embedded_emulator: Emulator) -> Iterator[FaultsClient]:
    client = FaultsClient(embedded_emulator.endpoint_url)
    added: list[str] = []
    original_add_rule = client.add_rule

    def add_rule(rule: dict[str, Any]) -> dict[str, Any]:
        stored = original_add_rule(rule)
        added.append(stored["id"])
        return stored

    client.add_rule = add_rule  # type: ignore[method-assign]
    yield client
    for rule_id in added:
        with contextlib.suppress(FaultAdminError):  # expired by count or duration
            client.clear(rule_id)


def _client(endpoint_url: str, service: str, config: Config = _NO_RETRIES) -> Any:
    return boto3.client(service, endpoint_url=endpoint_url, region_name="us-east-1", config=config)


def _table(aws: Any, name: str, stream: bool = False) -> str:
    params: dict[str, Any] = {
        "TableName": name,
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if stream:
        params["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    described = aws.dynamodb.create_table(**params)["TableDescription"]
    return str(described.get("LatestStreamArn", ""))


def _code_and_status(call: Callable[[], Any]) -> tuple[str, int]:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response
    return error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]


# --- each protocol's error format parses as that AWS error ----------------------------------------


@pytest.mark.parametrize(("code", "status"), THE_FIVE)
def test_dynamodb_json_errors_parse_with_code_and_status(
    aws: Any, faults: FaultsClient, unique_name: Callable[[str], str], code: str, status: int
) -> None:
    table = unique_name("faulty")
    _table(aws, table)
    faults.add("dynamodb", "PutItem", resource=table, error=code)
    ddb = _client(aws.endpoint_url, "dynamodb")
    got = _code_and_status(lambda: ddb.put_item(TableName=table, Item={"id": {"S": "a"}}))
    assert got == (code, status)
    # Other operations and other tables are untouched.
    assert ddb.get_item(TableName=table, Key={"id": {"S": "a"}}).get("Item") is None
    other = unique_name("healthy")
    _table(aws, other)
    ddb.put_item(TableName=other, Item={"id": {"S": "a"}})


def test_each_protocol_parses_as_a_client_error_with_the_code(
    aws: Any, faults: FaultsClient, unique_name: Callable[[str], str]
) -> None:
    url = aws.endpoint_url
    queue = unique_name("q")
    queue_url = aws.sqs.create_queue(QueueName=queue)["QueueUrl"]
    topic_arn = aws.sns.create_topic(Name=unique_name("t"))["TopicArn"]
    bucket = unique_name("b")
    aws.s3.create_bucket(Bucket=bucket)
    cases: list[tuple[str, str, str | None, Callable[[], Any]]] = [
        # (service, operation, resource, call); SQS speaks JSON in this botocore
        (
            "sqs",
            "SendMessage",
            queue,
            lambda: _client(url, "sqs").send_message(QueueUrl=queue_url, MessageBody="x"),
        ),
        (
            "sns",
            "Publish",
            topic_arn.rsplit(":", 1)[1],
            lambda: _client(url, "sns").publish(TopicArn=topic_arn, Message="x"),
        ),
        (
            "s3",
            "PutObject",
            bucket,
            lambda: _client(url, "s3").put_object(Bucket=bucket, Key="k/1.json", Body=b"{}"),
        ),
        ("sts", "GetCallerIdentity", None, lambda: _client(url, "sts").get_caller_identity()),
        ("ses", "ListIdentities", None, lambda: _client(url, "ses").list_identities()),
        (
            "lambda",
            "GetFunction",
            "nosuchfn",
            lambda: _client(url, "lambda").get_function(FunctionName="nosuchfn"),
        ),
        (
            "stepfunctions",
            "ListStateMachines",
            None,
            lambda: _client(url, "stepfunctions").list_state_machines(),
        ),
    ]
    for service, operation, resource, call in cases:
        for code, status in (("ThrottlingException", 400), ("ServiceUnavailable", 503)):
            rule = faults.add(service, operation, resource=resource, error=code, count=1)
            assert _code_and_status(call) == (code, status), (service, operation)
            assert faults.list() == [] or rule["id"] not in {r["id"] for r in faults.list()}


def test_query_protocol_sqs_gets_query_xml(
    aws: Any, faults: FaultsClient, unique_name: Callable[[str], str]
) -> None:
    # A client on SQS's older query wire format gets the XML error it can parse.
    queue = unique_name("q")
    queue_url = aws.sqs.create_queue(QueueName=queue)["QueueUrl"]
    faults.add("sqs", "SendMessage", resource=queue, error="RequestLimitExceeded", count=1)
    body = f"Action=SendMessage&Version=2012-11-05&QueueUrl={queue_url}&MessageBody=x"
    request = urllib.request.Request(
        aws.endpoint_url + "/",
        data=body.encode(),
        method="POST",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20250101/us-east-1/sqs/"
            "aws4_request, SignedHeaders=host, Signature=0",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    text = caught.value.read().decode()
    assert caught.value.code == 400
    assert "<Code>RequestLimitExceeded</Code>" in text and "<ErrorResponse>" in text


# --- probability, latency, count, duration ------------------------------------------------------


def test_count_duration_probability_and_latency(
    aws: Any, faults: FaultsClient, unique_name: Callable[[str], str]
) -> None:
    table = unique_name("faulty")
    _table(aws, table)
    ddb = _client(aws.endpoint_url, "dynamodb")

    def get() -> bool:
        try:
            ddb.get_item(TableName=table, Key={"id": {"S": "a"}})
        except ClientError:
            return False
        return True

    rule = faults.add("dynamodb", "GetItem", resource=table, error="InternalServerError", count=3)
    assert [get() for _ in range(5)] == [False, False, False, True, True]
    assert rule["id"] not in {r["id"] for r in faults.list()}  # spent
    retired = {r["id"]: r for r in faults.list(include_expired=True)}[rule["id"]]
    assert (retired["fired"], retired["active"]) == (3, False)  # still readable afterwards

    faults.add(
        "dynamodb", "GetItem", resource=table, error="ThrottlingException", duration_seconds=1.0
    )
    assert not get()
    time.sleep(1.1)  # the scenario: the rule's 1 s duration passes
    assert get()

    faults.add(
        "dynamodb",
        "GetItem",
        resource=table,
        error="ThrottlingException",
        probability=0.5,
        duration_seconds=30,
    )
    outcomes = [get() for _ in range(200)]
    failed = outcomes.count(False)
    assert 60 < failed < 140, failed  # binomial(200, 0.5): outside this is ~1e-8 likely
    fired = next(r for r in faults.list() if r["probability"] == 0.5)["fired"]
    assert fired == failed
    faults.clear(fired and next(r for r in faults.list() if r["probability"] == 0.5)["id"])

    faults.add("dynamodb", "GetItem", resource=table, latency_ms=300, count=1)
    started = time.perf_counter()
    assert get()
    assert time.perf_counter() - started >= 0.3


# --- the runner's reader and the idempotency store see real AWS errors -------------------------


def test_shard_reader_rides_out_throttling_and_surfaces_5xx(
    aws: Any, faults: FaultsClient, unique_name: Callable[[str], str]
) -> None:
    table = unique_name("stream")
    stream_arn = _table(aws, table, stream=True)
    for i in range(5):
        aws.dynamodb.put_item(TableName=table, Item={"id": {"S": f"k{i}"}})
    streams = _client(aws.endpoint_url, "dynamodbstreams")
    shard_id = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0][
        "ShardId"
    ]
    throttles: list[str] = []
    reader = ShardReader(
        streams,
        stream_arn,
        shard_id,
        StartPosition("TRIM_HORIZON"),
        backoff=ThrottleBackoff(multiplier=0.01, maximum=0.05),
        on_throttle=throttles.append,
    )
    faults.add(
        "dynamodbstreams",
        "GetRecords",
        resource=table,
        error="ProvisionedThroughputExceededException",
        count=3,
    )
    result = reader.read(100)
    assert throttles == ["ProvisionedThroughputExceededException"] * 3
    assert [r["dynamodb"]["Keys"]["id"]["S"] for r in result.records] == [f"k{i}" for i in range(5)]

    # A 5xx is not throttling: the reader raises it as the AWS error it is.
    faults.add(
        "dynamodbstreams", "GetRecords", resource=table, error="InternalServerError", count=1
    )
    code, status = _code_and_status(lambda: reader.read(100))
    assert (code, status) == ("InternalServerError", 500)


def test_idempotency_store_sees_throttling_and_5xx_as_aws_errors(
    aws: Any, faults: FaultsClient, unique_name: Callable[[str], str]
) -> None:
    table = unique_name("idem")
    _table(aws, table)
    # The store's own client settings: standard mode, 3 attempts.
    client = _client(
        aws.endpoint_url, "dynamodb", Config(retries={"mode": "standard", "max_attempts": 3})
    )
    store = DynamoDBIdempotencyStore(table, client=client)

    # Two throttles are ridden out by botocore's standard retries, as on AWS.
    rule = faults.add(
        "dynamodb",
        "BatchGetItem",
        resource=table,
        error="ProvisionedThroughputExceededException",
        count=2,
    )
    assert store.get_many(["a", "b"]) == {}
    assert rule["id"] not in {r["id"] for r in faults.list()}

    # A store that keeps failing is reported unavailable, naming the keys and the AWS error.
    faults.add(
        "dynamodb",
        "BatchWriteItem",
        resource=table,
        error="InternalServerError",
        duration_seconds=30,
    )
    assert store.get_many(["c"]) == {}  # reads still work
    item = IdempotencyItem(id="c", status=COMPLETED, expiration=int(time.time()) + 3600)
    with pytest.raises(IdempotencyStoreUnavailableError) as caught:
        store.put_many([item])
    assert "InternalServerError" in str(caught.value)
    assert isinstance(caught.value.__cause__, ClientError)
    assert caught.value.__cause__.response["Error"]["Code"] == "InternalServerError"


# --- the three ways in: HTTP, Python, CLI ------------------------------------------------------


def test_admin_endpoint_refuses_bad_rules_with_the_field(embedded_emulator: Emulator) -> None:
    url = embedded_emulator.endpoint_url + "/_streamkit/faults"
    bad = [
        ({"operation": "PutItem"}, "service"),
        ({"service": "dynamodb", "error": "Throttling Exception"}, "error"),
        ({"service": "dynamodb", "error": "ThrottlingException", "probability": 2}, "probability"),
        ({"service": "dynamodb"}, "error"),
        ({"service": "dynamodb", "latency_ms": -1}, "latency_ms"),
        ({"service": "dynamodb", "error": "X", "count": 0}, "count"),
        ({"service": "dynamodb", "error": "X", "surprise": 1}, "surprise"),
    ]
    for body, field in bad:
        request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        answer = json.loads(caught.value.read())
        assert caught.value.code == 400
        assert answer["field"] == field, body
    request = urllib.request.Request(url, data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request, timeout=10)
    assert caught.value.code == 400
    with pytest.raises(InvalidFaultRuleError, match="probability"):
        FaultsClient(embedded_emulator.endpoint_url).add("dynamodb", error="X", probability=-1)
    with pytest.raises(FaultAdminError) as missing:
        FaultsClient(embedded_emulator.endpoint_url).clear("no-such-rule")
    assert missing.value.status == 404


def test_cli_add_list_clear(embedded_emulator: Emulator, unique_name: Callable[[str], str]) -> None:
    url = embedded_emulator.endpoint_url
    resource = unique_name("cli")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "streamkit.cli", "faults", *args, "--endpoint-url", url],
            capture_output=True,
            text=True,
            timeout=60,
        )

    added = cli(
        "add",
        "dynamodb",
        "PutItem",
        "--resource",
        resource,
        "--error",
        "ThrottlingException",
        "--count",
        "2",
    )
    assert added.returncode == 0, added.stderr
    rule = json.loads(added.stdout)
    assert (rule["error"], rule["status"], rule["count"]) == ("ThrottlingException", 400, 2)
    listed = cli("list")
    assert rule["id"] in {r["id"] for r in json.loads(listed.stdout)}
    refused = cli("add", "dynamodb", "--probability", "3", "--error", "ThrottlingException")
    assert refused.returncode == 2 and "probability" in refused.stderr
    cleared = cli("clear", rule["id"])
    assert cleared.returncode == 0 and json.loads(cleared.stdout) == {"removed": 1}
    assert rule["id"] not in {r["id"] for r in json.loads(cli("list").stdout)}
