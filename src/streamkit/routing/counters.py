"""Idempotent counters: per-batch deltas applied to a DynamoDB aggregate table with ADD.

::

    revenue = CounterAggregator(
        "revenue", table="order-aggregates", fence_table="idempotency", deltas=revenue_per_minute
    )

    def handler(event, context):
        return revenue.handle(event, context)

Why the fence is per record. Lambda redelivers stream records after a failure, and a
redelivered batch need not look like the first: after a partial failure it starts at the
failed record and may reach further; ``BisectBatchOnFunctionError`` halves it; a timeout
repeats all of it; with ``ParallelizationFactor`` > 1 several batches of one shard run at once
and their records interleave on the same aggregate (lanes are chosen by *item* key, and an
aggregate such as "revenue this minute" collects many items). A fence keyed on the batch (its
first sequence number, or a per-aggregate high-water mark of sequence numbers) is wrong in
each of these cases: it either drops the new records of a longer redelivery or lets a lane
with lower sequence numbers be rejected after another lane moved the mark. What is invariant
is the stream record itself, so each contributing record gets a completion marker
(``<name>#<eventID>``, in the idempotency table format: key ``id``, TTL ``expiration``), and
the marker is written *in the same DynamoDB transaction* as the ADDs that carry the record's
deltas, conditioned on not existing. A record's contribution and its marker commit together
or not at all, so every record is counted exactly once, however batches are cut, retried or
interleaved.

Cost per batch: one BatchGetItem per 100 contributing records (markers already present are
skipped before writing), then one TransactWriteItems per up to 100 items, each holding the
markers of a run of records plus one ADD per aggregate they touch, deltas summed per
aggregate within the transaction. Records that contribute nothing write nothing.

Failure semantics (fail_fast). Deltas are computed in stream order; a record whose deltas
function raises, and every record after it, are reported, and the records before it are
applied. A transaction that cannot be applied (after retrying throttling and conflicts)
reports its first record and everything after; transactions before it are committed. Lambda
redelivers from the reported record; the markers make the redelivery skip what committed.
Markers live 48 hours by default, longer than a stream keeps records (24 hours).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Literal

from streamkit._aws import DefaultClient, error_code, full_jitter_backoff
from streamkit.batch import BatchResponse, BatchResult
from streamkit.batch.internal import logs_failures
from streamkit.idempotency.items import make_id
from streamkit.records import NumberMode, StreamRecord, parse_event
from streamkit.routing.deltas import (
    AggregateKey,
    DeltasFunction,
    collect_deltas,
    key_attribute_values,
    merge_into,
)
from streamkit.routing.exceptions import AggregateWriteError, InvalidDeltaError
from streamkit.wire import batch_item_failures

if TYPE_CHECKING:
    from streamkit.observability import RecordWrapper

__all__ = ["AggregationResult", "CounterAggregator"]

logger = logging.getLogger(__name__)

# TransactWriteItems takes up to 100 actions (since September 2022):
# https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html
MAX_TRANSACTION_ITEMS: Final = 100
_GET_BATCH: Final = 100
# Cancellation reasons worth retrying: another transaction held an item, or capacity.
_RETRYABLE_REASONS: Final = frozenset(
    {
        "TransactionConflict",
        "ThrottlingError",
        "ProvisionedThroughputExceeded",
        "RequestLimitExceeded",
        "InternalServerError",
    }
)
_RETRYABLE_ERRORS: Final = frozenset(
    {
        "TransactionConflictException",
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "TransactionInProgressException",
    }
)


Deltas = dict[AggregateKey, dict[str, Decimal]]
# What became of a pending record, beyond AggregationResult's counters (for run_wrapped).
Fate = Literal["pending", "already_applied", "failed"]


@dataclass(slots=True)
class _Pending:
    index: int
    record: StreamRecord
    marker_id: str
    deltas: Deltas
    fate: Fate = "pending"


@dataclass(slots=True)
class AggregationResult:
    """What a batch did. ``applied``: records whose deltas were committed now;
    ``already_applied``: records whose marker existed (a redelivery); ``no_deltas``: records
    that contribute nothing; ``reported``: records in ``batchItemFailures``."""

    total: int = 0
    applied: int = 0
    already_applied: int = 0
    no_deltas: int = 0
    transactions: int = 0
    failed_identifiers: list[str] = field(default_factory=list)
    errors: list[tuple[str, BaseException]] = field(default_factory=list)

    @property
    def reported(self) -> int:
        return len(self.failed_identifiers)

    def response(self) -> BatchResponse:
        return batch_item_failures(self.failed_identifiers)


@dataclass(slots=True)
class _Aggregation:
    """One batch's run: its ``AggregationResult``, plus what ``batch_result`` needs."""

    result: AggregationResult
    collected: list[_Pending]  # the records with deltas, before any that failed
    failed_early: int = 0  # records that failed before any transaction (deltas, no name)

    def batch_result(self) -> BatchResult:
        """The accounting of ``process_batch``: the records before the first reported one
        succeeded, or were already completed (their marker existed); a record whose deltas
        failed and the records of a failed transaction failed; the other reported records
        are skipped."""
        result = self.result
        reported = len(result.failed_identifiers)
        done = result.total - reported
        already = sum(1 for p in self.collected if p.index < done and p.fate == "already_applied")
        failed = self.failed_early + sum(1 for p in self.collected if p.fate == "failed")
        return BatchResult(
            ordering="fail_fast",
            total=result.total,
            succeeded=done - already,
            already_completed=already,
            failed=failed,
            skipped=reported - failed,
            failed_identifiers=list(result.failed_identifiers),
            errors=list(result.errors),
        )


class CounterAggregator:
    """Exactly-once counters in ``table``, fenced by per-record markers in ``fence_table``."""

    def __init__(
        self,
        name: str,
        *,
        table: str,
        fence_table: str,
        deltas: DeltasFunction,
        client: Any | None = None,
        marker_ttl: timedelta = timedelta(hours=48),
        max_transaction_items: int = MAX_TRANSACTION_ITEMS,
        max_attempts: int = 6,
        numbers: NumberMode = "decimal",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(name, str) or not name or "#" in name:
            raise ValueError(f"name must be a non-empty string without '#', not {name!r}")
        if not callable(deltas):
            raise TypeError("deltas must be a function record -> iterable of Delta")
        if not 2 <= max_transaction_items <= MAX_TRANSACTION_ITEMS:
            raise ValueError(f"max_transaction_items must be 2..{MAX_TRANSACTION_ITEMS}")
        if marker_ttl < timedelta(hours=24):
            raise ValueError("marker_ttl shorter than the 24-hour stream retention double counts")
        self.name = name
        self.table = table
        self.fence_table = fence_table
        self.deltas = deltas
        self.marker_ttl = marker_ttl
        self.max_transaction_items = max_transaction_items
        self.max_attempts = max_attempts
        self.numbers: NumberMode = numbers
        self.clock = clock
        self._client = client

    # The client given at construction, or a default one with short timeouts, made on first use.
    client = DefaultClient()

    def handle(self, event: Any, context: Any | None = None) -> BatchResponse:
        """The Lambda handler body: apply the batch, return the partial batch response."""
        return self.run(event, context).response()

    def run(self, event: Any, context: Any | None = None) -> AggregationResult:
        return self._aggregate(event, self._contribution).result

    def run_wrapped(self, event: Any, context: Any | None, wrap: RecordWrapper) -> BatchResult:
        """``handle`` for an observer (``streamkit.observability.ObservedConsumer``): each
        record's deltas function runs through ``wrap``. Returns the batch accounting (see
        ``_Aggregation.batch_result``); ``response()`` is ``handle``'s answer."""
        return self._aggregate(event, wrap(self._contribution)).batch_result()

    def _aggregate(
        self, event: Any, contribution: Callable[[StreamRecord], tuple[Deltas, str]]
    ) -> _Aggregation:
        records = parse_event(event, numbers=self.numbers)
        result = AggregationResult(total=len(records))
        unnamed = sum(1 for r in records if not r.item_identifier)
        if unnamed:
            # Same rule as process_batch: a record nobody can name fails the whole batch.
            result.failed_identifiers = [r.item_identifier for r in records]
            result.errors.append(("", ValueError("a record has no readable SequenceNumber")))
            return _Aggregation(result, [], failed_early=unnamed)
        collected, stop = self._collect(records, result, contribution)
        failed_early = 1 if stop < len(records) else 0
        pending = self._drop_applied(collected, result)
        stop = self._apply(pending, result, stop)
        if stop < len(records):
            result.failed_identifiers = [r.item_identifier for r in records[stop:]]
            logger.warning(
                "aggregator %s: %d of %d records reported from %s",
                self.name,
                len(result.failed_identifiers),
                len(records),
                result.failed_identifiers[0],
            )
        return _Aggregation(result, collected, failed_early)

    # --- steps ------------------------------------------------------------------------------

    def _contribution(self, record: StreamRecord) -> tuple[Deltas, str]:
        """The record's deltas, checked to fit one transaction with its marker, and its
        marker id (``""`` when it contributes nothing): all the per-record work."""
        deltas = collect_deltas(self.deltas, record)
        if len(deltas) + 1 > self.max_transaction_items:
            raise InvalidDeltaError(
                record.item_identifier,
                f"touches {len(deltas)} aggregates; one transaction holds at most "
                f"{self.max_transaction_items - 1} besides the record's marker",
            )
        return deltas, make_id(self.name, record.event_id) if deltas else ""

    def _collect(
        self,
        records: Sequence[StreamRecord],
        result: AggregationResult,
        contribution: Callable[[StreamRecord], tuple[Deltas, str]],
    ) -> tuple[list[_Pending], int]:
        """Deltas of each record, in order, up to the first record that fails."""
        pending: list[_Pending] = []
        # An observer's record wrapper logs failures itself, with their tracebacks: no second
        # WARNING for them (the failure-logging rule of streamkit.batch.internal).
        failure_level = logging.DEBUG if logs_failures(contribution) else logging.WARNING
        for index, record in enumerate(records):
            try:
                deltas, marker_id = contribution(record)
            except Exception as exc:
                logger.log(
                    failure_level,
                    "aggregator %s: record %s failed: %s: %s",
                    self.name,
                    record.item_identifier,
                    type(exc).__name__,
                    exc,
                )
                result.errors.append((record.item_identifier, exc))
                return pending, index
            if deltas:
                pending.append(_Pending(index, record, marker_id, deltas))
            else:
                result.no_deltas += 1
        return pending, len(records)

    def _drop_applied(self, pending: list[_Pending], result: AggregationResult) -> list[_Pending]:
        """Skip records whose marker exists (consistent reads, 100 per request). Only an
        optimization: the transactions' conditions decide, so when the read fails every
        pending record simply goes to the transactions."""
        if not pending:
            return pending
        try:
            present = self._existing_markers([p.marker_id for p in pending])
        except Exception as exc:
            logger.warning(
                "aggregator %s: reading markers failed (%s); relying on the transaction conditions",
                self.name,
                exc,
            )
            return pending
        kept: list[_Pending] = []
        for item in pending:
            if item.marker_id in present:
                item.fate = "already_applied"
            else:
                kept.append(item)
        result.already_applied += len(pending) - len(kept)
        return kept

    def _apply(self, pending: list[_Pending], result: AggregationResult, stop: int) -> int:
        """Commit the pending records in transactions, in order; returns the index of the
        first record to report (``stop`` when everything committed)."""
        position = 0
        while position < len(pending):
            chunk = self._next_chunk(pending, position)
            try:
                applied, already = self._commit(chunk, result)
            except Exception as exc:
                for item in chunk:
                    if item.fate == "pending":
                        item.fate = "failed"
                first = chunk[0].record.item_identifier
                result.errors.append((first, exc))
                logger.error(
                    "aggregator %s: transaction for %d record(s) from %s failed: %s",
                    self.name,
                    len(chunk),
                    first,
                    exc,
                )
                return min(stop, chunk[0].index)
            result.applied += applied
            result.already_applied += already
            position += len(chunk)
        return stop

    def _next_chunk(self, pending: list[_Pending], start: int) -> list[_Pending]:
        chunk: list[_Pending] = []
        keys: set[AggregateKey] = set()
        for item in pending[start:]:
            needed = len(chunk) + 1 + len(keys | item.deltas.keys())
            if chunk and needed > self.max_transaction_items:
                break
            chunk.append(item)
            keys |= item.deltas.keys()
        return chunk

    def _commit(self, chunk: list[_Pending], result: AggregationResult) -> tuple[int, int]:
        """One transaction for ``chunk``; returns (applied, already applied). Records whose
        marker turns out to exist are dropped and the rest retried."""
        records = list(chunk)
        already = 0
        attempt = 0
        while records:
            items = self._transaction_items(records)
            try:
                result.transactions += 1
                self.client.transact_write_items(TransactItems=items)
            except Exception as exc:
                code = error_code(exc)
                reasons = (
                    _cancellation_reasons(exc) if code == "TransactionCanceledException" else []
                )
                done = {
                    records[i].marker_id
                    for i, reason in enumerate(reasons[: len(records)])
                    if reason == "ConditionalCheckFailed"
                }
                if done:  # applied by an earlier delivery after all: drop them, retry the rest
                    already += len(done)
                    for item in records:
                        if item.marker_id in done:
                            item.fate = "already_applied"
                    records = [r for r in records if r.marker_id not in done]
                    continue
                retryable = code in _RETRYABLE_ERRORS or (
                    bool(reasons) and all(r in _RETRYABLE_REASONS | {"None"} for r in reasons)
                )
                attempt += 1
                if not retryable or attempt >= self.max_attempts:
                    raise AggregateWriteError(
                        [r.record.item_identifier for r in records],
                        f"{code or type(exc).__name__}: {reasons or exc}",
                    ) from exc
                full_jitter_backoff(attempt - 1)
                continue
            return len(records), already
        return 0, already

    def _transaction_items(self, records: list[_Pending]) -> list[dict[str, Any]]:
        expiration = str(int(self.clock() + self.marker_ttl.total_seconds()))
        items: list[dict[str, Any]] = [
            {
                "Put": {
                    "TableName": self.fence_table,
                    "Item": {
                        "id": {"S": r.marker_id},
                        "status": {"S": "COMPLETED"},
                        "expiration": {"N": expiration},
                    },
                    "ConditionExpression": "attribute_not_exists(#id)",
                    "ExpressionAttributeNames": {"#id": "id"},
                }
            }
            for r in records
        ]
        totals: dict[AggregateKey, dict[str, Decimal]] = {}
        for r in records:
            merge_into(totals, r.deltas, r.record.item_identifier)
        for key, values in totals.items():
            nonzero = {name: amount for name, amount in values.items() if amount}
            if not nonzero:
                continue  # +1 and -1 within one transaction: nothing to add
            names = {f"#a{i}": name for i, name in enumerate(nonzero)}
            amounts = {f":a{i}": {"N": str(amount)} for i, amount in enumerate(nonzero.values())}
            items.append(
                {
                    "Update": {
                        "TableName": self.table,
                        "Key": key_attribute_values(key),
                        "UpdateExpression": "ADD "
                        + ", ".join(f"#a{i} :a{i}" for i in range(len(nonzero))),
                        "ExpressionAttributeNames": names,
                        "ExpressionAttributeValues": amounts,
                    }
                }
            )
        return items

    def _existing_markers(self, ids: list[str]) -> set[str]:
        present: set[str] = set()
        for start in range(0, len(ids), _GET_BATCH):
            request: dict[str, Any] = {
                self.fence_table: {
                    "Keys": [{"id": {"S": i}} for i in ids[start : start + _GET_BATCH]],
                    "ConsistentRead": True,
                    "ProjectionExpression": "#id",
                    "ExpressionAttributeNames": {"#id": "id"},
                }
            }
            for attempt in range(self.max_attempts):
                if attempt:
                    full_jitter_backoff(attempt - 1)
                response = self.client.batch_get_item(RequestItems=request)
                for item in response.get("Responses", {}).get(self.fence_table, []):
                    present.add(item["id"]["S"])
                request = response.get("UnprocessedKeys") or {}
                if not request:
                    break
            else:
                raise AggregateWriteError([], "BatchGetItem kept returning UnprocessedKeys")
        return present


def _cancellation_reasons(exc: BaseException) -> list[str]:
    response = getattr(exc, "response", None)
    reasons = response.get("CancellationReasons") if isinstance(response, dict) else None
    if not isinstance(reasons, list):
        return []
    return [str(r.get("Code", "None")) if isinstance(r, dict) else "None" for r in reasons]
