"""Deployed Lambda code, fetched through GetFunction's Code.Location and run in local workers.

Functions are created with boto3 on the endpoint (the embedded emulator, or whatever
STREAMKIT_ENDPOINT_URL names); the handler talks back to that endpoint with plain boto3 clients.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from streamkit.exceptions import FunctionCodeError
from streamkit.local.invoker import FunctionInvoker
from streamkit.local.invoker.functions import fetch_function
from tests.helpers import AwsClients, create_function, make_zip

SEND_TO_QUEUE = """
import json, os

import boto3

SQS = boto3.client("sqs")  # no endpoint_url, region or credentials: all from the environment


def handler(event, context):
    sent = SQS.send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody=json.dumps(event))
    return {
        "message_id": sent["MessageId"],
        "request_id": context.aws_request_id,
        "endpoint": SQS.meta.endpoint_url,
    }
"""


def _version_files(label: str) -> dict[str, str]:
    return {"app.py": f"def handler(event, context):\n    return {label!r}\n"}


def test_deployed_function_runs_locally_and_reaches_the_endpoint_with_plain_boto3(
    aws: AwsClients,
    endpoint_url: str,
    region: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    queue_url = aws.sqs.create_queue(QueueName=unique_name("fn-out"))["QueueUrl"]
    name = unique_name("fn-sqs")
    files = {"app.py": SEND_TO_QUEUE}
    create_function(aws.lambda_, name, files, timeout=20, memory=256, env={"QUEUE_URL": queue_url})

    function = fetch_function(aws.lambda_, name, state_dir=tmp_path)
    assert function.code_dir.name == hashlib.sha256(make_zip(files)).hexdigest()
    assert function.spec.memory_mb == 256 and function.spec.timeout_s == 20
    with FunctionInvoker(function, endpoint_url=endpoint_url, region=region) as invoker:
        result = invoker.invoke({"order_id": "o-1", "total": 12}, request_id="req-sqs")

    assert result.ok, result.payload
    assert result.payload["request_id"] == "req-sqs"
    assert result.payload["endpoint"] == endpoint_url  # from the injected AWS_ENDPOINT_URL
    received = aws.sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=2)["Messages"]
    assert [json.loads(m["Body"]) for m in received] == [{"order_id": "o-1", "total": 12}]
    assert received[0]["MessageId"] == result.payload["message_id"]


def test_update_function_code_is_picked_up_by_the_next_fetch(
    aws: AwsClients,
    endpoint_url: str,
    region: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    name = unique_name("fn-update")
    create_function(aws.lambda_, name, _version_files("v1"))
    before = fetch_function(aws.lambda_, name, state_dir=tmp_path)

    aws.lambda_.update_function_code(FunctionName=name, ZipFile=make_zip(_version_files("v2")))
    aws.lambda_.get_waiter("function_updated_v2").wait(FunctionName=name)
    after = fetch_function(aws.lambda_, name, state_dir=tmp_path)

    assert after.code_dir != before.code_dir
    assert after.code_dir.name == hashlib.sha256(make_zip(_version_files("v2"))).hexdigest()
    assert after.spec.code_sha256 != before.spec.code_sha256
    with (
        FunctionInvoker(before, endpoint_url=endpoint_url, region=region) as old,
        FunctionInvoker(after, endpoint_url=endpoint_url, region=region) as new,
    ):
        assert new.invoke({}).payload == "v2"
        assert old.invoke({}).payload == "v1"  # an invoker keeps the code it was built with


def test_fetching_a_function_that_does_not_exist_names_it(
    aws: AwsClients, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    name = unique_name("fn-ghost")
    with pytest.raises(FunctionCodeError, match="GetFunction failed") as caught:
        fetch_function(aws.lambda_, name, state_dir=tmp_path)
    assert caught.value.function == name


REPORT_TRACE_ENV = """
import os


def handler(event, context):
    return {
        name: os.environ.get(name)
        for name in ("_X_AMZN_TRACE_ID", "AWS_XRAY_DAEMON_ADDRESS", "AWS_XRAY_CONTEXT_MISSING")
    }
"""
TRACE_HEADER = re.compile(
    r"Root=1-(?P<time>[0-9a-f]{8})-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=(?P<sampled>[01])"
)


@pytest.mark.parametrize(("mode", "sampled"), [("Active", "1"), ("PassThrough", "0")])
def test_each_invocation_gets_a_fresh_trace_header_sampled_as_configured(
    aws: AwsClients,
    endpoint_url: str,
    region: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    sampled: str,
) -> None:
    name = unique_name("fn-trace")
    create_function(aws.lambda_, name, {"app.py": REPORT_TRACE_ENV})
    aws.lambda_.update_function_configuration(FunctionName=name, TracingConfig={"Mode": mode})
    aws.lambda_.get_waiter("function_updated_v2").wait(FunctionName=name)
    monkeypatch.setenv("AWS_XRAY_DAEMON_ADDRESS", "127.0.0.1:39001")  # passed on to workers

    function = fetch_function(aws.lambda_, name, state_dir=tmp_path)
    assert function.spec.tracing_mode == mode
    started = time.time()
    with FunctionInvoker(function, endpoint_url=endpoint_url, region=region) as invoker:
        first, second = invoker.invoke({}).payload, invoker.invoke({}).payload  # one warm worker
    headers = [first["_X_AMZN_TRACE_ID"], second["_X_AMZN_TRACE_ID"]]
    for header in headers:
        match = TRACE_HEADER.fullmatch(header)
        assert match, header
        assert match["sampled"] == sampled
        assert abs(int(match["time"], 16) - started) < 60
    assert headers[0] != headers[1]  # a new trace per invocation, not per worker
    assert first["AWS_XRAY_DAEMON_ADDRESS"] == "127.0.0.1:39001"
    assert first["AWS_XRAY_CONTEXT_MISSING"] == "LOG_ERROR"
