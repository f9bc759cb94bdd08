"""The Lambda wire contract for DynamoDB streams, in one place for the library and the runner.

What crosses the wire between Lambda's event source mapping and a function, as AWS documents
it. The library builds responses and reads window events with these; the local runner
(``streamkit.local.esm``, ``streamkit.streams.verdicts``) builds events and judges responses
with the same names, so the two cannot drift apart.

- Partial batch responses (ReportBatchItemFailures):
  ``{"batchItemFailures": [{"itemIdentifier": <SequenceNumber>}, ...]}``.
  https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html
- Tumbling windows: the event's ``window``, ``state``, ``shardId``, ``eventSourceARN``,
  ``isFinalInvokeForWindow`` and ``isWindowTerminatedEarly``; the response's ``state`` (plus
  ``batchItemFailures``), at most 1 MB.
  https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-windows.html

Only the standard library is imported: this module ships in every function's zip.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

__all__ = [
    "BATCH_ITEM_FAILURES",
    "IS_FINAL_INVOKE",
    "IS_TERMINATED_EARLY",
    "ITEM_IDENTIFIER",
    "MAX_STATE_BYTES",
    "STATE",
    "BatchResponse",
    "batch_item_failures",
    "state_size",
    "window_event",
]

# {"batchItemFailures": [{"itemIdentifier": ...}, ...]}
BatchResponse = dict[str, list[dict[str, str]]]

BATCH_ITEM_FAILURES: Final = "batchItemFailures"
ITEM_IDENTIFIER: Final = "itemIdentifier"

STATE: Final = "state"
IS_FINAL_INVOKE: Final = "isFinalInvokeForWindow"
IS_TERMINATED_EARLY: Final = "isWindowTerminatedEarly"
# "If it exceeds that size, Lambda terminates the window early."
MAX_STATE_BYTES: Final = 1024 * 1024


def batch_item_failures(identifiers: Iterable[str]) -> BatchResponse:
    """The partial batch response reporting ``identifiers`` (none: the batch succeeded)."""
    return {BATCH_ITEM_FAILURES: [{ITEM_IDENTIFIER: i} for i in identifiers]}


def state_size(state: Any) -> int:
    """A window state's size as Lambda limits it: its compact JSON, in UTF-8 bytes."""
    return len(json.dumps(state, separators=(",", ":")).encode("utf-8"))


def window_event(
    records: list[dict[str, Any]],
    *,
    window: Mapping[str, str],
    state: Mapping[str, Any],
    shard_id: str,
    stream_arn: str,
    final: bool,
    early: bool,
) -> dict[str, Any]:
    """A tumbling-window invoke's event (``window`` is ``{"start": ..., "end": ...}``)."""
    return {
        "Records": records,
        "window": dict(window),
        STATE: state,
        "shardId": shard_id,
        "eventSourceARN": stream_arn,
        IS_FINAL_INVOKE: final,
        IS_TERMINATED_EARLY: early,
    }
