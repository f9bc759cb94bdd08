"""Fulfilment: an order that becomes RESERVED starts the fulfilment state machine.

The machine (Terraform: modules/order_platform, ``fulfilment.asl.json``) waits for pickup, then
marks the order SHIPPED through the DynamoDB service integration (conditional on RESERVED at
that version), which writes the change back to the orders stream like any other.

The execution name is ``<order id>-v<version>``: Step Functions keeps execution names unique
per state machine (https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html),
so a redelivered record can never start a second execution. A restart with the same name and
input is accepted as the same execution; with a different input (the start time differs) AWS
answers ExecutionAlreadyExists, which here means "already started": success.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from orderplatform.changes import ORDER_PREFIX, is_noop, order_id
from streamkit import StreamRecord, became

__all__ = ["Fulfilment", "execution_name"]

_became_reserved = became("status", "RESERVED")
# Allowed: 1-80 characters, none of whitespace, brackets, wildcards, control or these: "#%\^|~`$&,;:/
_UNSAFE = re.compile(r"[\s<>{}\[\]?*\"#%\\^|~`$&,;:/\x00-\x1f\x7f-\x9f]")


def execution_name(order: str, version: int) -> str:
    suffix = f"-v{version}"
    return _UNSAFE.sub("_", order)[: 80 - len(suffix)] + suffix


class Fulfilment:
    """The fulfilment fan-out target. Returns the execution name started, or ``None``."""

    def __init__(
        self,
        *,
        client: Any,
        state_machine_arn: str,
        pickup_wait_seconds: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not state_machine_arn:
            raise ValueError("Fulfilment needs the state machine ARN")
        self.client = client
        self.state_machine_arn = state_machine_arn
        self.pickup_wait_seconds = pickup_wait_seconds
        self.clock = clock

    def __call__(self, record: StreamRecord) -> str | None:
        if not str(record.keys.get("pk", "")).startswith(ORDER_PREFIX) or is_noop(record):
            return None
        if not _became_reserved(record):
            return None
        image = record.new_image or {}
        version = int(image["version"])
        name = execution_name(order_id(record), version)
        execution_input = {
            "pk": record.keys["pk"],
            "version": str(version),
            "next_version": str(version + 1),
            "pickup_wait_seconds": self.pickup_wait_seconds,
            # updated_at of the SHIPPED write: ASL has no epoch-milliseconds clock, so the
            # execution is told when it will write (start + the pickup wait).
            "shipped_at": str(int((self.clock() + self.pickup_wait_seconds) * 1000)),
        }
        try:
            self.client.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=name,
                input=json.dumps(execution_input, separators=(",", ":")),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
                raise
        return name
