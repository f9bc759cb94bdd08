"""SQS for the ``dlq`` commands: find queues, read messages without consuming them, and find the
queues that event source mappings send their failures to.

Peeking. SQS has no read-only "peek": a message is read by receiving it, which hides it for a
visibility timeout. :func:`peek` receives with a short hold (``PEEK_HOLD_S``) so each message is
read once, then makes every message it read visible again at once (ChangeMessageVisibility 0).
Receiving with VisibilityTimeout=0 instead would hand the same messages back on every call, so
a queue of more than ten messages could not be paged through. The trade-offs, stated in the
README:

- each peek counts as a receive: ``ApproximateReceiveCount`` grows, so a redrive policy on the
  queue itself (maxReceiveCount) can move messages on after repeated peeks;
- while a peek runs (and for up to ``PEEK_HOLD_S`` seconds if it is killed before it restores
  visibility) other consumers do not see the messages it holds;
- on a FIFO queue a received message also holds back the rest of its message group.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streamkit._aws import error_code
from streamkit.exceptions import QueueNotFoundError

__all__ = [
    "PEEK_HOLD_S",
    "FailureDestination",
    "QueueMessage",
    "delete",
    "failure_destinations",
    "hold",
    "list_queue_urls",
    "peek",
    "queue_counts",
    "queue_name",
    "queue_url_for_arn",
    "receive",
    "release",
    "resolve_queue_url",
]

LOG = logging.getLogger(__name__)

PEEK_HOLD_S = 30
"""Seconds a peeked message stays hidden if the peek dies before making it visible again."""

_MISSING_QUEUE_CODES = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
)
_SQS_BATCH = 10  # ReceiveMessage and the *Batch calls take at most 10 messages


@dataclass(frozen=True)
class QueueMessage:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int | None
    sent_at: str | None
    """SentTimestamp as ISO-8601 UTC."""


def queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _is_missing_queue(exc: BaseException) -> bool:
    return error_code(exc) in _MISSING_QUEUE_CODES


def resolve_queue_url(sqs: Any, queue: str, *, endpoint: str) -> str:
    """The URL of ``queue``, given as a URL, an ARN or a name; :class:`QueueNotFoundError` if
    it does not exist."""
    try:
        if queue.startswith(("http://", "https://")):
            sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])
            return queue
        if queue.startswith("arn:"):
            url = queue_url_for_arn(sqs, queue)
            if url is None:
                raise QueueNotFoundError(queue, endpoint)
            return url
        found: str = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        return found
    except Exception as exc:
        if _is_missing_queue(exc):
            raise QueueNotFoundError(queue, endpoint) from exc
        raise


def queue_url_for_arn(sqs: Any, arn: str) -> str | None:
    """``arn:aws:sqs:<region>:<account>:<name>`` -> its URL, or None if it does not exist."""
    parts = arn.split(":")
    if len(parts) != 6 or parts[2] != "sqs":
        return None
    try:
        url: str = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=parts[4])[
            "QueueUrl"
        ]
    except Exception as exc:
        if _is_missing_queue(exc):
            return None
        raise
    return url


def queue_counts(sqs: Any, url: str) -> tuple[int, int]:
    """(visible, in flight) message counts; SQS's figures are approximate."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return (
        int(attributes.get("ApproximateNumberOfMessages", 0)),
        int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
    )


def _message(raw: dict[str, Any]) -> QueueMessage:
    attributes = raw.get("Attributes") or {}
    sent = attributes.get("SentTimestamp")
    sent_at = None
    if sent is not None:
        moment = dt.datetime.fromtimestamp(int(sent) / 1000, tz=dt.UTC)
        sent_at = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    count = attributes.get("ApproximateReceiveCount")
    return QueueMessage(
        message_id=str(raw["MessageId"]),
        receipt_handle=str(raw["ReceiptHandle"]),
        body=str(raw.get("Body", "")),
        receive_count=int(count) if count is not None else None,
        sent_at=sent_at,
    )


def receive(
    sqs: Any, url: str, max_messages: int, *, hold_s: int, wait_s: int = 1
) -> list[QueueMessage]:
    """Receive up to ``max_messages`` distinct messages, each hidden for ``hold_s`` seconds.

    Stops once it holds as many as the queue said were visible; when a receive comes back empty
    before that, it tries once more with long polling (``wait_s``): a short-polling receive
    samples only some of SQS's servers and can miss messages that are there.
    """
    if max_messages <= 0:
        return []
    expected, _ = queue_counts(sqs, url)
    held: dict[str, QueueMessage] = {}
    long_poll = expected == 0
    while len(held) < max_messages:
        response = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(_SQS_BATCH, max_messages - len(held)),
            VisibilityTimeout=hold_s,
            WaitTimeSeconds=wait_s if long_poll else 0,
            AttributeNames=["SentTimestamp", "ApproximateReceiveCount"],
        )
        batch = [_message(raw) for raw in response.get("Messages") or []]
        for message in batch:
            held.setdefault(message.message_id, message)
        if not batch:
            if long_poll:
                break
            long_poll = True
        elif len(held) >= expected:
            break
    return list(held.values())


def release(sqs: Any, url: str, messages: Iterable[QueueMessage]) -> None:
    """Make ``messages`` visible again now (ChangeMessageVisibility 0). Best effort: a receipt
    handle that has expired belongs to a message that is visible already."""
    pending = list(messages)
    for start in range(0, len(pending), _SQS_BATCH):
        chunk = pending[start : start + _SQS_BATCH]
        entries = [
            {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
            for i, m in enumerate(chunk)
        ]
        try:
            response = sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)
        except Exception as exc:
            LOG.warning("could not make %d message(s) visible again: %s", len(chunk), exc)
            continue
        for failed in response.get("Failed") or []:
            LOG.warning(
                "could not make message %s visible again: %s",
                chunk[int(failed["Id"])].message_id,
                failed.get("Message") or failed.get("Code"),
            )


def peek(
    sqs: Any, url: str, max_messages: int, *, hold_s: int = PEEK_HOLD_S, wait_s: int = 1
) -> list[QueueMessage]:
    """Read up to ``max_messages`` messages and leave them in the queue (see module doc)."""
    messages = receive(sqs, url, max_messages, hold_s=hold_s, wait_s=wait_s)
    release(sqs, url, messages)
    return messages


def hold(sqs: Any, url: str, message: QueueMessage, seconds: int) -> None:
    """Hide ``message`` for ``seconds`` more, counted from now."""
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=message.receipt_handle, VisibilityTimeout=seconds
    )


def delete(sqs: Any, url: str, message: QueueMessage) -> None:
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message.receipt_handle)


@dataclass(frozen=True)
class FailureDestination:
    """An event source mapping's OnFailure destination (DestinationConfig.OnFailure)."""

    mapping_uuid: str
    function_arn: str
    event_source_arn: str
    destination_arn: str
    state: str

    @property
    def kind(self) -> str:
        """ "sqs", "sns", "s3" or whatever service the ARN names."""
        parts = self.destination_arn.split(":")
        return parts[2] if len(parts) > 2 else "?"

    @classmethod
    def of_mapping(
        cls, mapping: Mapping[str, Any], uuid: str | None = None
    ) -> FailureDestination | None:
        """The OnFailure destination of one mapping (as the Lambda API describes it), or None
        if it has none. ``uuid`` stands in for a description without its ``UUID``."""
        on_failure = (mapping.get("DestinationConfig") or {}).get("OnFailure") or {}
        destination = on_failure.get("Destination")
        if not destination:
            return None
        return cls(
            mapping_uuid=str(uuid if uuid is not None else mapping.get("UUID")),
            function_arn=str(mapping.get("FunctionArn", "")),
            event_source_arn=str(mapping.get("EventSourceArn", "")),
            destination_arn=str(destination),
            state=str(mapping.get("State", "")),
        )


def failure_destinations(lambda_client: Any) -> Sequence[FailureDestination]:
    """Every mapping that has an OnFailure destination (ListEventSourceMappings, every page)."""
    found: list[FailureDestination] = []
    marker: str | None = None
    while True:
        page = lambda_client.list_event_source_mappings(**({"Marker": marker} if marker else {}))
        for mapping in page.get("EventSourceMappings") or []:
            destination = FailureDestination.of_mapping(mapping)
            if destination is not None:
                found.append(destination)
        marker = page.get("NextMarker")
        if not marker:
            return found


def list_queue_urls(sqs: Any) -> list[str]:
    """Every queue's URL (ListQueues, every page)."""
    urls: list[str] = []
    token: str | None = None
    while True:
        page = sqs.list_queues(MaxResults=1000, **({"NextToken": token} if token else {}))
        urls.extend(page.get("QueueUrls") or [])
        token = page.get("NextToken")
        if not token:
            return urls
