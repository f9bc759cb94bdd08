"""On-failure destinations: the invocation record Lambda sends when it gives up on records.

https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html shows the shape::

    {"requestContext": {"requestId", "functionArn", "condition", "approximateInvokeCount"},
     "responseContext": {"statusCode", "executedVersion", "functionError"},
     "version": "1.0", "timestamp": "2019-11-14T00:13:49.717Z",
     "DDBStreamBatchInfo": {"shardId", "startSequenceNumber", "endSequenceNumber",
                            "approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord",
                            "batchSize", "streamArn"}}

``condition`` is "RetryAttemptsExhausted" or "RecordAgeExceeded". ``functionError`` is
"Unhandled" after a function error or timeout and null when the batch failed through its
``batchItemFailures`` (AWS-recorded behaviour). Arrival times are whole seconds ("...:19Z"),
since DynamoDB's ApproximateCreationDateTime is; ``timestamp`` has milliseconds.

SQS gets the record as the message body, SNS as ``Message``; S3 gets it plus
``payload: {"Records": [...]}`` under ``aws/lambda/<mapping-uuid>/<shardId>/YYYY/MM/DD/
YYYY-MM-DDTHH.MM.SS-<uuid>``. After a partial failure only the still-failing records are
described: the processor passes only those.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from streamkit.exceptions import DestinationDeliveryError

__all__ = [
    "RECORD_AGE_EXCEEDED",
    "RETRY_ATTEMPTS_EXHAUSTED",
    "DeliveryPolicy",
    "FailureContext",
    "OnFailureDestination",
    "S3Destination",
    "SnsDestination",
    "SqsDestination",
    "build_failure_record",
    "destination_for",
    "iso_millis",
    "iso_seconds",
]

LOG = logging.getLogger(__name__)

RETRY_ATTEMPTS_EXHAUSTED = "RetryAttemptsExhausted"
RECORD_AGE_EXCEEDED = "RecordAgeExceeded"


@dataclass(frozen=True)
class FailureContext:
    """Everything the failure record describes. ``records`` are Lambda-shaped, in order."""

    condition: str
    records: Sequence[Mapping[str, Any]]
    shard_id: str
    stream_arn: str
    function_arn: str
    approximate_invoke_count: int
    request_id: str | None
    status_code: int | None
    function_error: str | None
    executed_version: str = "$LATEST"
    # A tumbling window given up on is described by its first and last record: batch_size then
    # says how many records it had, and payload_records what S3's payload lists (nothing: the
    # window's records were invoked and checkpointed batch by batch, and are not kept).
    batch_size: int | None = None
    payload_records: Sequence[Mapping[str, Any]] | None = None


def iso_millis(moment: dt.datetime) -> str:
    """``2019-11-14T00:13:49.717Z``"""
    return (
        moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.")
        + f"{moment.microsecond // 1000:03d}Z"
    )


def iso_seconds(epoch_seconds: float) -> str:
    """``2019-11-14T00:13:19Z``"""
    return dt.datetime.fromtimestamp(int(epoch_seconds), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_failure_record(
    context: FailureContext, *, now: dt.datetime | None = None
) -> dict[str, Any]:
    if not context.records:
        raise ValueError("a failure record describes at least one record")
    first, last = context.records[0]["dynamodb"], context.records[-1]["dynamodb"]
    return {
        "requestContext": {
            "requestId": context.request_id or str(uuid.uuid4()),
            "functionArn": context.function_arn,
            "condition": context.condition,
            "approximateInvokeCount": context.approximate_invoke_count,
        },
        "responseContext": {
            "statusCode": context.status_code,
            "executedVersion": context.executed_version,
            "functionError": context.function_error,
        },
        "version": "1.0",
        "timestamp": iso_millis(now or dt.datetime.now(dt.UTC)),
        "DDBStreamBatchInfo": {
            "shardId": context.shard_id,
            "startSequenceNumber": first["SequenceNumber"],
            "endSequenceNumber": last["SequenceNumber"],
            "approximateArrivalOfFirstRecord": iso_seconds(first["ApproximateCreationDateTime"]),
            "approximateArrivalOfLastRecord": iso_seconds(last["ApproximateCreationDateTime"]),
            "batchSize": len(context.records) if context.batch_size is None else context.batch_size,
            "streamArn": context.stream_arn,
        },
    }


class OnFailureDestination(Protocol):
    arn: str

    def send(self, record: Mapping[str, Any], context: FailureContext) -> None:
        """Deliver once; raise on failure (the caller retries)."""


def _arn_parts(arn: str) -> list[str]:
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise ValueError(f"not an ARN: {arn}")
    return parts


class SqsDestination:
    def __init__(self, client: Any, arn: str) -> None:
        self.client = client
        self.arn = arn
        self._queue_url: str | None = None

    def queue_url(self) -> str:
        if self._queue_url is None:
            parts = _arn_parts(self.arn)
            url: str = self.client.get_queue_url(
                QueueName=parts[5], QueueOwnerAWSAccountId=parts[4]
            )["QueueUrl"]
            self._queue_url = url
        return self._queue_url

    def send(self, record: Mapping[str, Any], context: FailureContext) -> None:
        try:
            self.client.send_message(QueueUrl=self.queue_url(), MessageBody=json.dumps(record))
        except Exception:
            self._queue_url = None  # the queue may have been deleted and made again: look it up
            raise


class SnsDestination:
    def __init__(self, client: Any, arn: str) -> None:
        self.client = client
        self.arn = arn

    def send(self, record: Mapping[str, Any], context: FailureContext) -> None:
        self.client.publish(TopicArn=self.arn, Message=json.dumps(record))


class S3Destination:
    def __init__(self, client: Any, arn: str, mapping_uuid: str) -> None:
        self.client = client
        self.arn = arn
        self.bucket = _arn_parts(arn)[5]
        self.mapping_uuid = mapping_uuid

    def object_key(self, shard_id: str, now: dt.datetime) -> str:
        moment = now.astimezone(dt.UTC)
        return (
            f"aws/lambda/{self.mapping_uuid}/{shard_id}/{moment:%Y/%m/%d}/"
            f"{moment:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"
        )

    def send(self, record: Mapping[str, Any], context: FailureContext) -> None:
        described = context.records if context.payload_records is None else context.payload_records
        body = {**record, "payload": {"Records": list(described)}}
        key = self.object_key(context.shard_id, _written_at(record))
        self.client.put_object(Bucket=self.bucket, Key=key, Body=json.dumps(body).encode())


def _written_at(record: Mapping[str, Any]) -> dt.datetime:
    """The record's ``timestamp``: the S3 key is named after the same moment."""
    try:
        return dt.datetime.strptime(str(record["timestamp"]), "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=dt.UTC
        )
    except (KeyError, ValueError):
        return dt.datetime.now(dt.UTC)


def destination_for(
    arn: str, *, client_for: Callable[[str], Any], mapping_uuid: str
) -> OnFailureDestination:
    """The sender for ``arn``; ``client_for(service)`` returns a boto3 client."""
    service = _arn_parts(arn)[2]
    if service == "sqs":
        return SqsDestination(client_for("sqs"), arn)
    if service == "sns":
        return SnsDestination(client_for("sns"), arn)
    if service == "s3":
        return S3Destination(client_for("s3"), arn, mapping_uuid)
    raise ValueError(f"unsupported on-failure destination: {arn}")


@dataclass
class DeliveryPolicy:
    """Retry delivery with jittered exponential backoff until it works or the worker stops
    (an unreachable endpoint, a queue, topic or bucket that does not exist yet): the checkpoint
    must not pass records whose failure record was not delivered. Each failure is logged."""

    initial_delay: float = 0.2
    max_delay: float = 5.0

    def deliver(
        self,
        destination: OnFailureDestination,
        record: Mapping[str, Any],
        context: FailureContext,
        stop: threading.Event,
        on_error: Callable[[str], None] | None = None,
    ) -> bool:
        """True once delivered; False if ``stop`` was set first."""
        delay = self.initial_delay
        while not stop.is_set():
            try:
                destination.send(record, context)
                return True
            except Exception as exc:
                error = DestinationDeliveryError(destination.arn, f"{type(exc).__name__}: {exc}")
                pause = delay * random.uniform(0.5, 1.0)
                LOG.warning("%s; retrying in %.2fs", error, pause)
                if on_error is not None:
                    on_error(str(error))
                stop.wait(pause)
                delay = min(delay * 2, self.max_delay)
        return False
