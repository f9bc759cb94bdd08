"""On-failure destinations for the console: what ``streamkit dlq`` lists, shows and replays.

Reading and replaying use :mod:`streamkit.ops` as the CLI does: :func:`~streamkit.ops.queues.
peek` (receive, then make visible again), :func:`~streamkit.ops.failure_records.
parse_failure_record`, :class:`~streamkit.ops.replay.Replayer` (records read back from the
stream while it retains them, the mapping's filter applied, the runner's event) and, for a
whole queue, :func:`~streamkit.ops.dlq.dlq_replay` itself.

Peeking counts as a receive (see :mod:`streamkit.ops.queues`), so a queue is peeked again only
when its message counts change, or after ``repeek_s`` seconds, not on every browser poll.
Only SQS destinations can be read back; an SNS destination is listed with its ARN.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from streamkit.console.runner_view import RunnerView
from streamkit.exceptions import RecordsUnavailableError, StreamkitError
from streamkit.ops import queues
from streamkit.ops.dlq import REPLAY_HOLD_S, dlq_replay, make_invoker
from streamkit.ops.endpoint import Endpoint
from streamkit.ops.failure_records import FailureRecord, parse_failure_record
from streamkit.ops.invokers import ReplayInvoker
from streamkit.ops.queues import FailureDestination
from streamkit.ops.replay import Replayer, ReplayStatus
from streamkit.ops.tail_format import record_fields
from streamkit.records import StreamRecord

__all__ = ["MAX_MESSAGES", "Destinations", "NotFound"]

MAX_MESSAGES = 100  # failure records read per queue for a page (SQS gives 10 per receive)


class NotFound(LookupError):
    """No such mapping, destination or message."""


@dataclass
class _Peeked:
    counts: tuple[int, int]
    at: float
    messages: list[queues.QueueMessage]


class Destinations:
    """The OnFailure destinations of the runner's mappings, their records, and replay."""

    def __init__(
        self,
        view: RunnerView,
        *,
        invoker_factory: Callable[[], ReplayInvoker] | None = None,
        repeek_s: float = 30.0,
    ) -> None:
        self.view = view
        self.endpoint = Endpoint.from_options(view.endpoint_url, view.region)
        self._invoker_factory = invoker_factory or (
            lambda: make_invoker(self.endpoint, "auto", str(view.state_dir / "console-replay"))
        )
        self._repeek_s = repeek_s
        self._queue_lock = threading.Lock()  # peeks and replays take turns: no hidden messages
        self._peeked: dict[str, _Peeked] = {}
        # Per queue URL: message ID -> the keys of its records (kept while the message is).
        self._plans: dict[str, dict[str, dict[str, Any]]] = {}
        self._urls: dict[str, str | None] = {}

    # -- what exists ---------------------------------------------------------------------

    def _destinations(self) -> list[FailureDestination]:
        found = []
        for uuid, mapping in self.view.configurations().items():
            destination = FailureDestination.of_mapping(mapping, uuid)
            if destination is not None:
                found.append(destination)
        return sorted(found, key=lambda d: (d.event_source_arn, d.function_arn, d.mapping_uuid))

    def _destination(self, mapping_uuid: str) -> FailureDestination:
        for destination in self._destinations():
            if destination.mapping_uuid == mapping_uuid:
                return destination
        raise NotFound(f"mapping {mapping_uuid} has no on-failure destination")

    def _queue_url(self, destination: FailureDestination) -> str | None:
        if destination.kind != "sqs":
            return None
        arn = destination.destination_arn
        if self._urls.get(arn) is None:
            self._urls[arn] = queues.queue_url_for_arn(self.endpoint.client("sqs"), arn)
        return self._urls[arn]

    def summary(self) -> list[dict[str, Any]]:
        """One entry per mapping with a destination, with the queue's message counts."""
        out = []
        sqs = self.endpoint.client("sqs")
        for destination in self._destinations():
            entry: dict[str, Any] = {
                "mapping_uuid": destination.mapping_uuid,
                "function_arn": destination.function_arn,
                "event_source_arn": destination.event_source_arn,
                "destination_arn": destination.destination_arn,
                "kind": destination.kind,
                "queue_url": None,
                "visible": None,
                "in_flight": None,
            }
            url = self._queue_url(destination)
            if url is not None:
                entry["queue_url"] = url
                try:
                    entry["visible"], entry["in_flight"] = queues.queue_counts(sqs, url)
                except Exception as exc:
                    entry["error"] = str(exc)
            out.append(entry)
        return out

    # -- failure records ---------------------------------------------------------------

    def failures(self, mapping_uuid: str) -> dict[str, Any]:
        """The failure records in the mapping's destination that this mapping sent, each with
        the keys of the records it describes (read back from the stream, images never)."""
        destination = self._destination(mapping_uuid)
        url = self._queue_url(destination)
        result: dict[str, Any] = {
            "mapping_uuid": mapping_uuid,
            "destination_arn": destination.destination_arn,
            "queue_url": url,
            "visible": None,
            "in_flight": None,
            "failures": [],
            "other_messages": 0,
            "by_condition": {},
        }
        if url is None:
            result["note"] = "only SQS destinations can be read back"
            return result
        sqs = self.endpoint.client("sqs")
        messages, (visible, in_flight) = self._peek(sqs, url)
        result["visible"], result["in_flight"] = visible, in_flight
        known = self._plans.get(url, {})
        plans = self._plans[url] = {
            m.message_id: known[m.message_id] for m in messages if m.message_id in known
        }
        for message in messages:
            failure = parse_failure_record(message.body)
            if failure is None or not _sent_by(failure, destination):
                result["other_messages"] += 1
                continue
            result["failures"].append(
                {
                    "message_id": message.message_id,
                    "sent_at": message.sent_at,
                    "receive_count": message.receive_count,
                    **_describe(failure),
                    **self._records_of(plans, message.message_id, failure),
                }
            )
        conditions: dict[str, int] = {}
        for failure in result["failures"]:
            conditions[failure["condition"]] = conditions.get(failure["condition"], 0) + 1
        result["by_condition"] = conditions
        return result

    def _peek(self, sqs: Any, url: str) -> tuple[list[queues.QueueMessage], tuple[int, int]]:
        with self._queue_lock:
            counts = queues.queue_counts(sqs, url)
            cached = self._peeked.get(url)
            now = time.monotonic()
            if cached is None or cached.counts != counts or now - cached.at > self._repeek_s:
                messages = queues.peek(sqs, url, MAX_MESSAGES) if counts[0] else []
                cached = _Peeked(counts, now, messages)
                self._peeked[url] = cached
            return list(cached.messages), counts

    def _records_of(
        self, plans: dict[str, dict[str, Any]], message_id: str, failure: FailureRecord
    ) -> dict[str, Any]:
        """The described records' keys, read once per message (records never change)."""
        if message_id in plans:
            return plans[message_id]
        replayer = Replayer(
            self.endpoint.client("dynamodbstreams"), self.endpoint.client("lambda"), None
        )
        found: dict[str, Any]
        try:
            plan = replayer.plan(failure)
        except RecordsUnavailableError as exc:
            found = {"records": [], "unavailable": exc.reason}
        except Exception as exc:  # not cached: the endpoint may answer next time
            return {"records": [], "unavailable": f"could not read the stream: {exc}"}
        else:
            records = []
            for raw in plan.records:
                fields = record_fields(StreamRecord(raw), shard_id=failure.shard_id, images=False)
                records.append(
                    {k: fields[k] for k in ("sequence_number", "event_name", "keys") if k in fields}
                )
            found = {"records": records, "unavailable": None, "notes": plan.notes()}
        plans[message_id] = found
        return found

    # -- replay --------------------------------------------------------------------------

    def replay_all(self, mapping_uuid: str) -> dict[str, Any]:
        """``streamkit dlq replay QUEUE`` on the mapping's destination queue (every failure
        record in it, as the CLI does); its report lines come back as ``log``."""
        destination = self._destination(mapping_uuid)
        url = self._queue_url(destination)
        if url is None:
            raise NotFound(f"{destination.destination_arn} is not a queue that can be replayed")
        out = io.StringIO()
        with self._queue_lock:
            code = dlq_replay(
                self.endpoint, url, MAX_MESSAGES, out, invoker_factory=self._invoker_factory
            )
            self._peeked.pop(url, None)
        return {"ok": code == 0, "log": out.getvalue().splitlines()}

    def replay_one(self, mapping_uuid: str, message_id: str) -> dict[str, Any]:
        """Replay the batch one failure record describes; the message is deleted only when
        the function took it (as ``streamkit dlq replay`` decides)."""
        destination = self._destination(mapping_uuid)
        url = self._queue_url(destination)
        if url is None:
            raise NotFound(f"{destination.destination_arn} is not a queue that can be replayed")
        sqs = self.endpoint.client("sqs")
        with self._queue_lock:
            self._peeked.pop(url, None)
            visible, _ = queues.queue_counts(sqs, url)
            held = queues.receive(
                sqs, url, max(1, min(visible, MAX_MESSAGES)), hold_s=REPLAY_HOLD_S
            )
            target = next((m for m in held if m.message_id == message_id), None)
            queues.release(sqs, url, [m for m in held if m is not target])
            if target is None:
                raise NotFound(f"message {message_id} is not in the queue (replayed, or in flight)")
            failure = parse_failure_record(target.body)
            if failure is None:
                queues.release(sqs, url, [target])
                raise NotFound(f"message {message_id} is not a DynamoDB stream failure record")
            invoker = self._invoker_factory()
            try:
                replayer = Replayer(
                    self.endpoint.client("dynamodbstreams"),
                    self.endpoint.client("lambda"),
                    invoker,
                )
                outcome = replayer.replay(failure)
            except StreamkitError as exc:
                queues.release(sqs, url, [target])
                return {"ok": False, "status": "failed", "detail": str(exc)}
            finally:
                invoker.close()
            if outcome.status is ReplayStatus.REPLAYED:
                queues.delete(sqs, url, target)
                self._plans.get(url, {}).pop(message_id, None)
            else:
                queues.release(sqs, url, [target])
        return {
            "ok": outcome.succeeded,
            "status": outcome.status.value,
            "detail": outcome.detail,
            "request_id": outcome.request_id,
            "notes": outcome.notes,
            "records": len(outcome.plan.records) if outcome.plan else None,
        }


def _sent_by(failure: FailureRecord, destination: FailureDestination) -> bool:
    """A queue can be shared: show only this mapping's records (same function and stream)."""
    return (
        failure.function_arn == destination.function_arn
        and failure.stream_arn == destination.event_source_arn
    )


def _describe(failure: FailureRecord) -> dict[str, Any]:
    response = failure.raw.get("responseContext") or {}
    return {
        "condition": failure.condition,
        "function_error": response.get("functionError"),
        "status_code": response.get("statusCode"),
        "timestamp": failure.timestamp,
        "request_id": failure.request_id,
        "approximate_invoke_count": failure.approximate_invoke_count,
        "shard_id": failure.shard_id,
        "start_sequence_number": failure.start_sequence_number,
        "end_sequence_number": failure.end_sequence_number,
        "batch_size": failure.batch_size,
    }
