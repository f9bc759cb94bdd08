"""Fan-out end to end: a deployed function (bundling streamkit) routes each order change to
email (SQS), analytics (a counter) and the cache (a table), driven by the local event source
mapping runner over the table's real stream. The email target fails for one order on its first
attempts; the redeliveries must run only that target again, so the analytics counter, which is
deliberately not idempotent, counts every change exactly once."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.helpers import AwsClients, create_plain_table, create_stream_table
from tests.helpers.streamkit_zip import deploy_streamkit_function, running_mapping

APP = r"""
import json
import os

import boto3

from streamkit.codec import serialize
from streamkit.idempotency import DynamoDBIdempotencyStore
from streamkit.routing import Router, changed

ddb = boto3.client("dynamodb")
sqs = boto3.client("sqs")
TRACE = os.environ["TRACE_TABLE"]

router = Router("orders", idempotency=DynamoDBIdempotencyStore(os.environ["IDEMPOTENCY_TABLE"], client=ddb))
order_changed = router.fan_out(
    "order-changed", table=os.environ["ORDERS_TABLE"], events=["INSERT", "MODIFY"], when=changed("status")
)


def trace(record, target):
    # The order in which targets ran, per stream record.
    ddb.update_item(
        TableName=TRACE,
        Key={"pk": {"S": f"{record.keys['pk']}#{record.event_name}"}},
        UpdateExpression="SET #t = list_append(if_not_exists(#t, :empty), :me)",
        ExpressionAttributeNames={"#t": "targets"},
        ExpressionAttributeValues={":empty": {"L": []}, ":me": {"L": [{"S": target}]}},
    )


def count(key):
    response = ddb.update_item(
        TableName=TRACE,
        Key={"pk": {"S": key}},
        UpdateExpression="ADD n :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
        ReturnValues="UPDATED_NEW",
    )
    return int(response["Attributes"]["n"]["N"])


@order_changed.target("email")
def email(record):
    image = record.new_image
    fail_times = int(image.get("fail_email", 0))
    if fail_times and count(f"ATTEMPTS#{record.keys['pk']}") <= fail_times:
        raise ConnectionError("mail server unavailable")
    sqs.send_message(
        QueueUrl=os.environ["EMAIL_QUEUE"],
        MessageBody=json.dumps({"order": record.keys["pk"], "status": image["status"]}),
    )
    trace(record, "email")


@order_changed.target("analytics")
def analytics(record):
    count("ANALYTICS")  # not idempotent on purpose: a re-run would show
    trace(record, "analytics")


@order_changed.target("cache")
def cache(record):
    ddb.put_item(TableName=os.environ["CACHE_TABLE"], Item=serialize(record.new_image))
    trace(record, "cache")


router.validate()


def handler(event, context):
    return router.handle(event, context)
"""


def drain(aws: AwsClients, queue_url: str) -> list[dict[str, Any]]:
    bodies = []
    while True:
        messages = aws.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get(
            "Messages", []
        )
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            aws.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_fan_out_retries_only_the_failed_target_through_the_runner(
    aws: AwsClients, endpoint_url: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    orders = unique_name("orders")
    stream_arn = create_stream_table(aws.dynamodb, orders)
    trace = create_plain_table(aws.dynamodb, unique_name("trace"))
    cache = create_plain_table(aws.dynamodb, unique_name("cache"))
    idempotency = create_plain_table(aws.dynamodb, unique_name("idempotency"), key="id")
    email_queue = aws.sqs.create_queue(QueueName=unique_name("email"))["QueueUrl"]
    function = unique_name("fanout")
    deploy_streamkit_function(
        aws,
        function,
        APP,
        env={
            "ORDERS_TABLE": orders,
            "TRACE_TABLE": trace,
            "CACHE_TABLE": cache,
            "IDEMPOTENCY_TABLE": idempotency,
            "EMAIL_QUEUE": email_queue,
        },
    )
    ddb = aws.dynamodb
    for n in range(4):
        item = {"pk": {"S": f"ORDER#{n}"}, "status": {"S": "PLACED"}}
        if n == 1:
            item["fail_email"] = {"N": "2"}  # email fails twice for this order
        ddb.put_item(TableName=orders, Item=item)
    ddb.update_item(
        TableName=orders,
        Key={"pk": {"S": "ORDER#2"}},
        UpdateExpression="SET #s = :paid",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":paid": {"S": "PAID"}},
    )
    ddb.update_item(  # not a status change: no route matches, nothing runs
        TableName=orders,
        Key={"pk": {"S": "ORDER#3"}},
        UpdateExpression="SET note = :n",
        ExpressionAttributeValues={":n": {"S": "gift wrap"}},
    )

    def count(key: str) -> int:
        item = ddb.get_item(TableName=trace, Key={"pk": {"S": key}}, ConsistentRead=True).get(
            "Item"
        )
        return int(item["n"]["N"]) if item else 0

    with running_mapping(
        aws, endpoint_url, tmp_path / "state", function=function, stream_arn=stream_arn,
        BatchSize=10, MaximumBatchingWindowInSeconds=1, MaximumRetryAttempts=5,
    ) as (runner, uuid):  # fmt: skip
        runner.wait_until(lambda stats: stats[uuid]["succeeded"] >= 6, timeout=60)
        stats = runner.stats()[uuid]
    assert stats["failed"] >= 2  # the invokes that reported ORDER#1
    assert stats["sent_to_destination"] == stats["discarded"] == 0

    emails = sorted((m["order"], m["status"]) for m in drain(aws, email_queue))
    assert emails == [
        ("ORDER#0", "PLACED"), ("ORDER#1", "PLACED"), ("ORDER#2", "PAID"),
        ("ORDER#2", "PLACED"), ("ORDER#3", "PLACED"),
    ]  # fmt: skip
    assert count("ANALYTICS") == 5  # 5 status changes, each counted once despite retries
    assert count("ATTEMPTS#ORDER#1") == 3

    def targets(key: str) -> list[str]:
        item = ddb.get_item(TableName=trace, Key={"pk": {"S": key}}, ConsistentRead=True)["Item"]
        return [entry["S"] for entry in item["targets"]["L"]]

    in_order = ["email", "analytics", "cache"]
    assert targets("ORDER#0#INSERT") == in_order
    assert targets("ORDER#2#MODIFY") == in_order
    # ORDER#1: analytics and cache ran on the first delivery, email only on the third.
    assert targets("ORDER#1#INSERT") == ["analytics", "cache", "email"]
    assert "Item" not in ddb.get_item(TableName=trace, Key={"pk": {"S": "ORDER#3#MODIFY"}})
    cached = {i["pk"]["S"]: i["status"]["S"] for i in ddb.scan(TableName=cache)["Items"]}
    assert cached == {
        "ORDER#0": "PLACED",
        "ORDER#1": "PLACED",
        "ORDER#2": "PAID",
        "ORDER#3": "PLACED",
    }
    # One completion marker per target and status change.
    markers = ddb.scan(TableName=idempotency)["Items"]
    assert len(markers) == 3 * 5
