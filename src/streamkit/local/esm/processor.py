"""The processor stage: one batch through invoke, response judgement, retries and giving up.

Lambda's rules for DynamoDB streams, each a small policy object:

- ReportBatchItemFailures: see :mod:`streamkit.streams.verdicts`.
- :class:`RetryPolicy` -- MaximumRetryAttempts: 3 retries is 4 invokes; -1 retries forever.
- :class:`RecordAgePolicy` -- MaximumRecordAgeInSeconds: records older than that (by their
  ApproximateCreationDateTime) are not invoked again; they go to the on-failure destination as
  "RecordAgeExceeded", also in the middle of a batch's retries.
- :class:`BisectPolicy` -- BisectBatchOnFunctionError: a failed batch is split in two and each
  half retried; splitting consumes no retry.
- A partial response (ReportBatchItemFailures) that moves the checkpoint -- the records
  before the lowest reported failure are done -- makes the rest a *new batch* with a full
  retry budget, invoked at once (with BisectBatchOnFunctionError this is the split at the
  returned sequence number); its approximateInvokeCount starts again at 0. A response that
  reports the first record failed moves nothing and is an ordinary failure. Record age
  (from ApproximateCreationDateTime) is not reset: an old record still expires.
  https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html#streams-batchfailurereporting-bisect
  https://docs.aws.amazon.com/lambda/latest/dg/services-dynamodb-errors.html

When the retries are used up, the records still failing are described to the OnFailure
destination (or, without one, skipped) and the mapping moves on. Records are reported
finished to the shard's :class:`~streamkit.local.esm.checkpointer.ShardCheckpointer` only
after they succeeded, were filtered out, or were described to the destination.

How an invoke's event is built and its response judged is an :class:`InvocationStyle`: plain
``{"Records": [...]}`` here, the tumbling-window event in :mod:`streamkit.local.esm.windows`.
A tumbling window's final invoke (no records; it settles the window's records) runs through
:meth:`BatchProcessor.settle`, with the same invoke, retry pacing and give-up as a batch.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from streamkit.exceptions import InvokerClosedError
from streamkit.local.esm.batcher import Batch
from streamkit.local.esm.destinations import (
    RECORD_AGE_EXCEEDED,
    RETRY_ATTEMPTS_EXHAUSTED,
    DeliveryPolicy,
    FailureContext,
    OnFailureDestination,
    build_failure_record,
)
from streamkit.local.esm.stats import Counter
from streamkit.streams.backoff import Backoff
from streamkit.streams.verdicts import (
    InvokeOutcome,
    Invoker,
    InvokerCrash,
    Verdict,
    VerdictKind,
    judge_response,
)

__all__ = [
    "BatchOutcome",
    "BatchProcessor",
    "BisectPolicy",
    "FailureReporter",
    "FinalInvoke",
    "InvocationStyle",
    "InvokeOutcome",
    "Invoker",
    "PlainInvocation",
    "ProcessingPolicy",
    "RecordAgePolicy",
    "RetryDelay",
    "RetryPolicy",
    "StatsSink",
    "Verdict",
    "VerdictKind",
    "judge_response",
]

LOG = logging.getLogger(__name__)


# -- policies ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """MaximumRetryAttempts: ``-1`` retries forever; N allows N retries (N + 1 invokes)."""

    max_retry_attempts: int = -1

    def may_retry(self, retries_used: int) -> bool:
        return self.max_retry_attempts < 0 or retries_used < self.max_retry_attempts


@dataclass(frozen=True)
class RetryDelay(Backoff):
    """Pause before retry number ``n`` (1-based) of a failed batch: exponential, capped."""

    initial: float = 0.1
    maximum: float = 2.0


@dataclass(frozen=True)
class RecordAgePolicy:
    """MaximumRecordAgeInSeconds: ``-1`` keeps records forever."""

    max_age_s: int = -1

    def is_expired(self, record: Mapping[str, Any], now_epoch: float) -> bool:
        if self.max_age_s < 0:
            return False
        created: float = record["dynamodb"]["ApproximateCreationDateTime"]
        return now_epoch - created > self.max_age_s

    def expired_count(self, records: Sequence[Mapping[str, Any]], now_epoch: float) -> int:
        """How many leading records are too old to invoke (records are in arrival order)."""
        count = 0
        for record in records:
            if not self.is_expired(record, now_epoch):
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


# -- how an invoke looks -------------------------------------------------------------------


class InvocationStyle(Protocol):
    """Builds the event for some records and judges the function's response to it."""

    def event_for(self, records: list[dict[str, Any]]) -> dict[str, Any]: ...

    def judge(
        self,
        outcome: InvokeOutcome,
        records: Sequence[Mapping[str, Any]],
        *,
        report_batch_item_failures: bool,
    ) -> Verdict: ...


class PlainInvocation:
    """``{"Records": [...]}``, judged by :func:`judge_response`."""

    def event_for(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return {"Records": records}

    def judge(
        self,
        outcome: InvokeOutcome,
        records: Sequence[Mapping[str, Any]],
        *,
        report_batch_item_failures: bool,
    ) -> Verdict:
        return judge_response(
            outcome, records, report_batch_item_failures=report_batch_item_failures
        )


# -- giving up -----------------------------------------------------------------------------


class Acknowledgments(Protocol):
    """Where a processor reports records read and finished (a ShardCheckpointer)."""

    def read(self, sequence_numbers: Iterable[str]) -> None: ...
    def done(self, sequence_numbers: Iterable[str]) -> None: ...


class StatsSink(Protocol):
    def count(self, name: Counter, n: int = 1) -> None: ...
    def note_error(self, message: str | None) -> None: ...
    def note_iterator_age(self, age_ms: float) -> None: ...


@dataclass
class FailureReporter:
    """Describes records Lambda gives up on to the OnFailure destination (or logs that they
    are skipped without one). Delivery is retried until it works or the worker stops: the
    caller must not checkpoint past records whose description was not delivered."""

    function_arn: str
    stream_arn: str
    stats: StatsSink
    destination: OnFailureDestination | None = None
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)

    def give_up(
        self,
        *,
        where: str,
        shard_id: str,
        records: Sequence[Mapping[str, Any]],
        condition: str,
        invokes: int,
        last_outcome: InvokeOutcome | None,
        stop: threading.Event,
        batch_size: int | None = None,
        payload_records: Sequence[Mapping[str, Any]] | None = None,
    ) -> bool:
        """False if ``stop`` was set before the record was delivered. ``batch_size`` and
        ``payload_records`` describe more records than ``records`` holds (a tumbling window
        described by its first and last record)."""
        first = records[0]["dynamodb"]["SequenceNumber"]
        last = records[-1]["dynamodb"]["SequenceNumber"]
        count = batch_size if batch_size is not None else len(records)
        if self.destination is None:
            LOG.error(
                "%s: giving up on %d record(s) %s..%s (%s) after %d invoke(s); no on-failure "
                "destination, so they are skipped",
                where, count, first, last, condition, invokes,
            )  # fmt: skip
            self.stats.count(Counter.DISCARDED, count)
            return True
        function_error = None
        if last_outcome is not None and not last_outcome.ok:
            function_error = last_outcome.function_error or "Unhandled"
        context = FailureContext(
            condition=condition,
            records=records,
            shard_id=shard_id,
            stream_arn=self.stream_arn,
            function_arn=self.function_arn,
            approximate_invoke_count=invokes,
            request_id=last_outcome.request_id if last_outcome is not None else None,
            status_code=last_outcome.status_code if last_outcome is not None else None,
            function_error=function_error,
            executed_version=str(getattr(last_outcome, "executed_version", None) or "$LATEST"),
            batch_size=batch_size,
            payload_records=payload_records,
        )
        record = build_failure_record(context)
        if not self.delivery.deliver(
            self.destination, record, context, stop, self.stats.note_error
        ):
            return False
        LOG.warning(
            "%s: %d record(s) %s..%s sent to %s (%s, %d invoke(s))",
            where, count, first, last, self.destination.arn, condition, invokes,
        )  # fmt: skip
        self.stats.count(Counter.SENT_TO_DESTINATION, count)
        return True


# -- the state machine ---------------------------------------------------------------------


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


@dataclass(frozen=True)
class FinalInvoke:
    """An invoke without records that settles records invoked before it: a tumbling window's
    final invoke. ``described`` are the records an on-failure record names (the first and
    last), ``record_count`` how many records they stand for; the newest decides
    MaximumRecordAgeInSeconds."""

    event: dict[str, Any]
    style: InvocationStyle
    shard_id: str
    name: str  # e.g. "final invoke for window <start>..<end>"
    where: str  # who is talking in logs
    described: list[dict[str, Any]]
    record_count: int


@dataclass(frozen=True)
class ProcessingPolicy:
    """A mapping's processing settings as Lambda's policies; built once per mapping
    (:func:`streamkit.local.esm.pipeline.wire_mapping`) and shared by its processors."""

    report_batch_item_failures: bool = False
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    retry_delay: RetryDelay = field(default_factory=RetryDelay)
    record_age: RecordAgePolicy = field(default_factory=RecordAgePolicy)
    bisect: BisectPolicy = field(default_factory=BisectPolicy)
    clock: Callable[[], float] = time.time  # epoch seconds: record age, iterator age


@dataclass
class BatchProcessor:
    """Processes batches of one shard (or one lane of a shard) of one mapping, in order."""

    invoker: Invoker
    checkpointer: Acknowledgments  # the shard's: records read, records finished
    stats: StatsSink
    reporter: FailureReporter  # the mapping's: what is given up on, and where it goes
    policy: ProcessingPolicy = field(default_factory=ProcessingPolicy)
    label: str = ""  # who is talking in logs, e.g. "mapping 1a2b3c4d"
    style: InvocationStyle = field(default_factory=PlainInvocation)

    def _where(self, batch: Batch) -> str:
        return f"{self.label} shard {batch.shard_id}" if self.label else batch.shard_id

    def process(self, batch: Batch, stop: threading.Event) -> BatchOutcome:
        self.checkpointer.read(batch.sequence_numbers)
        if not batch.records:  # everything was filtered out: no invoke, move past it
            self.checkpointer.done(batch.take_finished())
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
                self._report_done(batch, pending)
                continue
            try:
                verdict = self._invoke(batch, segment)
            except InvokerClosedError:
                return BatchOutcome.ABANDONED
            if verdict.kind is VerdictKind.SUCCESS:
                self.stats.count(Counter.SUCCEEDED, len(segment.records))
                pending.popleft()
                self._report_done(batch, pending)
                continue
            self.stats.count(Counter.FAILED)
            moved = (
                verdict.kind is VerdictKind.PARTIAL
                and verdict.retry_from is not None
                and self._keep_from(batch, segment, verdict.retry_from) > 0
            )
            if moved:
                # The checkpoint moved: what is left is a new batch with a full retry
                # budget, invoked at once (with BisectBatchOnFunctionError this is the
                # split at the returned sequence number). AWS, recorded: with
                # MaximumRetryAttempts 3, a record failing alone after its batch of 3
                # partly succeeded is delivered 1 + 1 + 3 times, and its on-failure
                # record says approximateInvokeCount 4, batchSize 1 (localstack/localstack
                # tests/aws/services/lambda_/event_source_mapping/
                # test_lambda_integration_dynamodbstreams.snapshot.json,
                # test_dynamodb_report_batch_item_failures and
                # ..._with_on_failure_destination_config, validated against AWS).
                if self.policy.bisect.enabled:
                    self.stats.count(Counter.BISECTS)
                segment.invokes = segment.retries_used = 0
                continue
            if (halves := self.policy.bisect.split(segment.records)) is not None:
                # Splitting does not count against the retry quota.
                self.stats.count(Counter.BISECTS)
                pending.popleft()
                for half in reversed(halves):
                    pending.appendleft(
                        _Segment(half, segment.invokes, segment.retries_used, segment.last_outcome)
                    )
                continue
            if self.policy.retry.may_retry(segment.retries_used):
                segment.retries_used += 1
                self.stats.count(Counter.RETRIES)
                if not self.policy.retry_delay.pause(segment.retries_used, stop):
                    return BatchOutcome.ABANDONED
                continue
            if not self._give_up(batch, segment, segment.records, RETRY_ATTEMPTS_EXHAUSTED, stop):
                return BatchOutcome.ABANDONED
            pending.popleft()
            self._report_done(batch, pending)
        return BatchOutcome.COMPLETED

    def _call(self, event: dict[str, Any], where: str) -> InvokeOutcome:
        """One invoke. An invoker that breaks (not the function) gives an outcome that is
        retried like a function error; InvokerClosedError (the mapping is stopping) is raised
        so the caller abandons its records, checkpoint untouched."""
        try:
            outcome: InvokeOutcome = self.invoker.invoke(event)
        except InvokerClosedError:
            raise
        except Exception as exc:
            LOG.exception("%s: invoking %s failed", where, self.reporter.function_arn)
            outcome = InvokerCrash(str(uuid.uuid4()), f"{type(exc).__name__}: {exc}")
        self.stats.count(Counter.INVOKED)
        return outcome

    def settle(self, final: FinalInvoke, stop: threading.Event) -> BatchOutcome:
        """Run ``final`` until it succeeds, or MaximumRetryAttempts / MaximumRecordAgeInSeconds
        run out and the records it stands for are described to the on-failure destination.
        Nothing else of the shard is invoked meanwhile: "If invocation is unsuccessful, your
        Lambda function suspends further processing until a successful invocation"."""
        segment = _Segment(final.described)
        while not stop.is_set():
            try:
                segment.last_outcome = self._call(final.event, final.where)
            except InvokerClosedError:
                return BatchOutcome.ABANDONED
            segment.invokes += 1
            verdict = final.style.judge(
                segment.last_outcome,
                [],
                report_batch_item_failures=self.policy.report_batch_item_failures,
            )
            if verdict.kind is VerdictKind.SUCCESS:
                self.stats.count(Counter.WINDOWS_CLOSED)
                self.stats.note_error(None)
                LOG.debug("%s: final invoke ok (%d record(s))", final.where, final.record_count)
                return BatchOutcome.COMPLETED
            self.stats.count(Counter.FAILED)
            reason = f"{final.name} failed: {verdict.reason}"
            self.stats.note_error(reason)
            LOG.warning(
                "%s: %s (invoke %d); the shard waits for it", final.where, reason, segment.invokes
            )
            newest = final.described[-1] if final.described else None
            if newest is not None and self.policy.record_age.is_expired(
                newest, self.policy.clock()
            ):
                condition = RECORD_AGE_EXCEEDED
            elif self.policy.retry.may_retry(segment.retries_used):
                segment.retries_used += 1
                self.stats.count(Counter.RETRIES)
                if not self.policy.retry_delay.pause(segment.retries_used, stop):
                    return BatchOutcome.ABANDONED
                continue
            else:
                condition = RETRY_ATTEMPTS_EXHAUSTED
            if not final.described:  # no records: nothing to describe
                return BatchOutcome.COMPLETED
            given_up = self.reporter.give_up(
                where=final.where,
                shard_id=final.shard_id,
                records=final.described,
                condition=condition,
                invokes=segment.invokes,
                last_outcome=segment.last_outcome,
                stop=stop,
                batch_size=final.record_count,
                payload_records=[],
            )
            if given_up and condition == RECORD_AGE_EXCEEDED:
                self.stats.count(Counter.RECORD_AGE_EXPIRED, len(final.described))
            return BatchOutcome.COMPLETED if given_up else BatchOutcome.ABANDONED
        return BatchOutcome.ABANDONED

    def _invoke(self, batch: Batch, segment: _Segment) -> Verdict:
        event = self.style.event_for(segment.records)
        started = time.monotonic()
        outcome = self._call(event, self._where(batch))
        segment.invokes += 1
        segment.last_outcome = outcome
        newest = segment.records[-1]["dynamodb"]["ApproximateCreationDateTime"]
        self.stats.note_iterator_age(max(0.0, (self.policy.clock() - newest) * 1000.0))
        verdict = self.style.judge(
            outcome,
            segment.records,
            report_batch_item_failures=self.policy.report_batch_item_failures,
        )
        elapsed_ms = (time.monotonic() - started) * 1000
        first = segment.records[0]["dynamodb"]["SequenceNumber"]
        if verdict.kind is VerdictKind.SUCCESS:
            LOG.debug(
                "%s: invoked with %d record(s) from %s (request %s, %.0f ms): ok",
                self._where(batch), len(segment.records), first, outcome.request_id, elapsed_ms,
            )  # fmt: skip
            self.stats.note_error(None)
        else:
            LOG.warning(
                "%s: invoke %d of %d record(s) from %s (request %s) %s: %s",
                self._where(batch), segment.invokes, len(segment.records), first,
                outcome.request_id,
                "partly failed" if verdict.kind is VerdictKind.PARTIAL else "failed",
                verdict.reason,
            )  # fmt: skip
            self.stats.note_error(verdict.reason)
        return verdict

    def _keep_from(self, batch: Batch, segment: _Segment, sequence_number: str) -> int:
        """A partial failure: records before ``sequence_number`` succeeded; checkpoint them.
        Returns how many records that was."""
        index = next(
            i
            for i, r in enumerate(segment.records)
            if r["dynamodb"]["SequenceNumber"] == sequence_number
        )
        if index:
            self.stats.count(Counter.SUCCEEDED, index)
            segment.records = segment.records[index:]
            self.checkpointer.done(batch.take_finished(before=sequence_number))
        return index

    def _drop_expired(self, batch: Batch, segment: _Segment, stop: threading.Event) -> bool:
        expired = self.policy.record_age.expired_count(segment.records, self.policy.clock())
        if not expired:
            return True
        too_old, segment.records = segment.records[:expired], segment.records[expired:]
        if not self._give_up(batch, segment, too_old, RECORD_AGE_EXCEEDED, stop):
            segment.records = too_old + segment.records
            return False
        self.stats.count(Counter.RECORD_AGE_EXPIRED, len(too_old))
        if segment.records:
            resume = segment.records[0]["dynamodb"]["SequenceNumber"]
            self.checkpointer.done(batch.take_finished(before=resume))
        return True

    def _give_up(
        self,
        batch: Batch,
        segment: _Segment,
        records: list[dict[str, Any]],
        condition: str,
        stop: threading.Event,
    ) -> bool:
        return self.reporter.give_up(
            where=self._where(batch),
            shard_id=batch.shard_id,
            records=records,
            condition=condition,
            invokes=segment.invokes,
            last_outcome=segment.last_outcome,
            stop=stop,
        )

    def _report_done(self, batch: Batch, pending: deque[_Segment]) -> None:
        """Everything before the next pending segment is done (the whole batch when none)."""
        resume = pending[0].records[0]["dynamodb"]["SequenceNumber"] if pending else None
        self.checkpointer.done(batch.take_finished(before=resume))
