"""What an invoke's response means under ReportBatchItemFailures (streamkit.streams.verdicts)."""

from __future__ import annotations

from typing import Any

import pytest
from tests.helpers.esm_doubles import (
    Outcome,
    error,
    failures,
)

from streamkit.local.esm.processor import (
    VerdictKind,
    judge_response,
)

RECORDS = [{"dynamodb": {"SequenceNumber": s}} for s in ("100", "200", "300")]


@pytest.mark.parametrize(
    "payload",
    [None, {}, [], "", {"batchItemFailures": []}, {"batchItemFailures": None}, {"other": 1}],
)
def test_success_responses(payload: Any) -> None:
    verdict = judge_response(Outcome(payload=payload), RECORDS, report_batch_item_failures=True)
    assert verdict.kind is VerdictKind.SUCCESS


def test_a_json_bytes_payload_is_decoded() -> None:
    outcome = Outcome(payload=b'{"batchItemFailures": [{"itemIdentifier": "200"}]}')
    verdict = judge_response(outcome, RECORDS, report_batch_item_failures=True)
    assert (verdict.kind, verdict.retry_from) == (VerdictKind.PARTIAL, "200")


def test_partial_failure_retries_from_the_lowest_identifier() -> None:
    verdict = judge_response(failures("300", "200"), RECORDS, report_batch_item_failures=True)
    assert (verdict.kind, verdict.retry_from) == (VerdictKind.PARTIAL, "200")


@pytest.mark.parametrize(
    "payload",
    [
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"itemIdentifier": "999"}]},
        {"batchItemFailures": [{"itemIdentifier": 200}]},
        {"batchItemFailures": [{"itemIdentifer": "200"}]},
        {"batchItemFailures": [{"itemIdentifier": "200"}, {"foo": "300"}]},
        {"batchItemFailures": "200"},
        "not an object",
        [{"itemIdentifier": "200"}],
    ],
)
def test_whole_batch_failure_responses(payload: Any) -> None:
    verdict = judge_response(Outcome(payload=payload), RECORDS, report_batch_item_failures=True)
    assert verdict.kind is VerdictKind.FAILURE


def test_function_errors_fail_the_batch_and_responses_are_ignored_without_the_setting() -> None:
    assert (
        judge_response(error(), RECORDS, report_batch_item_failures=True).kind
        is VerdictKind.FAILURE
    )
    assert (
        judge_response(error(), RECORDS, report_batch_item_failures=False).kind
        is VerdictKind.FAILURE
    )
    ignored = judge_response(failures("200"), RECORDS, report_batch_item_failures=False)
    assert ignored.kind is VerdictKind.SUCCESS
