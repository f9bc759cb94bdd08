"""Fuzz targets: each takes one generated input, checks streamkit's contract on it, and names
the outcome.

A target returns an outcome label (``"accepted"``, ``"rejected:DeserializationError"``, ...)
and raises ``AssertionError`` when the contract is broken: an undocumented exception type, an
error without its documented message, a crash, or a record that disappears (not returned, not
reported). ``tests/fuzz/test_fuzz.py`` runs them under hypothesis in CI; ``scripts/fuzz.py``
runs them for longer and writes the counts into RELIABILITY.md.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from streamkit import parse_event, process_batch
from streamkit.codec import deserialize, serialize
from streamkit.exceptions import (
    DeserializationError,
    InvalidEventError,
    InvalidFilterPatternError,
    InvalidParameterValueError,
    InvalidRecordError,
)
from streamkit.filters import FilterCriteria, FilterPattern
from streamkit.local import MappingConfig, validate_create_request
from streamkit.streams.verdicts import InvokerCrash, VerdictKind, judge_response
from tests.fuzz import strategies as S

__all__ = ["TARGETS", "Target"]


@dataclass(frozen=True)
class Target:
    name: str
    what: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], str]


# --- codec ----------------------------------------------------------------------------------------


def check_codec(image: Any) -> str:
    try:
        value = deserialize(image)
    except DeserializationError as exc:
        # Documented: a ValueError naming the attribute path.
        assert isinstance(exc, ValueError)
        assert exc.path is not None and str(exc), exc
        return "rejected:DeserializationError"
    assert isinstance(image, Mapping) and isinstance(value, dict)
    assert set(value) == set(image), "an attribute was dropped"  # nothing silently lost
    # What was accepted round-trips exactly (numbers keep their text, binaries their bytes).
    again = deserialize(serialize(value, binary="base64"))
    assert _same(again, value), (again, value)
    return "accepted"


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, Decimal) and isinstance(b, Decimal):
        return str(a) == str(b)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


# --- parse_event ----------------------------------------------------------------------------------


def check_parse_event(event: Any) -> str:
    try:
        records = parse_event(event)
    except InvalidEventError as exc:
        assert "Records" in str(exc) or "mapping" in str(exc), exc
        assert not (isinstance(event, Mapping) and isinstance(event.get("Records"), list))
        return "rejected:InvalidEventError"
    assert len(records) == len(event["Records"]), "parse_event dropped a record"
    broken = 0
    for record in records:
        identifier = record.item_identifier  # never raises
        assert isinstance(identifier, str)
        try:
            record.validate()
            _ = record.keys, record.new_image, record.old_image
        except (InvalidRecordError, DeserializationError) as exc:
            assert str(exc)
            broken += 1
    return "some records invalid" if broken else "all records valid"


# --- process_batch and the runner's reading of its response -------------------------------------


@st.composite
def _batches(draw: st.DrawFn) -> tuple[Any, frozenset[int], str]:
    event = draw(S.stream_events().filter(lambda e: isinstance(e, dict) and "Records" in e))
    records = event["Records"] if isinstance(event["Records"], list) else []
    failing = frozenset(draw(st.sets(st.integers(0, max(0, len(records) - 1)), max_size=3)))
    ordering = draw(st.sampled_from(["fail_fast", "per_key"]))
    return event, failing, ordering


def check_process_batch(case: tuple[Any, frozenset[int], str]) -> str:
    event, failing, ordering = case
    succeeded: list[int] = []

    # Records are told apart by their raw dict (distinct objects in the generated event).
    raw_records = event.get("Records") if isinstance(event, Mapping) else None
    listed = raw_records if isinstance(raw_records, list) else []
    position = {id(raw): i for i, raw in enumerate(listed)}

    def handler(record: Any) -> None:
        record.validate()  # reading a malformed field fails the record
        index = position[id(record.raw)]
        if index in failing:
            raise RuntimeError(f"poison {index}")
        succeeded.append(index)

    try:
        parsed = parse_event(event)
    except InvalidEventError:
        try:
            process_batch(event, handler, ordering=ordering)
        except InvalidEventError:
            return "rejected:InvalidEventError"
        raise AssertionError("process_batch accepted what parse_event refuses") from None
    response = process_batch(event, handler, ordering=ordering)
    assert set(response) == {"batchItemFailures"}, response
    reported = [entry["itemIdentifier"] for entry in response["batchItemFailures"]]
    assert all(isinstance(i, str) for i in reported)
    done = set(succeeded)
    # A sequence number shared by two records (never in a real shard) names both of them.
    shared = Counter(r.item_identifier for r in parsed)
    for index, record in enumerate(parsed):
        identifier = record.item_identifier
        if index in done:
            if identifier and shared[identifier] == 1:
                assert identifier not in reported, f"succeeded yet reported: {index}"
        else:
            # Nothing silently dropped: a record that did not succeed is reported.
            assert identifier in reported, f"record {index} neither succeeded nor reported"
    if ordering == "fail_fast" and len(done) < len(parsed):
        first = min(set(range(len(parsed))) - done)
        assert done == set(range(first)), "fail_fast ran a record after a failure"
    # The runner's reading of that response. Only records from GetRecords reach the runner:
    # readable, with distinct, numeric sequence numbers.
    if all(r.error is None and r.sequence_number.isdigit() for r in parsed) and len(
        {r.sequence_number for r in parsed}
    ) == len(parsed):
        verdict = judge_response(
            _Ok(response), [r.raw for r in parsed], report_batch_item_failures=True
        )
        if not reported:
            assert verdict.kind is VerdictKind.SUCCESS
        else:
            assert verdict.kind is VerdictKind.PARTIAL, verdict
            assert verdict.retry_from == min(reported, key=int)
    return "all succeeded" if len(done) == len(parsed) else "some reported"


@dataclass(frozen=True)
class _Ok:
    payload: Any
    request_id: str = "r"
    ok: bool = True
    status_code: int = 200
    function_error: str | None = None
    timed_out: bool = False
    init_error: bool = False


@st.composite
def _responses(draw: st.DrawFn) -> tuple[Any, list[str], bool]:
    base = draw(st.integers(1, 10**15))
    sequences = [str(base + i) for i in range(draw(st.integers(1, 5)))]
    return draw(S.function_responses(sequences)), sequences, draw(st.integers(0, 9)) == 0


def check_judge_response(case: tuple[Any, list[str], bool]) -> str:
    payload, sequences, crashed = case
    records = [{"dynamodb": {"SequenceNumber": s}} for s in sequences]
    outcome: Any = InvokerCrash("r", "boom") if crashed else _Ok(payload)
    verdict = judge_response(outcome, records, report_batch_item_failures=True)
    assert verdict.kind in VerdictKind
    if crashed:
        assert verdict.kind is VerdictKind.FAILURE and "boom" in verdict.reason
        return "function error"
    expected = _documented_verdict(payload, set(sequences))
    if expected is None:
        # Not covered by the docs: any verdict, with a reason when it is a failure.
        assert verdict.kind is not VerdictKind.FAILURE or verdict.reason
        return f"undocumented shape -> {verdict.kind.value}"
    kind, retry_from = expected
    assert verdict.kind is kind, (payload, verdict)
    if kind is VerdictKind.PARTIAL:
        assert verdict.retry_from == retry_from
    if kind is VerdictKind.FAILURE:
        assert verdict.reason
    return kind.value


def _documented_verdict(payload: Any, in_batch: set[str]) -> tuple[VerdictKind, str | None] | None:
    """The verdict AWS documents for this response, or None where the docs say nothing.
    https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html"""
    if isinstance(payload, bytes | bytearray):
        text = payload.decode("utf-8", "replace").strip()
        if not text:
            return VerdictKind.SUCCESS, None  # null EventResponse
        try:
            payload = json.loads(text)
        except ValueError:
            return VerdictKind.FAILURE, None  # not a response object at all
    if payload is None or payload == {}:
        return VerdictKind.SUCCESS, None  # null / empty EventResponse
    if not isinstance(payload, Mapping):
        return None
    if "batchItemFailures" not in payload:
        return None
    failures = payload["batchItemFailures"]
    if failures is None or failures == []:
        return VerdictKind.SUCCESS, None  # null / empty list
    if not isinstance(failures, list):
        return None
    ids = []
    for entry in failures:
        if not isinstance(entry, Mapping) or "itemIdentifier" not in entry:
            return VerdictKind.FAILURE, None  # itemIdentifier with a bad key name
        identifier = entry["itemIdentifier"]
        if identifier is None or identifier == "":
            return VerdictKind.FAILURE, None  # null / empty itemIdentifier
        if not isinstance(identifier, str) or identifier not in in_batch:
            return VerdictKind.FAILURE, None  # not a record of this batch
        ids.append(identifier)
    return VerdictKind.PARTIAL, min(ids, key=int)


# --- filter engine --------------------------------------------------------------------------------


@st.composite
def _filter_cases(draw: st.DrawFn) -> tuple[Any, Any, str]:
    pattern = draw(st.one_of(S.filter_patterns(), S.filter_pattern_texts()))
    event = draw(S.stream_records())
    dialect = draw(st.sampled_from(["eventbridge", "lambda"]))
    return pattern, event, dialect


def check_filters(case: tuple[Any, Any, str]) -> str:
    pattern, event, dialect = case
    try:
        compiled = FilterPattern.parse(pattern, dialect=dialect)  # type: ignore[arg-type]
    except InvalidFilterPatternError as exc:
        assert isinstance(exc, ValueError)
        assert "Invalid filter pattern definition." in str(exc) or str(exc), exc
        return "pattern rejected"
    except InvalidParameterValueError as exc:
        assert str(exc)
        return "pattern rejected (limit)"
    if not isinstance(event, Mapping):
        return "pattern ok, event not an object"
    result = compiled.matches(event)
    assert isinstance(result, bool)
    return "matched" if result else "not matched"


# --- mapping parameters ---------------------------------------------------------------------------

_RANGES = {
    "BatchSize": (1, 10000),
    "MaximumBatchingWindowInSeconds": (0, 300),
    "ParallelizationFactor": (1, 10),
    "MaximumRetryAttempts": (-1, 10000),
    "TumblingWindowInSeconds": (0, 900),
}


def check_mapping(request: dict[str, Any]) -> str:
    try:
        validate_create_request(request)
    except InvalidParameterValueError as exc:
        assert exc.code == "InvalidParameterValueException" or exc.code, exc
        assert str(exc)
        return "rejected:InvalidParameterValueError"
    # Accepted: then every documented range holds, and the runner can build its config.
    for key, (low, high) in _RANGES.items():
        value = request.get(key)
        if value is not None:
            assert isinstance(value, int) and not isinstance(value, bool), (key, value)
            assert low <= value <= high, (key, value)
    age = request.get("MaximumRecordAgeInSeconds")
    if age is not None:
        assert age == -1 or 60 <= age <= 604800, age
    if "/stream/" in request["EventSourceArn"]:
        assert request.get("StartingPosition") in ("TRIM_HORIZON", "LATEST")
    criteria = request.get("FilterCriteria")
    if isinstance(criteria, Mapping) and criteria.get("Filters"):
        assert len(criteria["Filters"]) <= 5
        FilterCriteria.from_api(criteria)  # must not raise once validated
    listed = {
        **{k: v for k, v in request.items() if k != "FunctionName"},
        "UUID": "u",
        "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:f",
    }
    if "/stream/" in request["EventSourceArn"]:
        MappingConfig.from_api(listed)
    return "accepted"


TARGETS: tuple[Target, ...] = (
    Target(
        "codec.deserialize",
        "DynamoDB JSON images: bad tags, wrong types, bad base64, numbers outside 1E-130..9.99E+125 "
        "or over 38 digits, 25-40 levels of nesting, 400 KB-1 MB values, non-map input",
        S.codec_inputs(),
        check_codec,
    ),
    Target(
        "parse_event",
        "Lambda stream envelopes: not a map, no Records, Records not a list, records with fields "
        "missing or of the wrong type, broken bodies and keys",
        S.stream_events(),
        check_parse_event,
    ),
    Target(
        "process_batch",
        "random events and poison records in both ordering modes; every record succeeds or is "
        "reported, and the runner's verdict on the response matches",
        _batches(),
        check_process_batch,
    ),
    Target(
        "judge_response",
        "function responses as the runner reads them: documented shapes, wrong key names, "
        "null/empty/unknown identifiers, non-JSON bytes, wrong types, crashes",
        _responses(),
        check_judge_response,
    ),
    Target(
        "filters",
        "EventBridge/Lambda patterns (valid and broken operators, $or, over-long text) against "
        "generated stream records",
        _filter_cases(),
        check_filters,
    ),
    Target(
        "mapping_config",
        "CreateEventSourceMapping bodies: out-of-range and wrongly typed parameters, bad "
        "starting positions, filter criteria, destinations",
        S.mapping_requests(),
        check_mapping,
    ),
)
