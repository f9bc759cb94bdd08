"""Tumbling windows (TumblingWindowInSeconds): state carried from invoke to invoke.

AWS's rules (https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-windows.html), and how
the runner applies them:

- Windows are fixed, back to back, aligned to the epoch in multiples of the window size, and a
  record belongs to the window of its ApproximateCreationDateTime ("Lambda determines tumbling
  window boundaries based on the time when records were inserted into the stream"). A batch
  never spans two windows.
- Every invoke gets the window's ``state`` (``{}`` at first) and must return ``{"state": {...}}``
  (plus ``batchItemFailures`` with ReportBatchItemFailures); "If the response does not contain
  a state property, Lambda considers this a failed invocation". The event::

      {"Records": [...], "window": {"start": "2020-07-30T17:00:00Z", "end": "...:05:00Z"},
       "state": {...}, "shardId": "...", "eventSourceARN": "...",
       "isFinalInvokeForWindow": false, "isWindowTerminatedEarly": false}

- When the window is over -- its end has passed and a read made after that found nothing more
  for it, a record of a later window arrived, or the shard ended ("When the shard ends, Lambda
  considers the window closed") -- the function gets one final invoke: no records,
  ``isFinalInvokeForWindow: true``, the final state. It is retried until it succeeds or
  MaximumRetryAttempts / MaximumRecordAgeInSeconds run out, and nothing else of the shard is
  invoked meanwhile ("If invocation is unsuccessful, your Lambda function suspends further
  processing until a successful invocation"). Running out is reported to the on-failure
  destination as the window's records (first and last, and how many).
- State is at most 1 MB ("If it exceeds that size, Lambda terminates the window early"): after
  an invoke returns a bigger state, a final invoke with ``isWindowTerminatedEarly: true`` hands
  that state over, and the window goes on with a fresh ``{}``.
- Checkpoints: a window's records are checkpointed only after its final invoke succeeded
  ("After successful invocation, your function checkpoints the sequence number"). State lives
  in memory, so a runner that restarts mid-window reads the window's records again and rebuilds
  the state from ``{}``: the final state is never missing records, nor counting any twice.
- ParallelizationFactor must be 1 (validated in :mod:`streamkit.local.esm.config`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streamkit.exceptions import InvokerClosedError
from streamkit.local.esm.destinations import (
    RECORD_AGE_EXCEEDED,
    RETRY_ATTEMPTS_EXHAUSTED,
    iso_seconds,
)
from streamkit.local.esm.pipeline import ShardParts
from streamkit.local.esm.processor import BatchOutcome, RecordAgePolicy, RetryPolicy
from streamkit.streams.reader import ShardReader
from streamkit.streams.verdicts import (
    InvokeOutcome,
    InvokerCrash,
    Verdict,
    VerdictKind,
    decoded_payload,
    judge_response,
)

__all__ = ["MAX_STATE_BYTES", "Window", "WindowSession", "WindowedShard", "window_of"]

LOG = logging.getLogger("streamkit.local.runner")

MAX_STATE_BYTES = 1024 * 1024
_CLOCK_CHECK_S = 0.25


@dataclass(frozen=True)
class Window:
    """``[start, end)`` in epoch seconds."""

    start: int
    end: int

    @classmethod
    def containing(cls, epoch_seconds: float, size_s: int) -> Window:
        start = int(epoch_seconds // size_s) * size_s
        return cls(start, start + size_s)

    def as_event(self) -> dict[str, str]:
        return {"start": iso_seconds(self.start), "end": iso_seconds(self.end)}

    def __str__(self) -> str:
        return f"{iso_seconds(self.start)}..{iso_seconds(self.end)}"


def window_of(record: Mapping[str, Any], size_s: int) -> Window:
    return Window.containing(record["dynamodb"]["ApproximateCreationDateTime"], size_s)


class WindowSession:
    """One window's state and the records invoked in it; builds the windowed event and
    judges responses (an :class:`~streamkit.local.esm.processor.InvocationStyle`)."""

    def __init__(self, window: Window, shard_id: str, stream_arn: str) -> None:
        self.window = window
        self.shard_id = shard_id
        self.stream_arn = stream_arn
        self.state: dict[str, Any] = {}
        self.oversized = False  # the last state returned was over 1 MB
        self.first_record: dict[str, Any] | None = None
        self.last_record: dict[str, Any] | None = None
        self.record_count = 0

    def successor(self) -> WindowSession:
        """The same window going on with a fresh state (after an early termination)."""
        return WindowSession(self.window, self.shard_id, self.stream_arn)

    def note(self, records: Sequence[dict[str, Any]]) -> None:
        if records:
            self.first_record = self.first_record or records[0]
            self.last_record = records[-1]
            self.record_count += len(records)

    def _event(self, records: list[dict[str, Any]], *, final: bool, early: bool) -> dict[str, Any]:
        return {
            "Records": records,
            "window": self.window.as_event(),
            "state": self.state,
            "shardId": self.shard_id,
            "eventSourceARN": self.stream_arn,
            "isFinalInvokeForWindow": final,
            "isWindowTerminatedEarly": early,
        }

    def event_for(self, records: list[dict[str, Any]]) -> dict[str, Any]:
        return self._event(records, final=False, early=False)

    def final_event(self, *, early: bool) -> dict[str, Any]:
        return self._event([], final=True, early=early)

    def judge(
        self,
        outcome: InvokeOutcome,
        records: Sequence[Mapping[str, Any]],
        *,
        report_batch_item_failures: bool,
    ) -> Verdict:
        """A response must carry a ``state`` object; with a success or partial success it
        becomes the window's state."""
        if not outcome.ok:
            return judge_response(outcome, records, report_batch_item_failures=False)
        response = decoded_payload(outcome.payload)
        state = response.get("state") if isinstance(response, Mapping) else None
        if not isinstance(state, Mapping):
            return Verdict(
                VerdictKind.FAILURE,
                f"a tumbling-window response must contain a state object: {response!r:.200}",
            )
        verdict = judge_response(
            outcome, records, report_batch_item_failures=report_batch_item_failures
        )
        if verdict.kind is not VerdictKind.FAILURE:
            self.state = dict(state)
            size = len(json.dumps(self.state, separators=(",", ":")).encode("utf-8"))
            self.oversized = size > MAX_STATE_BYTES
        return verdict


class WindowedShard:
    """Processes one shard with tumbling windows (see the module doc)."""

    def __init__(self, parts: ShardParts, reader: ShardReader) -> None:
        self.parts = parts
        self.reader = reader
        self.size_s = parts.config.tumbling_window_s
        self.session: WindowSession | None = None
        # The window's records are done but checkpointed only after its final invoke.
        self.pending_checkpoint: str | None = None

    def run(self) -> bool:
        parts, stop = self.parts, self.parts.stop
        poller = parts.poller(
            self.reader,
            split_when=lambda first, record: (
                window_of(record, self.size_s).start > window_of(first, self.size_s).start
            ),
        )
        while not stop.is_set():
            timeout = None
            if self.session is not None:
                # Look at the clock again at least this often (it is the mapping's clock,
                # which need not run with the poller's).
                timeout = min(_CLOCK_CHECK_S, max(0.0, self.session.window.end - parts.clock()))
            batch = poller.next_batch(stop, timeout)
            if batch is None:
                if stop.is_set():
                    return False
                if poller.exhausted:  # a closed shard's end closes its window too
                    return self._close_window()
                window_over = self.session is not None and parts.clock() >= self.session.window.end
                if window_over and not self._close_window():
                    return False
                continue
            if not batch.records:  # all filtered out
                self._done_through(batch.last_sequence_number)
                continue
            window = window_of(batch.records[0], self.size_s)
            later = self.session is not None and window.start > self.session.window.start
            if later and not self._close_window():  # a later window's records: this one is over
                return False
            if self.session is None:
                self.session = WindowSession(window, parts.shard_id, parts.config.event_source_arn)
            session = self.session
            session.note(batch.records)
            processor = parts.processor(self._done_through, style=session)
            if processor.process(batch, stop) is BatchOutcome.ABANDONED:
                return False
            if session.oversized:
                if not self._close_window(early=True):
                    return False
                self.session = session.successor()
        return False

    def _done_through(self, sequence_number: str | None) -> None:
        if sequence_number is None:
            return
        if self.session is None:
            self.parts.commit(sequence_number)
        else:
            self.pending_checkpoint = sequence_number

    def _close_window(self, *, early: bool = False) -> bool:
        """The final invoke of the current window (if any), then its checkpoint. False if
        stopped before it was settled."""
        session = self.session
        if session is not None:
            if not self._final_invoke(session, early=early):
                return False
            self.session = None
        if self.pending_checkpoint is not None:
            self.parts.commit(self.pending_checkpoint)
            self.pending_checkpoint = None
        return True

    def _final_invoke(self, session: WindowSession, *, early: bool) -> bool:
        parts, stop = self.parts, self.parts.stop
        config = parts.config
        retry = RetryPolicy(config.max_retry_attempts)
        record_age = RecordAgePolicy(config.max_record_age_s)
        event = session.final_event(early=early)
        invokes = retries = 0
        last_outcome: InvokeOutcome | None = None
        where = f"{parts.where} window {session.window}"
        while not stop.is_set():
            try:
                last_outcome = parts.invoker.invoke(event)
            except InvokerClosedError:
                return False
            except Exception as exc:  # the invoker broke: retried like a function error
                LOG.exception("%s: final invoke failed", where)
                last_outcome = InvokerCrash(str(uuid.uuid4()), f"{type(exc).__name__}: {exc}")
            invokes += 1
            parts.stats.count("invoked")
            verdict = session.judge(
                last_outcome, [], report_batch_item_failures=config.report_batch_item_failures
            )
            if verdict.kind is VerdictKind.SUCCESS:
                parts.stats.count("windows_closed")
                parts.stats.note_error(None)
                LOG.debug("%s: final invoke ok (%d record(s))", where, session.record_count)
                return True
            parts.stats.count("failed")
            reason = f"final invoke for window {session.window} failed: {verdict.reason}"
            parts.stats.note_error(reason)
            LOG.warning("%s: %s (invoke %d); the shard waits for it", where, reason, invokes)
            last = session.last_record
            if last is not None and record_age.is_expired(last, parts.clock()):
                condition = RECORD_AGE_EXCEEDED
            elif retry.may_retry(retries):
                retries += 1
                if stop.wait(parts.retry_delay.before_retry(retries)):
                    return False
                continue
            else:
                condition = RETRY_ATTEMPTS_EXHAUSTED
            return self._give_up(session, condition, invokes, last_outcome, where)
        return False

    def _give_up(
        self,
        session: WindowSession,
        condition: str,
        invokes: int,
        last_outcome: InvokeOutcome | None,
        where: str,
    ) -> bool:
        first, last = session.first_record, session.last_record
        if first is None or last is None:  # no records: nothing to describe
            return True
        described = [first] if first is last else [first, last]
        return self.parts.reporter().give_up(
            where=where,
            shard_id=self.parts.shard_id,
            records=described,
            condition=condition,
            invokes=invokes,
            last_outcome=last_outcome,
            stop=self.parts.stop,
            batch_size=session.record_count,
            payload_records=[],
        )
