"""Event source mapping validation (AWS's ranges and wording) and MappingConfig parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest

from streamkit.exceptions import InvalidParameterValueError
from streamkit.local.esm.config import (
    MappingConfig,
    is_dynamodb_stream_arn,
    validate_create_request,
    validate_update_request,
)

STREAM_ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:consumer"
QUEUE_ARN = "arn:aws:sqs:us-east-1:123456789012:dlq"


def create(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "EventSourceArn": STREAM_ARN,
        "FunctionName": "consumer",
        "StartingPosition": "TRIM_HORIZON",
    }
    params.update(overrides)
    return params


def rejected(params: dict[str, Any], *, update: bool = False) -> InvalidParameterValueError:
    with pytest.raises(InvalidParameterValueError) as info:
        (validate_update_request if update else validate_create_request)(params)
    return info.value


@pytest.mark.parametrize(
    ("key", "name", "low", "high"),
    [
        ("BatchSize", "batchSize", 1, 10000),
        ("MaximumBatchingWindowInSeconds", "maximumBatchingWindowInSeconds", 0, 300),
        ("ParallelizationFactor", "parallelizationFactor", 1, 10),
        ("MaximumRetryAttempts", "maximumRetryAttempts", -1, 10000),
        ("TumblingWindowInSeconds", "tumblingWindowInSeconds", 0, 900),
    ],
)
def test_integer_ranges_accept_bounds_and_reject_outside(
    key: str, name: str, low: int, high: int
) -> None:
    validate_create_request(create(**{key: low}))
    validate_create_request(create(**{key: high}))
    too_low = rejected(create(**{key: low - 1}))
    assert too_low.code == "ValidationException"
    assert str(too_low) == (
        f"1 validation error detected: Value '{low - 1}' at '{name}' failed to satisfy "
        f"constraint: Member must have value greater than or equal to {low}"
    )
    too_high = rejected(create(**{key: high + 1}), update=True)
    assert str(too_high) == (
        f"1 validation error detected: Value '{high + 1}' at '{name}' failed to satisfy "
        f"constraint: Member must have value less than or equal to {high}"
    )


def test_several_model_violations_are_reported_together() -> None:
    error = rejected(create(BatchSize=0, ParallelizationFactor=11))
    assert str(error).startswith("2 validation errors detected: Value '0' at 'batchSize'")
    assert "; Value '11' at 'parallelizationFactor'" in str(error)


def test_non_integer_and_non_boolean_values_are_rejected() -> None:
    assert "Member must be an integer" in str(rejected(create(BatchSize="10")))
    assert "Member must be an integer" in str(rejected(create(BatchSize=True)))
    assert "Member must be a boolean" in str(rejected(create(Enabled="yes")))


@pytest.mark.parametrize("age", [-1, 60, 604800])
def test_record_age_accepts_forever_and_60_to_a_week(age: int) -> None:
    validate_create_request(create(MaximumRecordAgeInSeconds=age))


@pytest.mark.parametrize("age", [0, 59])
def test_record_age_between_zero_and_59_is_refused_by_the_service(age: int) -> None:
    error = rejected(create(MaximumRecordAgeInSeconds=age))
    assert error.code == "InvalidParameterValueException"
    assert str(error) == (
        "MaximumRecordAgeInSeconds must be either -1 (forever) or between 60 and 604800 (inclusive)"
    )


def test_record_age_beyond_a_week_is_a_model_error() -> None:
    error = rejected(create(MaximumRecordAgeInSeconds=604801))
    assert error.code == "ValidationException"
    assert "at 'maximumRecordAgeInSeconds'" in str(error)


def test_starting_position_rules_for_dynamodb() -> None:
    validate_create_request(create(StartingPosition="LATEST"))
    missing = rejected({"EventSourceArn": STREAM_ARN, "FunctionName": "f"})
    assert "Value null at 'startingPosition'" in str(missing)
    unknown = rejected(create(StartingPosition="EARLIEST"))
    assert unknown.code == "ValidationException"
    assert "Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]" in str(
        unknown
    )
    at_timestamp = rejected(create(StartingPosition="AT_TIMESTAMP"))
    assert at_timestamp.code == "InvalidParameterValueException"
    assert str(at_timestamp) == f"Unsupported starting position for arn type: {STREAM_ARN}"


def test_function_response_types_only_report_batch_item_failures() -> None:
    validate_create_request(create(FunctionResponseTypes=["ReportBatchItemFailures"]))
    validate_create_request(create(FunctionResponseTypes=[]))
    error = rejected(create(FunctionResponseTypes=["ReportBatchItemSuccesses"]))
    assert "at 'functionResponseTypes'" in str(error)
    assert "[ReportBatchItemFailures]" in str(error)


def pattern(obj: Any) -> dict[str, Any]:
    return {"Pattern": json.dumps(obj)}


def test_filter_criteria_limits_and_invalid_patterns() -> None:
    good = pattern({"eventName": ["INSERT"]})
    validate_create_request(create(FilterCriteria={"Filters": [good] * 5}))
    too_many = rejected(create(FilterCriteria={"Filters": [good] * 6}))
    assert "exceeds the limit of 5" in str(too_many)
    long_pattern = {"Pattern": json.dumps({"eventName": ["x" * 4100]})}
    too_long = rejected(create(FilterCriteria={"Filters": [long_pattern]}))
    assert "Member must have length less than or equal to 4096" in str(too_long)
    for bad in ("not json", '["INSERT"]', '{"eventName": "INSERT"}', "{}", ""):
        error = rejected(create(FilterCriteria={"Filters": [{"Pattern": bad}]}))
        assert str(error) == "Invalid filter pattern definition.", bad


def test_filter_validation_is_the_filter_engines() -> None:
    # event-ruler takes "$or" holding an object as a plain field name, so Lambda accepts it.
    validate_create_request(create(FilterCriteria={"Filters": [pattern({"$or": {"a": [1]}})]}))
    # Length is counted in UTF-16 code units, as AWS's API model (Java) counts: an emoji is 2.
    emoji = "\U0001f600"
    fits = {"Pattern": '{"a":["' + emoji * 2043 + '"]}'}  # 10 + 2 * 2043 = 4096 units
    validate_create_request(create(FilterCriteria={"Filters": [fits]}))
    too_long = {"Pattern": '{"a":["' + emoji * 2044 + '"]}'}  # 4098 units, 2054 code points
    error = rejected(create(FilterCriteria={"Filters": [too_long]}))
    assert error.code == "ValidationException"
    assert "Member must have length less than or equal to 4096" in str(error)
    # An operator Lambda does not offer (EventBridge's wildcard) is refused.
    wildcard = pattern({"eventName": [{"wildcard": "INS*"}]})
    assert str(rejected(create(FilterCriteria={"Filters": [wildcard]}))) == (
        "Invalid filter pattern definition."
    )


def test_tumbling_windows_need_a_parallelization_factor_of_1() -> None:
    validate_create_request(create(TumblingWindowInSeconds=60, ParallelizationFactor=1))
    validate_create_request(create(TumblingWindowInSeconds=0, ParallelizationFactor=10))
    error = rejected(create(TumblingWindowInSeconds=60, ParallelizationFactor=2))
    assert error.code == "InvalidParameterValueException"
    assert str(error) == (
        "TumblingWindowInSeconds (60) requires a ParallelizationFactor of 1, not 2."
    )
    # An update may set one half; the runner then refuses the stored combination.
    validate_update_request({"ParallelizationFactor": 2})
    with pytest.raises(InvalidParameterValueError, match="requires a ParallelizationFactor"):
        MappingConfig.from_api(api_mapping(TumblingWindowInSeconds=60, ParallelizationFactor=2))


def test_destination_must_be_sqs_sns_or_s3() -> None:
    for arn in (QUEUE_ARN, "arn:aws:sns:us-east-1:123456789012:t", "arn:aws:s3:::bucket"):
        validate_create_request(create(DestinationConfig={"OnFailure": {"Destination": arn}}))
    lambda_arn = FUNCTION_ARN
    error = rejected(create(DestinationConfig={"OnFailure": {"Destination": lambda_arn}}))
    assert str(error) == (
        "The provided destination config DestinationConfig(onSuccess=null, "
        f"onFailure=OnFailure(destination={lambda_arn})) is invalid."
    )
    on_success = rejected(create(DestinationConfig={"OnSuccess": {"Destination": QUEUE_ARN}}))
    assert "Unsupported DestinationConfig parameter" in str(on_success)


def test_update_does_not_require_a_starting_position() -> None:
    validate_update_request({"UUID": "u", "BatchSize": 10, "Enabled": False})
    assert "at 'batchSize'" in str(rejected({"UUID": "u", "BatchSize": 0}, update=True))


def test_is_dynamodb_stream_arn() -> None:
    assert is_dynamodb_stream_arn(STREAM_ARN)
    assert not is_dynamodb_stream_arn(QUEUE_ARN)
    assert not is_dynamodb_stream_arn("arn:aws:dynamodb:us-east-1:123456789012:table/orders")


def api_mapping(**overrides: Any) -> dict[str, Any]:
    """A ListEventSourceMappings entry as moto returns it."""
    mapping: dict[str, Any] = {
        "UUID": "4b1e6d8a-0000-4000-8000-000000000001",
        "BatchSize": 100,
        "EventSourceArn": STREAM_ARN,
        "FunctionArn": FUNCTION_ARN,
        "LastModified": 1700000000.0,
        "State": "Enabled",
        "StartingPosition": "TRIM_HORIZON",
    }
    mapping.update(overrides)
    return mapping


def test_from_api_defaults_match_aws() -> None:
    config = MappingConfig.from_api(api_mapping())
    assert config.batch_size == 100
    assert config.max_batching_window_s == 0
    assert config.max_retry_attempts == -1
    assert config.max_record_age_s == -1
    assert config.parallelization_factor == 1
    assert config.report_batch_item_failures is False
    assert config.filter_patterns == ()
    assert config.on_failure_destination is None
    assert config.enabled is True
    assert config.starting_position == "TRIM_HORIZON"


def test_from_api_reads_every_setting() -> None:
    filters = {"Filters": [pattern({"eventName": ["INSERT"]})]}
    config = MappingConfig.from_api(
        api_mapping(
            BatchSize=7,
            MaximumBatchingWindowInSeconds=2,
            MaximumRetryAttempts=3,
            MaximumRecordAgeInSeconds=120,
            ParallelizationFactor=2,
            FunctionResponseTypes=["ReportBatchItemFailures"],
            FilterCriteria=filters,
            BisectBatchOnFunctionError=True,
            DestinationConfig={"OnFailure": {"Destination": QUEUE_ARN}},
            State="Disabled",
        )
    )
    assert (config.batch_size, config.max_batching_window_s) == (7, 2)
    assert (config.max_retry_attempts, config.max_record_age_s) == (3, 120)
    assert config.parallelization_factor == 2
    assert MappingConfig.from_api(api_mapping(TumblingWindowInSeconds=30)).tumbling_window_s == 30
    assert config.report_batch_item_failures is True
    assert [json.loads(p) for p in config.filter_patterns] == [{"eventName": ["INSERT"]}]
    assert config.bisect is True
    assert config.on_failure_destination == QUEUE_ARN
    assert config.enabled is False


@pytest.mark.parametrize(
    ("state", "runs"),
    [
        ("Enabled", True),
        ("Enabling", True),
        ("Updating", True),
        # Created with Enabled=False it is Creating first, then Disabled: wait, never run.
        ("Creating", False),
        ("Disabling", False),
        ("Disabled", False),
        ("Deleting", False),
    ],
)
def test_from_api_runs_only_settled_or_enabling_states(state: str, runs: bool) -> None:
    assert MappingConfig.from_api(api_mapping(State=state)).enabled is runs


def test_from_api_accepts_a_pattern_echoed_as_an_object() -> None:
    config = MappingConfig.from_api(
        api_mapping(FilterCriteria={"Filters": [{"Pattern": {"eventName": ["INSERT"]}}]})
    )
    assert json.loads(config.filter_patterns[0]) == {"eventName": ["INSERT"]}


def test_from_api_rejects_a_stored_out_of_range_mapping() -> None:
    with pytest.raises(InvalidParameterValueError, match="at 'batchSize'"):
        MappingConfig.from_api(api_mapping(BatchSize=20000))


def test_the_restart_key_ignores_enabled_and_last_modified() -> None:
    base = MappingConfig.from_api(api_mapping())
    toggled = MappingConfig.from_api(api_mapping(State="Disabled", LastModified=1800000000.0))
    resized = MappingConfig.from_api(api_mapping(BatchSize=5))
    assert base.restart_key() == toggled.restart_key()
    assert base.restart_key() != resized.restart_key()
    assert base.changed_fields(toggled) == []
    assert base.changed_fields(resized) == ["batch_size"]
