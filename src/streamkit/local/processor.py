"""The processor stage: one batch through invoke, response judgement, retries and giving up.

Lambda's rules for DynamoDB streams, each a small policy object so the next ones slot in:

- :func:`judge_response` -- ReportBatchItemFailures. Success: an empty or null
  ``batchItemFailures``, an empty or null response. Partial: the checkpoint moves to the
  lowest failed ``itemIdentifier`` (a SequenceNumber) and everything from there is retried.
  Whole batch failed: a function error or timeout, an empty/null/unknown identifier, an entry
  without the ``itemIdentifier`` key, or a response that is not such an object.
  https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html
- :class:`RetryPolicy` -- MaximumRetryAttempts: 3 retries is 4 invokes; -1 retries forever.
- :class:`RecordAgePolicy` -- MaximumRecordAgeInSeconds: records older than that are not
  invoked again; they go to the on-failure destination as "RecordAgeExceeded", also mid-retry.
- :class:`BisectPolicy` -- BisectBatchOnFunctionError: a failed batch is split in two and each
  half retried; splitting consumes no retry.

When the retries are used up, the records still failing are described to the OnFailure
destination (or, without one, skipped) and the mapping moves on. Checkpoints are written
only after records succeeded, were filtered out, or were described to the destination.
"""

from __future__ import annotations

import base64
import datetime as dt
import enum
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from streamkit.exceptions import InvokerClosedError
from streamkit.local.destinations import (
    RECORD_AGE_EXCEEDED,
    RETRY_ATTEMPTS_EXHAUSTED,
    DeliveryPolicy,
    FailureContext,
    OnFailureDestination,
    build_failure_record,
)
from streamkit.local.poller import Batch

__all__ = [
    "BatchOutcome",
    "BatchProcessor",
    "BisectPolicy",
    "InvokeOutcome",
    "Invoker",
    "LambdaRecordConverter",
    "RecordAgePolicy",
    "RetryDelay",
    "RetryPolicy",
    "StatsSink",
    "Verdict",
    "VerdictKind",
    "build_record_filter",
    "judge_response",
]

LOG = logging.getLogger(__name__)


# -- the Lambda event envelope ---------------------------------------------------------


def _epoch_seconds(value: Any) -> float:
    """ApproximateCreationDateTime as epoch seconds, whatever form the endpoint used (boto3
    parses it to a datetime; raw JSON has a number; some emulators send ISO strings)."""
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.timestamp()
    if isinstance(value, (int, float)):
        number = float(value)
        return number / 1000.0 if number > 1e11 else number  # milliseconds, if that large
    if isinstance(value, str):
        try:
            return _epoch_seconds(float(value))
        except ValueError:
            return _epoch_seconds(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
    raise ValueError(f"unrecognised ApproximateCreationDateTime: {value!r}")


def _b64(value: Any) -> str:
    return (
        base64.b64encode(value).decode("ascii")
        if isinstance(value, (bytes, bytearray))
        else str(value)
    )


def _json_attribute(av: Mapping[str, Any]) -> dict[str, Any]:
    """An attribute value as Lambda delivers it: binary (B, BS) base64-encoded."""
    ((tag, value),) = av.items()
    if tag == "B":
        return {"B": _b64(value)}
    if tag == "BS":
        return {"BS": [_b64(v) for v in value]}
    if tag == "M":
        return {"M": _json_image(value)}
    if tag == "L":
        return {"L": [_json_attribute(v) for v in value]}
    return {tag: value}


def _json_image(image: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _json_attribute(av) for name, av in image.items()}


class LambdaRecordConverter:
    """A GetRecords record -> the record Lambda puts in ``event["Records"]``:
    ``eventID, eventName, eventVersion, eventSource, awsRegion, dynamodb{
    ApproximateCreationDateTime (epoch seconds, rounded down as DynamoDB does), Keys,
    NewImage?, OldImage?, SequenceNumber, SizeBytes, StreamViewType}, eventSourceARN``
    (+ ``userIdentity`` for TTL deletes). ``awsRegion`` is the stream's region (moto always
    reports us-east-1)."""

    def __init__(self, stream_arn: str) -> None:
        self.stream_arn = stream_arn
        self.region = stream_arn.split(":")[3]

    def __call__(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        body = raw["dynamodb"]
        dynamodb: dict[str, Any] = {
            "ApproximateCreationDateTime": float(
                int(_epoch_seconds(body["ApproximateCreationDateTime"]))
            ),
            "Keys": _json_image(body.get("Keys") or {}),
        }
        for image in ("NewImage", "OldImage"):
            if image in body:
                dynamodb[image] = _json_image(body[image])
        dynamodb["SequenceNumber"] = body["SequenceNumber"]
        dynamodb["SizeBytes"] = body.get("SizeBytes", 0)
        dynamodb["StreamViewType"] = body.get("StreamViewType")
        record: dict[str, Any] = {
            "eventID": raw.get("eventID"),
            "eventName": raw.get("eventName"),
            "eventVersion": raw.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": self.region,
            "dynamodb": dynamodb,
            "eventSourceARN": self.stream_arn,
        }
        if raw.get("userIdentity"):
            record["userIdentity"] = dict(raw["userIdentity"])
        return record


def build_record_filter(patterns: Sequence[str]) -> Callable[[Mapping[str, Any]], bool] | None:
    """The FilterCriteria matcher for a mapping, or None without filters. Raises ImportError
    when the filter engine is missing: never run a filtered mapping unfiltered."""
    if not patterns:
        return None
    from streamkit.filters import FilterCriteria

    criteria = FilterCriteria.from_api({"Filters": [{"Pattern": p} for p in patterns]})
    matches: Callable[[Mapping[str, Any]], bool] = criteria.matches
    return matches


# -- invoking ------------------------------------------------------------------------------


class InvokeOutcome(Protocol):
    """What an invoker reports (``streamkit.local.invoker.InvokeResult`` has these fields)."""

    @property
    def request_id(self) -> str: ...
    @property
    def ok(self) -> bool: ...
    @property
    def status_code(self) -> int: ...
    @property
    def function_error(self) -> str | None: ...
    @property
    def payload(self) -> Any: ...
    @property
    def timed_out(self) -> bool: ...
    @property
    def init_error(self) -> bool: ...


class Invoker(Protocol):
    def invoke(self, payload: Mapping[str, Any]) -> InvokeOutcome: ...


@dataclass(frozen=True)
class _InvokerCrash:
    """Stands in for an outcome when the invoker itself raised (counted as a function error)."""

    request_id: str
    error: str
    ok: bool = False
    status_code: int = 500
    function_error: str | None = "Unhandled"
    payload: Any = None
    timed_out: bool = False
    init_error: bool = False


def _decoded_payload(payload: Any) -> Any:
    if isinstance(payload, (bytes, bytearray)):
        text = payload.decode("utf-8", "replace").strip()
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            return text
    return payload


class VerdictKind(enum.Enum):
    SUCCESS = "success"
    PARTIAL = "partial"
    FAILURE = "failure"


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    reason: str = ""
    retry_from: str | None = None  # PARTIAL: the lowest failed sequence number


def judge_response(
    outcome: InvokeOutcome,
    records: Sequence[Mapping[str, Any]],
    *,
    report_batch_item_failures: bool,
) -> Verdict:
    """Did the invoke succeed, partly succeed, or fail as a whole?"""
    if not outcome.ok:
        return Verdict(VerdictKind.FAILURE, _describe_error(outcome))
    if not report_batch_item_failures:
        return Verdict(VerdictKind.SUCCESS)
    response = _decoded_payload(outcome.payload)
    if not response:  # null, {}, [] and "" are all success
        return Verdict(VerdictKind.SUCCESS)
    if not isinstance(response, Mapping):
        return Verdict(
            VerdictKind.FAILURE, f"response is not a batchItemFailures object: {response!r:.200}"
        )
    failures = response.get("batchItemFailures")
    if not failures:  # missing, null or empty list
        return Verdict(VerdictKind.SUCCESS)
    if not isinstance(failures, list):
        return Verdict(VerdictKind.FAILURE, f"batchItemFailures is not a list: {failures!r:.200}")
    in_batch = {r["dynamodb"]["SequenceNumber"] for r in records}
    failed: list[str] = []
    for entry in failures:
        if not isinstance(entry, Mapping) or "itemIdentifier" not in entry:
            return Verdict(
                VerdictKind.FAILURE,
                f"batchItemFailures entry without itemIdentifier: {entry!r:.200}",
            )
        identifier = entry["itemIdentifier"]
        if not isinstance(identifier, str) or not identifier:
            return Verdict(VerdictKind.FAILURE, f"empty or null itemIdentifier: {identifier!r}")
        if identifier not in in_batch:
            return Verdict(
                VerdictKind.FAILURE, f"itemIdentifier {identifier!r} is not in the batch"
            )
        failed.append(identifier)
    lowest = min(failed, key=int)
    return Verdict(
        VerdictKind.PARTIAL, f"{len(failed)} item failure(s), lowest {lowest}", retry_from=lowest
    )


def _describe_error(outcome: InvokeOutcome) -> str:
    if isinstance(outcome, _InvokerCrash):
        return f"invoker error: {outcome.error}"
    payload = _decoded_payload(outcome.payload)
    detail = ""
    if isinstance(payload, Mapping) and payload.get("errorMessage") is not None:
        detail = f"{payload.get('errorType', 'Error')}: {payload['errorMessage']}"
    if outcome.init_error:
        return f"function could not be initialized: {detail or 'init failed'}"
    if outcome.timed_out:
        return f"function timed out{': ' + detail if detail else ''}"
    return (
        detail
        or f"function error ({outcome.function_error or 'status ' + str(outcome.status_code)})"
    )


# -- policies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """MaximumRetryAttempts: ``-1`` retries forever; N allows N retries (N + 1 invokes)."""

    max_retry_attempts: int = -1

    def may_retry(self, retries_used: int) -> bool:
        return self.max_retry_attempts < 0 or retries_used < self.max_retry_attempts


@dataclass(frozen=True)
class RetryDelay:
    """Pause before retry number ``n`` (1-based): exponential, capped."""

    initial: float = 0.1
    maximum: float = 2.0

    def before_retry(self, retry_number: int) -> float:
        return float(min(self.maximum, self.initial * 2 ** max(0, retry_number - 1)))


@dataclass(frozen=True)
class RecordAgePolicy:
    """MaximumRecordAgeInSeconds: ``-1`` keeps records forever."""

    max_age_s: int = -1

    def expired_count(self, records: Sequence[Mapping[str, Any]], now_epoch: float) -> int:
        """How many leading records are too old to invoke (records are in arrival order)."""
        if self.max_age_s < 0:
            return 0
        count = 0
        for record in records:
            if now_epoch - record["dynamodb"]["ApproximateCreationDateTime"] <= self.max_age_s:
                break
            count += 1
        return count


@dataclass(frozen=True)
class BisectPolicy:
    """BisectBatchOnFunctionError: halves of a failed batch, or None to retry it whole."""

    enabled: bool = False

    def split(self, records: Sequence[Mapping[str, Any]]) -> tuple[list[Any], list[Any]] | None:
        if not self.enabled or len(records) < 2:
            return None
        middle = len(records) // 2
        return list(records[:middle]), list(records[middle:])


# -- the state machine ---------------------------------------------------------------------


class StatsSink(Protocol):
    def count(self, name: str, n: int = 1) -> None: ...
    def note_error(self, message: str | None) -> None: ...
    def note_iterator_age(self, age_ms: float) -> None: ...


class BatchOutcome(enum.Enum):
    COMPLETED = "completed"  # every record succeeded, was filtered, or was given up on
    ABANDONED = "abandoned"  # stopped mid-batch; nothing past the last checkpoint was saved


@dataclass
class _Segment:
    """Records still to process together, with what they have been through so far."""

    records: list[dict[str, Any]]
    invokes: int = 0  # approximateInvokeCount: invokes these records were part of
    retries_used: int = 0
    last_outcome: InvokeOutcome | None = None
    last_verdict: Verdict | None = None


@dataclass
class BatchProcessor:
    """Processes batches of one shard of one mapping, in order."""

    function_arn: str
    stream_arn: str
    invoker: Invoker
    commit: Callable[[str], None]  # save "everything up to this sequence number is done"
    stats: StatsSink
    report_batch_item_failures: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    retry_delay: RetryDelay = field(default_factory=RetryDelay)
    record_age: RecordAgePolicy = field(default_factory=RecordAgePolicy)
    bisect: BisectPolicy = field(default_factory=BisectPolicy)
    destination: OnFailureDestination | None = None
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    clock: Callable[[], float] = time.time
    label: str = ""  # who is talking in logs, e.g. "mapping 1a2b3c4d"

    def _where(self, batch: Batch) -> str:
        return f"{self.label} shard {batch.shard_id}" if self.label else batch.shard_id

    def process(self, batch: Batch, stop: threading.Event) -> BatchOutcome:
        if not batch.records:  # everything was filtered out: no invoke, move past it
            if batch.last_sequence_number is not None:
                self.commit(batch.last_sequence_number)
            return BatchOutcome.COMPLETED
        pending: deque[_Segment] = deque([_Segment(list(batch.records))])
        while pending:
            if stop.is_set():
                return BatchOutcome.ABANDONED
            segment = pending[0]
            if not self._drop_expired(batch, segment, stop):
                return BatchOutcome.ABANDONED
            if not segment.records:
                pending.popleft()
                self._commit_done(batch, pending)
                continue
            try:
                verdict = self._invoke(batch, segment)
            except InvokerClosedError:
                return BatchOutcome.ABANDONED
            if verdict.kind is VerdictKind.SUCCESS:
                self.stats.count("succeeded", len(segment.records))
                pending.popleft()
                self._commit_done(batch, pending)
                continue
            self.stats.count("failed")
            if verdict.kind is VerdictKind.PARTIAL and verdict.retry_from is not None:
                self._keep_from(batch, segment, verdict.retry_from)
            elif (halves := self.bisect.split(segment.records)) is not None:
                # Splitting does not count against the retry quota.
                pending.popleft()
                for half in reversed(halves):
                    pending.appendleft(
                        _Segment(half, segment.invokes, segment.retries_used, segment.last_outcome)
                    )
                continue
            if self.retry.may_retry(segment.retries_used):
                segment.retries_used += 1
                if stop.wait(self.retry_delay.before_retry(segment.retries_used)):
                    return BatchOutcome.ABANDONED
                continue
            if not self._give_up(batch, segment, segment.records, RETRY_ATTEMPTS_EXHAUSTED, stop):
                return BatchOutcome.ABANDONED
            pending.popleft()
            self._commit_done(batch, pending)
        return BatchOutcome.COMPLETED

    def _invoke(self, batch: Batch, segment: _Segment) -> Verdict:
        event = {"Records": segment.records}
        started = time.monotonic()
        try:
            outcome: InvokeOutcome = self.invoker.invoke(event)
        except InvokerClosedError:
            raise  # the mapping is stopping: abandon the batch, checkpoint untouched
        except Exception as exc:  # the invoker broke, not the function: retried like an error
            LOG.exception("%s: invoking %s failed", self._where(batch), self.function_arn)
            outcome = _InvokerCrash(str(uuid.uuid4()), f"{type(exc).__name__}: {exc}")
        segment.invokes += 1
        segment.last_outcome = outcome
        self.stats.count("invoked")
        newest = segment.records[-1]["dynamodb"]["ApproximateCreationDateTime"]
        self.stats.note_iterator_age(max(0.0, (self.clock() - newest) * 1000.0))
        verdict = judge_response(
            outcome, segment.records, report_batch_item_failures=self.report_batch_item_failures
        )
        segment.last_verdict = verdict
        elapsed_ms = (time.monotonic() - started) * 1000
        first = segment.records[0]["dynamodb"]["SequenceNumber"]
        if verdict.kind is VerdictKind.SUCCESS:
            LOG.debug(
                "%s: invoked with %d record(s) from %s (request %s, %.0f ms): ok",
                self._where(batch),
                len(segment.records),
                first,
                outcome.request_id,
                elapsed_ms,
            )
            self.stats.note_error(None)
        else:
            LOG.warning(
                "%s: invoke %d of %d record(s) from %s (request %s) %s: %s",
                self._where(batch),
                segment.invokes,
                len(segment.records),
                first,
                outcome.request_id,
                "partly failed" if verdict.kind is VerdictKind.PARTIAL else "failed",
                verdict.reason,
            )
            self.stats.note_error(verdict.reason)
        return verdict

    def _keep_from(self, batch: Batch, segment: _Segment, sequence_number: str) -> None:
        """A partial failure: records before ``sequence_number`` succeeded; checkpoint them."""
        index = next(
            i
            for i, r in enumerate(segment.records)
            if r["dynamodb"]["SequenceNumber"] == sequence_number
        )
        if index:
            self.stats.count("succeeded", index)
            segment.records = segment.records[index:]
            checkpoint = batch.checkpoint_before(sequence_number)
            if checkpoint is not None:
                self.commit(checkpoint)

    def _drop_expired(self, batch: Batch, segment: _Segment, stop: threading.Event) -> bool:
        expired = self.record_age.expired_count(segment.records, self.clock())
        if not expired:
            return True
        too_old, segment.records = segment.records[:expired], segment.records[expired:]
        if not self._give_up(batch, segment, too_old, RECORD_AGE_EXCEEDED, stop):
            segment.records = too_old + segment.records
            return False
        if segment.records:
            checkpoint = batch.checkpoint_before(segment.records[0]["dynamodb"]["SequenceNumber"])
            if checkpoint is not None:
                self.commit(checkpoint)
        return True

    def _give_up(
        self,
        batch: Batch,
        segment: _Segment,
        records: list[dict[str, Any]],
        condition: str,
        stop: threading.Event,
    ) -> bool:
        """Describe ``records`` to the on-failure destination (or skip them without one).
        False if stopped before the record was delivered."""
        first, last = (
            records[0]["dynamodb"]["SequenceNumber"],
            records[-1]["dynamodb"]["SequenceNumber"],
        )
        if self.destination is None:
            LOG.error(
                "%s: giving up on %d record(s) %s..%s (%s) after %d invoke(s); no on-failure "
                "destination, so they are skipped",
                self._where(batch),
                len(records),
                first,
                last,
                condition,
                segment.invokes,
            )
            self.stats.count("discarded", len(records))
            return True
        outcome = segment.last_outcome
        function_error = None
        if outcome is not None and not outcome.ok:
            function_error = outcome.function_error or "Unhandled"
        context = FailureContext(
            condition=condition,
            records=records,
            shard_id=batch.shard_id,
            stream_arn=self.stream_arn,
            function_arn=self.function_arn,
            approximate_invoke_count=segment.invokes,
            request_id=outcome.request_id if outcome is not None else None,
            status_code=outcome.status_code if outcome is not None else None,
            function_error=function_error,
            executed_version=str(getattr(outcome, "executed_version", None) or "$LATEST"),
        )
        record = build_failure_record(context)
        if not self.delivery.deliver(
            self.destination, record, context, stop, self.stats.note_error
        ):
            return False
        LOG.warning(
            "%s: %d record(s) %s..%s sent to %s (%s, %d invoke(s))",
            self._where(batch),
            len(records),
            first,
            last,
            self.destination.arn,
            condition,
            segment.invokes,
        )
        self.stats.count("sent_to_destination", len(records))
        return True

    def _commit_done(self, batch: Batch, pending: deque[_Segment]) -> None:
        """Everything before the next pending segment is done (the whole batch when none)."""
        if pending:
            checkpoint = batch.checkpoint_before(
                pending[0].records[0]["dynamodb"]["SequenceNumber"]
            )
        else:
            checkpoint = batch.last_sequence_number
        if checkpoint is not None:
            self.commit(checkpoint)
