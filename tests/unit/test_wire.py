"""The Lambda wire contract shared by the library and the runner (streamkit.wire)."""

from __future__ import annotations

import json

from streamkit.batch import BatchResult
from streamkit.local.esm.windows import Window, WindowSession
from streamkit.wire import MAX_STATE_BYTES, batch_item_failures, state_size, window_event


def test_a_partial_batch_response_names_each_identifier() -> None:
    assert batch_item_failures(["10", "20"]) == {
        "batchItemFailures": [{"itemIdentifier": "10"}, {"itemIdentifier": "20"}]
    }
    assert batch_item_failures([]) == {"batchItemFailures": []}
    result = BatchResult(ordering="fail_fast", failed_identifiers=["7"])
    assert result.response() == batch_item_failures(["7"])


def test_state_size_is_compact_utf8_json() -> None:
    state = {"name": "café", "n": [1, 2]}
    assert state_size(state) == len(json.dumps(state, separators=(",", ":")).encode("utf-8"))
    assert state_size("é") == len('"\\u00e9"')  # json.dumps escapes non-ASCII
    assert MAX_STATE_BYTES == 1024 * 1024


def test_the_runner_builds_window_events_with_the_shared_names() -> None:
    session = WindowSession(Window(0, 60), "shard-1", "arn:stream")
    expected = window_event(
        [],
        window={"start": "1970-01-01T00:00:00Z", "end": "1970-01-01T00:01:00Z"},
        state={},
        shard_id="shard-1",
        stream_arn="arn:stream",
        final=True,
        early=False,
    )
    assert session.final_event(early=False) == expected
    assert list(expected) == [
        "Records", "window", "state", "shardId", "eventSourceARN",
        "isFinalInvokeForWindow", "isWindowTerminatedEarly",
    ]  # fmt: skip
