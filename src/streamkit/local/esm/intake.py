"""Where raw stream records enter a shard's pipeline: converted and filtered, in one place.

Every record read from a shard passes through the mapping's :class:`RecordIntake` once:
it becomes the record Lambda delivers (:class:`~streamkit.streams.envelope.LambdaRecordConverter`)
and is matched against the mapping's FilterCriteria. A record that does not match keeps its
sequence number -- it is done at once and the checkpoint moves past it -- but is never invoked.
https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html

After a restart, a record a lane had finished before (above the shard's watermark,
:mod:`streamkit.local.esm.checkpoints`) is admitted the same way: done at once, never invoked
again (``already_done``).

The batcher (one batch at a time, tumbling windows) and the lane dispatcher
(ParallelizationFactor) both admit records here; a lane's batcher gets records admitted
already (:func:`admitted_as_is`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from streamkit.streams.envelope import LambdaRecordConverter, build_record_filter

__all__ = ["Admitted", "Intake", "RecordIntake", "admitted_as_is"]

LOG = logging.getLogger(__name__)

# (sequence number, the Lambda record, or None when the filter dropped it)
Admitted = tuple[str, dict[str, Any] | None]
Intake = Callable[[Sequence[Mapping[str, Any]]], list[Admitted]]


class RecordIntake:
    """Converts and filters one mapping's records; reports (polled, filtered) per read."""

    def __init__(
        self,
        stream_arn: str,
        filter_patterns: Sequence[str] = (),
        *,
        on_admit: Callable[[int, int], None] | None = None,
        already_done: Callable[[str], bool] | None = None,
        label: str = "",
    ) -> None:
        self.convert = LambdaRecordConverter(stream_arn)
        self.record_filter = build_record_filter(filter_patterns)
        self._on_admit = on_admit
        self._already_done = already_done
        self._label = label or stream_arn

    def __call__(self, raw_records: Sequence[Mapping[str, Any]]) -> list[Admitted]:
        admitted: list[Admitted] = []
        filtered = skipped = 0
        for raw in raw_records:
            record = self.convert(raw)
            sequence = record["dynamodb"]["SequenceNumber"]
            if self._already_done is not None and self._already_done(sequence):
                skipped += 1
                admitted.append((sequence, None))
            elif self.record_filter is not None and not self.record_filter(record):
                filtered += 1
                admitted.append((sequence, None))
            else:
                admitted.append((sequence, record))
        if skipped:
            LOG.info("%s: skipped %d record(s) finished before the restart", self._label, skipped)
        if self._on_admit is not None:
            self._on_admit(len(admitted) - skipped, filtered)
        return admitted


def admitted_as_is(records: Sequence[Mapping[str, Any]]) -> list[Admitted]:
    """Records that went through a :class:`RecordIntake` already (a lane's)."""
    admitted: list[Admitted] = []
    for record in records:
        assert isinstance(record, dict)
        admitted.append((record["dynamodb"]["SequenceNumber"], record))
    return admitted
