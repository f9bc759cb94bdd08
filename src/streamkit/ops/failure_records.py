"""Lambda's on-failure record for a stream batch, read back from a destination queue.

The record (https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html)::

    {"requestContext": {"requestId", "functionArn", "condition", "approximateInvokeCount"},
     "responseContext": {"statusCode", "executedVersion", "functionError"},
     "version": "1.0", "timestamp": "2019-11-14T00:13:49.717Z",
     "DDBStreamBatchInfo": {"shardId", "startSequenceNumber", "endSequenceNumber",
                            "approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord",
                            "batchSize", "streamArn"}}

It holds metadata only, never item images, so printing it whole is safe. An SQS destination
gets it as the message body; a queue subscribed to an SNS destination gets SNS's envelope with
the record as ``Message`` (unwrapped here).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FailureRecord", "parse_failure_record"]


@dataclass(frozen=True)
class FailureRecord:
    """One on-failure record; ``raw`` is the record exactly as delivered."""

    raw: Mapping[str, Any]
    condition: str
    function_arn: str
    request_id: str | None
    approximate_invoke_count: int | None
    timestamp: str | None
    stream_arn: str
    shard_id: str
    start_sequence_number: str
    end_sequence_number: str
    batch_size: int

    @property
    def table_name(self) -> str:
        return self.stream_arn.split(":table/", 1)[-1].split("/", 1)[0]

    def summary(self) -> str:
        """One line: when, why, which function, where in the stream, how much."""
        invokes = self.approximate_invoke_count
        return "  ".join(
            [
                self.timestamp or "?",
                self.condition,
                self.function_arn,
                f"table {self.table_name}",
                f"shard {self.shard_id}",
                f"seq {self.start_sequence_number}..{self.end_sequence_number}",
                f"batch {self.batch_size}",
                f"invokes {invokes if invokes is not None else '?'}",
            ]
        )


def parse_failure_record(body: str | Mapping[str, Any]) -> FailureRecord | None:
    """The failure record in a message body (or SNS envelope), or None when the body is not
    a DynamoDB stream on-failure record (other producers can share a queue)."""
    record: Any = body
    if isinstance(record, str):
        try:
            record = json.loads(record)
        except ValueError:
            return None
    if isinstance(record, Mapping) and record.get("Type") == "Notification":
        return parse_failure_record(str(record.get("Message", "")))
    if not isinstance(record, Mapping):
        return None
    info = record.get("DDBStreamBatchInfo")
    context = record.get("requestContext")
    if not isinstance(info, Mapping) or not isinstance(context, Mapping):
        return None
    try:
        return FailureRecord(
            raw=record,
            condition=str(context.get("condition") or "?"),
            function_arn=str(context["functionArn"]),
            request_id=_optional_str(context.get("requestId")),
            approximate_invoke_count=_optional_int(context.get("approximateInvokeCount")),
            timestamp=_optional_str(record.get("timestamp")),
            stream_arn=str(info["streamArn"]),
            shard_id=str(info["shardId"]),
            start_sequence_number=str(info["startSequenceNumber"]),
            end_sequence_number=str(info["endSequenceNumber"]),
            batch_size=int(info["batchSize"]),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _optional_int(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
