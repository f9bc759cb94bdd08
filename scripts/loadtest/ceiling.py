"""The emulator's own GetRecords ceiling, measured in the same run.

A scratch table gets ``count`` order-shaped items (BatchWriteItem); then plain GetRecords calls
drain its stream from TRIM_HORIZON, one page after the other, as fast as the endpoint answers.
Records per second over the GetRecords time alone is the most any reader of one shard can get
from this endpoint: the mapping runner can only approach it. Measured twice: with the page size
the platform's mappings use (their BatchSize: what the runner asks for) and with GetRecords'
maximum of 1,000.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from loadtest.workload import OrderPlan, order_item


@dataclass(frozen=True)
class Ceiling:
    records: int
    records_per_s: float  # at the mappings' page size
    records_per_s_limit_1000: float
    page_size: int


def measure_ceiling(dynamodb: Any, streams: Any, count: int, page_size: int) -> Ceiling:
    table = f"loadtest-ceiling-{uuid.uuid4().hex[:8]}"
    stream_arn = dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]["LatestStreamArn"]
    try:
        plan = OrderPlan("", "normal", 1, "c@example.com", None, (("SKU-0001", 2),), 0)
        stamp = int(time.time() * 1000)
        for start in range(0, count, 25):
            requests = []
            for i in range(start, min(count, start + 25)):
                item = order_item(plan, stamp)
                item["pk"] = {"S": f"ORDER#ceiling{i:06d}"}
                requests.append({"PutRequest": {"Item": item}})
            pending: dict[str, Any] = {table: requests}
            while pending:
                pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems")
        paged = _drain(streams, stream_arn, page_size, count)
        full = _drain(streams, stream_arn, 1000, count)
    finally:
        dynamodb.delete_table(TableName=table)
    return Ceiling(count, paged, full, page_size)


def _drain(streams: Any, stream_arn: str, limit: int, expected: int) -> float:
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]
    iterator = streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    seen = 0
    elapsed = 0.0
    while seen < expected and iterator:
        started = time.perf_counter()
        page = streams.get_records(ShardIterator=iterator, Limit=limit)
        elapsed += time.perf_counter() - started
        seen += len(page["Records"])
        iterator = page.get("NextShardIterator")
        if not page["Records"]:
            break
    return seen / elapsed if elapsed > 0 else 0.0
