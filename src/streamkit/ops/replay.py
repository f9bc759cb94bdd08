"""Replay a batch an event source mapping gave up on, from its on-failure record.

The failure record holds no records, only where they were: ``DDBStreamBatchInfo`` names the
stream, the shard and the first and last sequence numbers of the batch (after a partial
failure, of the records still failing). Replay reads them back and builds the event the runner
built:

1. DescribeStream: the stream must still exist with the same label (a recreated table has a
   new stream) and list the shard.
2. GetShardIterator AT_SEQUENCE_NUMBER ``startSequenceNumber``, then GetRecords until
   ``endSequenceNumber``. DynamoDB Streams keeps records for 24 hours: a trimmed start gives
   TrimmedDataAccessException, and then the batch cannot be replayed (reported, message kept).
   https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_streams_GetShardIterator.html
3. Each record becomes the Lambda record (:class:`~streamkit.streams.envelope.
   LambdaRecordConverter`, as in the runner) and, when the mapping that failed still exists,
   its FilterCriteria apply (records it filtered out were never in the batch).
4. The event is ``{"Records": [...]}`` and goes to the record's ``functionArn`` (or another
   function), through a :class:`~streamkit.ops.invokers.ReplayInvoker`.

The replay succeeded when the invoke did and the response reports no ``batchItemFailures``:
only then may the caller delete the message.
"""

from __future__ import annotations

import enum
import functools
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streamkit._aws import error_code
from streamkit.exceptions import RecordsUnavailableError, StreamkitError, StreamNotFoundError
from streamkit.ops.failure_records import FailureRecord
from streamkit.ops.invokers import ReplayInvoker
from streamkit.streams.envelope import LambdaRecordConverter, build_record_filter
from streamkit.streams.reader import GET_RECORDS_LIMIT, describe_stream
from streamkit.streams.throttling import ThrottleBackoff
from streamkit.streams.verdicts import decoded_payload, describe_error
from streamkit.wire import BATCH_ITEM_FAILURES

__all__ = [
    "MappingSettings",
    "ReplayOutcome",
    "ReplayPlan",
    "ReplayStatus",
    "Replayer",
    "find_mapping_settings",
    "read_batch",
]

LOG = logging.getLogger(__name__)

# An open shard can answer GetRecords with empty pages before the records further on; the
# records asked for exist (the failure record saw them), so a few empty pages are tolerated.
EMPTY_PAGES_LIMIT = 20


class ReplayStatus(enum.Enum):
    REPLAYED = "replayed"
    """The function took the batch: the message may be deleted."""
    FAILED = "failed"
    """Function error, batchItemFailures, or the function could not be invoked."""
    GONE = "gone"
    """The records are no longer in the stream."""
    SKIPPED = "skipped"
    """Not replayable as a plain batch (a tumbling-window mapping's failure)."""
    DRY_RUN = "dry-run"


@dataclass(frozen=True)
class MappingSettings:
    """What replay needs from the mapping that failed (ListEventSourceMappings)."""

    uuid: str
    filter_patterns: tuple[str, ...] = ()
    tumbling_window_s: int = 0


@dataclass(frozen=True)
class ReplayPlan:
    failure: FailureRecord
    function: str
    records: list[dict[str, Any]]
    """Lambda-shaped records, filtered as the mapping filters."""
    read: int
    """Records read from the stream between start and end, before filtering."""
    mapping: MappingSettings | None

    @property
    def sequence_numbers(self) -> list[str]:
        return [r["dynamodb"]["SequenceNumber"] for r in self.records]

    def notes(self) -> list[str]:
        notes: list[str] = []
        if self.mapping is None:
            notes.append("its mapping no longer exists: FilterCriteria not applied")
        if len(self.records) != self.failure.batch_size:
            notes.append(
                f"{len(self.records)} record(s) found, the failure record says "
                f"{self.failure.batch_size}"
            )
        return notes


@dataclass(frozen=True)
class ReplayOutcome:
    status: ReplayStatus
    function: str
    detail: str = ""
    plan: ReplayPlan | None = None
    request_id: str | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return self.status is ReplayStatus.REPLAYED


def read_batch(
    streams_client: Any, failure: FailureRecord, *, backoff: ThrottleBackoff | None = None
) -> list[dict[str, Any]]:
    """The records from ``startSequenceNumber`` to ``endSequenceNumber`` of the failure's shard,
    as GetRecords returns them. Raises :class:`RecordsUnavailableError` when any of them has
    left the stream."""
    backoff = backoff or ThrottleBackoff()
    arn, shard_id = failure.stream_arn, failure.shard_id
    start, end = int(failure.start_sequence_number), int(failure.end_sequence_number)

    def gone(reason: str) -> RecordsUnavailableError:
        return RecordsUnavailableError(arn, shard_id, failure.start_sequence_number, reason)

    try:
        description = describe_stream(streams_client, arn, backoff=backoff)
    except StreamNotFoundError as exc:
        raise gone("the stream no longer exists (table deleted, or recreated)") from exc
    if shard_id not in {shard.shard_id for shard in description.shards}:
        raise gone("the shard is no longer in the stream (trimmed after 24 hours)")
    records: list[dict[str, Any]] = []
    try:
        iterator: str | None = backoff.call(
            lambda: streams_client.get_shard_iterator(
                StreamArn=arn,
                ShardId=shard_id,
                ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=failure.start_sequence_number,
            ),
            what=f"GetShardIterator {shard_id}",
        )["ShardIterator"]
        empty_pages = 0
        while iterator is not None and empty_pages <= EMPTY_PAGES_LIMIT:
            page = backoff.call(
                functools.partial(
                    streams_client.get_records, ShardIterator=iterator, Limit=GET_RECORDS_LIMIT
                ),
                what=f"GetRecords {shard_id}",
            )
            found = page.get("Records") or []
            empty_pages = 0 if found else empty_pages + 1
            for record in found:
                sequence = int(record["dynamodb"]["SequenceNumber"])
                if sequence > end:
                    iterator = None
                    break
                if sequence >= start:
                    records.append(record)
            else:
                iterator = page.get("NextShardIterator")
            if records and int(records[-1]["dynamodb"]["SequenceNumber"]) == end:
                break
    except Exception as exc:
        code = error_code(exc)
        if code == "TrimmedDataAccessException":
            raise gone("trimmed: older than the stream's 24-hour retention") from exc
        if code == "ResourceNotFoundException":
            raise gone("the stream or shard no longer exists") from exc
        raise
    if not records or records[0]["dynamodb"]["SequenceNumber"] != failure.start_sequence_number:
        raise gone(f"record {failure.start_sequence_number} is no longer in the shard")
    if records[-1]["dynamodb"]["SequenceNumber"] != failure.end_sequence_number:
        last = records[-1]["dynamodb"]["SequenceNumber"]
        raise gone(f"the shard ends at {last}, before {failure.end_sequence_number}")
    return records


def find_mapping_settings(
    lambda_client: Any, function_arn: str, stream_arn: str
) -> MappingSettings | None:
    """The mapping from ``stream_arn`` to ``function_arn``, or None if it no longer exists."""
    marker: str | None = None
    while True:
        page = lambda_client.list_event_source_mappings(
            EventSourceArn=stream_arn,
            FunctionName=function_arn,
            **({"Marker": marker} if marker else {}),
        )
        for mapping in page.get("EventSourceMappings") or []:
            # Filter here too: not every endpoint applies ListEventSourceMappings' filters.
            if mapping.get("EventSourceArn") != stream_arn:
                continue
            if mapping.get("FunctionArn") != function_arn:
                continue
            filters = (mapping.get("FilterCriteria") or {}).get("Filters") or []
            return MappingSettings(
                uuid=str(mapping.get("UUID")),
                filter_patterns=tuple(str(f["Pattern"]) for f in filters if "Pattern" in f),
                tumbling_window_s=int(mapping.get("TumblingWindowInSeconds") or 0),
            )
        marker = page.get("NextMarker")
        if not marker:
            return None


class Replayer:
    """Plans and runs replays; ``invoker`` may be None for dry runs."""

    def __init__(
        self,
        streams_client: Any,
        lambda_client: Any,
        invoker: ReplayInvoker | None,
        *,
        function_override: str | None = None,
        find_mapping: Callable[[str, str], MappingSettings | None] | None = None,
    ) -> None:
        self.streams = streams_client
        self.lambda_client = lambda_client
        self.invoker = invoker
        self.function_override = function_override
        self._find_mapping = find_mapping or (
            lambda function, stream: find_mapping_settings(lambda_client, function, stream)
        )

    def plan(self, failure: FailureRecord) -> ReplayPlan:
        """Read the batch back and build its records; raises RecordsUnavailableError."""
        try:
            mapping = self._find_mapping(failure.function_arn, failure.stream_arn)
        except Exception as exc:
            if error_code(exc) is None:
                raise
            LOG.warning("could not look up the mapping of %s: %s", failure.function_arn, exc)
            mapping = None
        raw = read_batch(self.streams, failure)
        convert = LambdaRecordConverter(failure.stream_arn)
        records = [convert(r) for r in raw]
        if mapping is not None:
            matches = build_record_filter(mapping.filter_patterns)
            if matches is not None:
                records = [r for r in records if matches(r)]
        return ReplayPlan(
            failure=failure,
            function=self.function_override or failure.function_arn,
            records=records,
            read=len(raw),
            mapping=mapping,
        )

    def replay(self, failure: FailureRecord, *, dry_run: bool = False) -> ReplayOutcome:
        function = self.function_override or failure.function_arn
        try:
            plan = self.plan(failure)
        except RecordsUnavailableError as exc:
            return ReplayOutcome(ReplayStatus.GONE, function, exc.reason)
        notes = plan.notes()
        if plan.mapping is not None and plan.mapping.tumbling_window_s:
            return ReplayOutcome(
                ReplayStatus.SKIPPED,
                function,
                "the mapping aggregates in tumbling windows: a window's records and state "
                "cannot be replayed as a plain batch",
                plan,
                notes=notes,
            )
        # Everything filtered out: Lambda would not invoke, and neither does replay.
        nothing = "" if plan.records else "no record passes the mapping's filter"
        if dry_run or self.invoker is None:
            return ReplayOutcome(ReplayStatus.DRY_RUN, function, nothing, plan, notes=notes)
        if nothing:
            return ReplayOutcome(ReplayStatus.REPLAYED, function, nothing, plan, notes=notes)
        try:
            outcome = self.invoker.invoke(function, {"Records": plan.records})
        except StreamkitError as exc:  # e.g. FunctionCodeError: code cannot be fetched or run
            return ReplayOutcome(ReplayStatus.FAILED, function, str(exc), plan, notes=notes)
        except Exception as exc:
            if error_code(exc) is None:
                raise
            return ReplayOutcome(ReplayStatus.FAILED, function, str(exc), plan, notes=notes)
        request_id = outcome.request_id
        if not outcome.ok:
            detail = describe_error(outcome)
            return ReplayOutcome(ReplayStatus.FAILED, function, detail, plan, request_id, notes)
        failures = _batch_item_failures(outcome.payload)
        if failures:
            detail = f"the function reported {len(failures)} batchItemFailures: {failures!r:.200}"
            return ReplayOutcome(ReplayStatus.FAILED, function, detail, plan, request_id, notes)
        return ReplayOutcome(ReplayStatus.REPLAYED, function, "", plan, request_id, notes)


def _batch_item_failures(payload: Any) -> list[Any]:
    """A non-empty ``batchItemFailures`` in the response, else []. Replay keeps the message on
    any reported failure, whatever the mapping's FunctionResponseTypes: a partial success is
    not a success to delete the record of."""
    response = decoded_payload(payload)
    if not isinstance(response, Mapping):
        return []
    failures = response.get(BATCH_ITEM_FAILURES)
    if not failures:
        return []
    return list(failures) if isinstance(failures, list) else [failures]
