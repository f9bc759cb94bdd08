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
  ``isFinalInvokeForWindow: true``, the final state. It runs through the shard's processor
  (:meth:`~streamkit.local.esm.processor.BatchProcessor.settle`): retried until it succeeds
  or MaximumRetryAttempts / MaximumRecordAgeInSeconds run out, and nothing else of the shard
  is invoked meanwhile ("If invocation is unsuccessful, your Lambda function suspends further
  processing until a successful invocation"). Running out is reported to the on-failure
  destination as the window's records (first and last, and how many).
- State is at most 1 MB ("If it exceeds that size, Lambda terminates the window early"): after
  an invoke returns a bigger state, a final invoke with ``isWindowTerminatedEarly: true`` hands
  that state over, and the window goes on with a fresh ``{}``.
- Checkpoints: a window's records are checkpointed only after its final invoke succeeded
  ("After successful invocation, your function checkpoints the sequence number"): the
  shard's checkpointer is held while a window is open. State lives
  in memory, so a runner that restarts mid-window reads the window's records again and rebuilds
  the state from ``{}``: the final state is never missing records, nor counting any twice.
- ParallelizationFactor must be 1 (validated in :mod:`streamkit.local.esm.config`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from streamkit.local.esm.destinations import iso_seconds
from streamkit.local.esm.pipeline import ShardParts
from streamkit.local.esm.processor import BatchOutcome, FinalInvoke
from streamkit.streams.reader import ShardReader
from streamkit.streams.verdicts import (
    InvokeOutcome,
    Verdict,
    VerdictKind,
    decoded_payload,
    judge_response,
)
from streamkit.wire import MAX_STATE_BYTES, STATE, state_size, window_event

__all__ = ["MAX_STATE_BYTES", "Window", "WindowSession", "WindowedShard", "window_of"]

LOG = logging.getLogger(__name__)

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
        return window_event(
            records,
            window=self.window.as_event(),
            state=self.state,
            shard_id=self.shard_id,
            stream_arn=self.stream_arn,
            final=final,
            early=early,
        )

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
        state = response.get(STATE) if isinstance(response, Mapping) else None
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
            self.oversized = state_size(self.state) > MAX_STATE_BYTES
        return verdict


class WindowedShard:
    """Processes one shard with tumbling windows (see the module doc)."""

    def __init__(self, parts: ShardParts, reader: ShardReader) -> None:
        self.parts = parts
        self.reader = reader
        self.size_s = parts.config.tumbling_window_s
        self.session: WindowSession | None = None
        # Held while a window is open: its records are done, checkpointed after its final invoke.
        self.checkpointer = parts.checkpointer()

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
            if not batch.records:  # all filtered out: no invoke, the records are done
                parts.processor(self.checkpointer).process(batch, stop)
                continue
            window = window_of(batch.records[0], self.size_s)
            later = self.session is not None and window.start > self.session.window.start
            if later and not self._close_window():  # a later window's records: this one is over
                return False
            if self.session is None:
                self._open(WindowSession(window, parts.shard_id, parts.config.event_source_arn))
            session = self.session
            assert session is not None
            session.note(batch.records)
            processor = parts.processor(self.checkpointer, style=session)
            if processor.process(batch, stop) is BatchOutcome.ABANDONED:
                return False
            if session.oversized:
                if not self._close_window(early=True):
                    return False
                self._open(session.successor())
        return False

    def _open(self, session: WindowSession) -> None:
        self.session = session
        self.checkpointer.hold()

    def _close_window(self, *, early: bool = False) -> bool:
        """The final invoke of the current window (if any), then its checkpoint. False if
        stopped before it was settled."""
        session = self.session
        if session is not None:
            if not self._final_invoke(session, early=early):
                return False
            self.session = None
        self.checkpointer.release()
        return True

    def _final_invoke(self, session: WindowSession, *, early: bool) -> bool:
        first, last = session.first_record, session.last_record
        described = (
            [] if first is None or last is None else [first] if first is last else [first, last]
        )
        final = FinalInvoke(
            event=session.final_event(early=early),
            style=session,
            shard_id=self.parts.shard_id,
            name=f"final invoke for window {session.window}",
            where=f"{self.parts.where} window {session.window}",
            described=described,
            record_count=session.record_count,
        )
        processor = self.parts.processor(self.checkpointer, style=session)
        return processor.settle(final, self.parts.stop) is BatchOutcome.COMPLETED
