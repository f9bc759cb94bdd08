"""TumblingWindowAggregator end to end: a mapping with TumblingWindowInSeconds, the local
runner's window invocations (state carried invoke to invoke, a final invoke per window), and
the totals the function emits per window. One record fails the first time it is folded, so the
window goes through a partial failure and a redelivery; the emitted totals must still count
every record exactly once. The window protocol itself is unit-tested invoke by invoke in
tests/unit/test_routing_windows.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.helpers import AwsClients, create_stream_table, lambda_records
from tests.helpers.streamkit_zip import (
    deploy_streamkit_function,
    running_mapping,
    wait_for,
)

APP = r"""
import json
import os

import boto3

from streamkit.codec import serialize
from streamkit.routing import Delta, TumblingWindowAggregator, became, transition

ddb = boto3.client("dynamodb")
sqs = boto3.client("sqs")


def deltas(record):
    if record.keys["pk"] == "ORDER#2" and (record.new_image or {}).get("status") == "PAID":
        try:  # fails the first time only (a dependency blip): reported, then redelivered
            ddb.put_item(
                TableName=os.environ["TOTALS_TABLE"],
                Item={"pk": {"S": "BLIP"}, "part": {"S": "seen"}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ddb.exceptions.ConditionalCheckFailedException:
            pass
        else:
            raise ConnectionError("price lookup failed")
    if became("status", "PAID")(record):
        yield Delta({"pk": "REVENUE"}, {"revenue": record.new_image["total"], "orders": 1})
    if transition("status")(record):
        before = (record.old_image or {}).get("status")
        after = (record.new_image or {}).get("status")
        if before is not None:
            yield Delta({"pk": f"STATUS#{before}"}, {"count": -1})
        if after is not None:
            yield Delta({"pk": f"STATUS#{after}"}, {"count": 1})


def emit(result):
    # Idempotent: a retried final invoke overwrites the same part.
    for aggregate in result.totals:
        ddb.put_item(
            TableName=os.environ["TOTALS_TABLE"],
            Item=serialize({"pk": aggregate.key["pk"], "part": result.part_id, **aggregate.values}),
        )


aggregator = TumblingWindowAggregator("order-window", deltas=deltas, emit=emit)


def handler(event, context):
    sqs.send_message(
        QueueUrl=os.environ["RECORDER_QUEUE"],
        MessageBody=json.dumps({
            "fields": sorted(event),
            "records": len(event["Records"]),
            "final": event.get("isFinalInvokeForWindow"),
        }),
    )
    response = aggregator.handle(event, context)
    return response
"""


def expected_totals(records: list[dict[str, Any]]) -> dict[str, dict[str, Decimal]]:
    out: dict[str, dict[str, Decimal]] = {}

    def add(pk: str, name: str, amount: Decimal) -> None:
        out.setdefault(pk, {}).setdefault(name, Decimal(0))
        out[pk][name] += amount

    for r in records:
        before = r["dynamodb"].get("OldImage", {}).get("status", {}).get("S")
        after = r["dynamodb"].get("NewImage", {}).get("status", {}).get("S")
        if after == "PAID" and before != "PAID":
            add("REVENUE", "revenue", Decimal(r["dynamodb"]["NewImage"]["total"]["N"]))
            add("REVENUE", "orders", Decimal(1))
        if before != after:
            if before is not None:
                add(f"STATUS#{before}", "count", Decimal(-1))
            if after is not None:
                add(f"STATUS#{after}", "count", Decimal(1))
    return out


def test_window_totals_are_emitted_once_per_window_through_the_runner(
    aws: AwsClients, endpoint_url: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    orders = unique_name("orders")
    stream_arn = create_stream_table(aws.dynamodb, orders)
    totals_table = unique_name("window-totals")
    aws.dynamodb.create_table(
        TableName=totals_table,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "part", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "part", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    recorder = aws.sqs.create_queue(QueueName=unique_name("recorder"))["QueueUrl"]
    function = unique_name("window")
    deploy_streamkit_function(
        aws, function, APP, env={"TOTALS_TABLE": totals_table, "RECORDER_QUEUE": recorder}
    )
    for n in range(6):
        aws.dynamodb.put_item(
            TableName=orders,
            Item={
                "pk": {"S": f"ORDER#{n}"},
                "status": {"S": "PLACED"},
                "total": {"N": f"{n + 1}.25"},
            },
        )
    for n in range(0, 6, 2):
        aws.dynamodb.update_item(
            TableName=orders,
            Key={"pk": {"S": f"ORDER#{n}"}},
            UpdateExpression="SET #s = :paid",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":paid": {"S": "PAID"}},
        )
    expected = expected_totals(lambda_records(aws.dynamodbstreams, stream_arn))

    def summed() -> dict[str, dict[str, Decimal]]:
        out: dict[str, dict[str, Decimal]] = {}
        for item in aws.dynamodb.scan(TableName=totals_table, ConsistentRead=True)["Items"]:
            if item["pk"]["S"] == "BLIP":
                continue
            for name, value in item.items():
                if "N" in value:
                    out.setdefault(item["pk"]["S"], {}).setdefault(name, Decimal(0))
                    out[item["pk"]["S"]][name] += Decimal(value["N"])
        return out

    with running_mapping(
        aws, endpoint_url, tmp_path / "state", function=function, stream_arn=stream_arn,
        BatchSize=10, TumblingWindowInSeconds=2, MaximumRetryAttempts=5,
    ) as (runner, uuid):  # fmt: skip
        wait_for(lambda: summed() == expected, timeout=60, what="window totals")
        stats = runner.stats()[uuid]
    assert stats["failed"] >= 1  # the blip was reported and the record redelivered
    invokes = []
    while True:
        messages = aws.sqs.receive_message(QueueUrl=recorder, MaxNumberOfMessages=10)
        if not messages.get("Messages"):
            break
        for message in messages["Messages"]:
            invokes.append(json.loads(message["Body"]))
            aws.sqs.delete_message(QueueUrl=recorder, ReceiptHandle=message["ReceiptHandle"])
    assert invokes and all("window" in i["fields"] and "state" in i["fields"] for i in invokes)
    finals = [i for i in invokes if i["final"]]
    assert finals and all(i["records"] == 0 for i in finals)  # the final invoke carries none
    parts = aws.dynamodb.scan(TableName=totals_table, ConsistentRead=True)["Items"]
    part_ids = {item["part"]["S"] for item in parts if item["pk"]["S"] != "BLIP"}
    assert 1 <= len(part_ids) <= len(finals)  # at most one part per final invoke
    assert summed() == expected
