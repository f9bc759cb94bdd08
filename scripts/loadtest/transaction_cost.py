"""What one TransactWriteItems costs the emulator as its table grows: moto's own
(``copy.deepcopy`` of every named table, stream included, per transaction) against the
emulator's per-item rollback (streamkit.local.emulator.moto_speed).

    python scripts/loadtest/transaction_cost.py

In-process, on moto's backend (no HTTP): CPU milliseconds per transaction of two actions (a
conditional Put of a new item, an Update of an existing one) on a streamed table of N items,
the shape of the platform's analytics fences and stock reservations.
"""

from __future__ import annotations

import time
from typing import Any

from moto.dynamodb.models import DynamoDBBackend

from streamkit.local.emulator import moto_speed

MOTO = DynamoDBBackend.transact_write_items
CALLS = 50


def cost_ms(transact: Any, items: int) -> float:
    backend = DynamoDBBackend("us-east-1", "123456789012")
    backend.create_table(
        "fences",
        schema=[{"AttributeName": "id", "KeyType": "HASH"}],
        attr=[{"AttributeName": "id", "AttributeType": "S"}],
        throughput=None,
        billing_mode="PAY_PER_REQUEST",
        indexes=[],
        global_indexes=[],
        streams={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        sse_specification=None,
        tags=[],
        deletion_protection_enabled=False,
        warm_throughput=None,
    )
    for i in range(items):
        backend.put_item("fences", {"id": {"S": f"m{i}"}, "v": {"S": "x" * 40}})
    started = time.process_time()
    for j in range(CALLS):
        transact(
            backend,
            [
                {
                    "Put": {
                        "TableName": "fences",
                        "Item": {"id": {"S": f"new{j}"}},
                        "ConditionExpression": "attribute_not_exists(id)",
                    }
                },
                {
                    "Update": {
                        "TableName": "fences",
                        "Key": {"id": {"S": "m0"}},
                        "UpdateExpression": "SET v = :v",
                        "ExpressionAttributeValues": {":v": {"S": "y"}},
                    }
                },
            ],
        )
    return (time.process_time() - started) / CALLS * 1000


def main() -> None:
    print("items in table | moto ms/transaction | emulator ms/transaction (CPU)")
    for items in (100, 1000, 5000):
        moto, ours = cost_ms(MOTO, items), cost_ms(moto_speed.transact_write_items, items)
        print(f"{items:>14} | {moto:>19.2f} | {ours:>8.2f}")


if __name__ == "__main__":
    main()
