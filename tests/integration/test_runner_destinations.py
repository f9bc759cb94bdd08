"""Every on-failure destination end to end, with the exact record AWS sends: SQS (message body),
SNS (``Message``), S3 (the record plus ``payload.Records``, under AWS's key layout); and a
destination that does not exist yet: retried with backoff and logged, the shard held until
the record is delivered, nothing lost."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

import pytest

from streamkit.local.esm.checkpoints import CheckpointStore
from tests.helpers.runner_scenario import Scenario
from tests.helpers.runner_support import calls, deploy, shard_id_of, wait_until

_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def destination(s: Scenario, kind: str) -> tuple[str, Callable[[], dict[str, Any]]]:
    """A destination ARN of ``kind`` and a function that waits for the record it got."""
    if kind == "sqs":
        url, arn = s.queue("dlq")
        return arn, lambda: s.messages(url, 1)[0]
    if kind == "sns":
        topic = s.aws.sns.create_topic(Name=s.unique_name("failures"))["TopicArn"]
        inbox_url, inbox_arn = s.queue("sns-inbox")
        s.aws.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
        return topic, lambda: json.loads(s.messages(inbox_url, 1)[0]["Message"])
    bucket = s.unique_name("failures")
    s.aws.s3.create_bucket(Bucket=bucket)

    def s3_object() -> dict[str, Any]:
        wait_until(lambda: bool(s.aws.s3.list_objects_v2(Bucket=bucket).get("Contents")))
        (listed,) = s.aws.s3.list_objects_v2(Bucket=bucket)["Contents"]
        body = json.loads(s.aws.s3.get_object(Bucket=bucket, Key=listed["Key"])["Body"].read())
        return {"key": listed["Key"], **body}

    return f"arn:aws:s3:::{bucket}", s3_object


@pytest.mark.parametrize("kind", ["sqs", "sns", "s3"])
def test_every_destination_gets_the_aws_invocation_record(
    scenario: Callable[..., Scenario], kind: str
) -> None:
    s: Scenario = scenario()
    function = deploy(s, MODE="raise", POISON="bad", FULL="1")
    arn, received = destination(s, kind)
    uuid = s.map(
        FunctionName=function,
        BatchSize=5,
        MaximumRetryAttempts=1,
        DestinationConfig={"OnFailure": {"Destination": arn}},
    )
    s.put("bad")
    runner = s.runner()
    failure = received()
    reported = calls(s, 2)
    record = reported[0].body["event"]["Records"][0]
    arrival = time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime(record["dynamodb"]["ApproximateCreationDateTime"])
    )
    timestamp = failure.pop("timestamp")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", timestamp), timestamp
    if kind == "s3":
        # aws/lambda/<mapping-uuid>/<shardId>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<uuid>, at the
        # moment of the record's timestamp.
        day, moment = timestamp[:10].replace("-", "/"), timestamp[:19].replace(":", ".")
        layout = rf"aws/lambda/{uuid}/{shard_id_of(s)}/{day}/{re.escape(moment)}-{_UUID}"
        assert re.fullmatch(layout, failure.pop("key"))
        assert failure.pop("payload") == {"Records": [record]}
    assert failure == {
        "requestContext": {
            "requestId": reported[1].body["request_id"],
            "functionArn": runner.stats()[uuid]["function_arn"],
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": 2,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "DDBStreamBatchInfo": {
            "shardId": shard_id_of(s),
            "startSequenceNumber": record["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": record["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": arrival,
            "approximateArrivalOfLastRecord": arrival,
            "batchSize": 1,
            "streamArn": s.stream_arn,
        },
    }


def test_a_destination_created_late_gets_the_record_and_nothing_is_lost(
    scenario: Callable[..., Scenario], caplog: pytest.LogCaptureFixture
) -> None:
    s: Scenario = scenario()
    function = deploy(s, MODE="raise", POISON="bad")
    queue_name = s.unique_name("late-dlq")
    queue_arn = f"arn:aws:sqs:us-east-1:123456789012:{queue_name}"
    uuid = s.map(
        FunctionName=function,
        BatchSize=1,
        MaximumRetryAttempts=0,
        DestinationConfig={"OnFailure": {"Destination": queue_arn}},
    )
    s.put("bad")
    s.put("good")
    runner = s.runner()
    stats = runner.wait_until(
        lambda st: "could not deliver" in (st[uuid]["last_error"] or ""), timeout=20
    )
    assert queue_arn in stats[uuid]["last_error"]
    # Delivery keeps failing, with backoff, and the shard waits: let it fail again at least
    # twice before looking for what must not have happened.
    wait_until(lambda: len(_delivery_failures(caplog)) >= 3)
    assert [c.keys for c in calls(s, 1, timeout=2)] == [["bad"]]
    s.assert_no_more()  # "good" is not invoked while "bad" is undelivered
    assert runner.stats()[uuid]["sent_to_destination"] == 0
    assert CheckpointStore(s.state_dir).all() == []  # the checkpoint has not moved past "bad"

    url = s.aws.sqs.create_queue(QueueName=queue_name)["QueueUrl"]
    (failure,) = s.messages(url, 1)
    runner.wait_until(lambda st: st[uuid]["succeeded"] == 1, timeout=20)
    assert [c.keys for c in calls(s, 1)] == [["good"]]
    assert failure["requestContext"]["approximateInvokeCount"] == 1
    assert runner.stats()[uuid]["sent_to_destination"] == 1


def _delivery_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The runner's warnings that an on-failure record could not be delivered (yet)."""
    return [
        r.getMessage()
        for r in list(caplog.records)
        if "could not deliver on-failure record" in r.getMessage()
    ]
