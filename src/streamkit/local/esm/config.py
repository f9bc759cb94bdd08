"""Event source mapping parameters: AWS's validation rules and the runner's parsed config.

``validate_create_request`` / ``validate_update_request`` check a CreateEventSourceMapping /
UpdateEventSourceMapping request body (the Lambda API's PascalCase keys) and raise
:class:`~streamkit.exceptions.InvalidParameterValueError` with AWS's wording. The embedded
emulator calls them so a bad request gets HTTP 400 as on AWS; the runner calls them again
(through :meth:`MappingConfig.from_api`) for endpoints that do not, and reports such a
mapping as failed instead of running it.

Ranges: https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html
Messages come in two families, as on AWS:

- the API model's constraints (``ValidationException``), e.g. "1 validation error detected:
  Value '0' at 'batchSize' failed to satisfy constraint: Member must have value greater than
  or equal to 1". Several violations are reported together, joined by "; ".
- the service's own checks (``InvalidParameterValueException``), e.g. "Invalid filter
  pattern definition." or "Unsupported starting position for arn type: <arn>".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from streamkit.exceptions import InvalidParameterValueError

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "STREAM_MAPPING_DEFAULTS",
    "MappingConfig",
    "is_dynamodb_stream_arn",
    "validate_create_request",
    "validate_update_request",
]

DEFAULT_BATCH_SIZE = 100
# What Lambda reports for a stream mapping's optional fields the request left out
# (https://docs.aws.amazon.com/lambda/latest/api/API_CreateEventSourceMapping.html). The
# embedded emulator fills them in; MappingConfig.from_api falls back to them.
STREAM_MAPPING_DEFAULTS: Mapping[str, Any] = {
    "MaximumBatchingWindowInSeconds": 0,
    "ParallelizationFactor": 1,
    "MaximumRecordAgeInSeconds": -1,
    "MaximumRetryAttempts": -1,
    "BisectBatchOnFunctionError": False,
    "TumblingWindowInSeconds": 0,
    "FunctionResponseTypes": [],
}
REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST")
_MODEL_STARTING_POSITIONS = "[LATEST, AT_TIMESTAMP, TRIM_HORIZON]"
_DESTINATION_SERVICES = ("sqs", "sns", "s3")

# (request key, camelCase name AWS uses in messages, min, max) -- the API model's ranges.
_INTEGER_RANGES: tuple[tuple[str, str, int, int], ...] = (
    ("BatchSize", "batchSize", 1, 10000),
    ("MaximumBatchingWindowInSeconds", "maximumBatchingWindowInSeconds", 0, 300),
    ("ParallelizationFactor", "parallelizationFactor", 1, 10),
    ("MaximumRetryAttempts", "maximumRetryAttempts", -1, 10000),
    ("MaximumRecordAgeInSeconds", "maximumRecordAgeInSeconds", -1, 604800),
    ("TumblingWindowInSeconds", "tumblingWindowInSeconds", 0, 900),
)
_BOOLEANS = ("Enabled", "BisectBatchOnFunctionError")


def is_dynamodb_stream_arn(arn: str) -> bool:
    """``arn:aws:dynamodb:<region>:<account>:table/<name>/stream/<label>``."""
    parts = arn.split(":", 5)
    return len(parts) == 6 and parts[2] == "dynamodb" and "/stream/" in parts[5]


def validate_create_request(params: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidParameterValueError` unless ``params`` is a valid
    CreateEventSourceMapping body for a DynamoDB stream (other sources: only the shared
    range checks apply)."""
    _check_model_constraints(params)
    source_arn = params.get("EventSourceArn")
    if not source_arn:
        raise InvalidParameterValueError("Unrecognized event source.")
    if is_dynamodb_stream_arn(str(source_arn)):
        position = params.get("StartingPosition")
        if position is None:
            raise InvalidParameterValueError(
                "1 validation error detected: Value null at 'startingPosition' failed to "
                "satisfy constraint: Member must not be null."
            )
        # A timestamp with another position is refused first (LocalStack's snapshot
        # test_api.snapshot.json, recorded against AWS, 2025-02-17).
        if params.get("StartingPositionTimestamp") is not None and position != "AT_TIMESTAMP":
            raise InvalidParameterValueError(
                "Timestamp only valid with StartingPosition AT_TIMESTAMP"
            )
        # AT_TIMESTAMP passes the model's enum but DynamoDB streams do not support it.
        if position not in STARTING_POSITIONS:
            raise InvalidParameterValueError(
                f"Unsupported starting position for arn type: {source_arn}"
            )
    _check_service_rules(params)


def validate_update_request(params: Mapping[str, Any]) -> None:
    """Raise :class:`InvalidParameterValueError` unless ``params`` is a valid
    UpdateEventSourceMapping body (StartingPosition and the source cannot change)."""
    _check_model_constraints(params)
    _check_service_rules(params)


def _check_model_constraints(params: Mapping[str, Any]) -> None:
    errors: list[str] = []
    for key, name, low, high in _INTEGER_RANGES:
        value = params.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            errors.append(
                f"Value '{value}' at '{name}' failed to satisfy constraint: Member must be an integer"
            )
        elif value < low:
            errors.append(
                f"Value '{value}' at '{name}' failed to satisfy constraint: "
                f"Member must have value greater than or equal to {low}"
            )
        elif value > high:
            errors.append(
                f"Value '{value}' at '{name}' failed to satisfy constraint: "
                f"Member must have value less than or equal to {high}"
            )
    for key in _BOOLEANS:
        value = params.get(key)
        if value is not None and not isinstance(value, bool):
            name = key[0].lower() + key[1:]
            errors.append(
                f"Value '{value}' at '{name}' failed to satisfy constraint: Member must be a boolean"
            )
    position = params.get("StartingPosition")
    if position is not None and position not in (*STARTING_POSITIONS, "AT_TIMESTAMP"):
        errors.append(
            f"Value '{position}' at 'startingPosition' failed to satisfy constraint: "
            f"Member must satisfy enum value set: {_MODEL_STARTING_POSITIONS}"
        )
    errors.extend(_function_response_type_errors(params.get("FunctionResponseTypes")))
    if errors:
        count = len(errors)
        noun = "error" if count == 1 else "errors"
        raise InvalidParameterValueError(
            f"{count} validation {noun} detected: " + "; ".join(errors), code="ValidationException"
        )


def _function_response_type_errors(types: Any) -> list[str]:
    if types is None:
        return []
    if not isinstance(types, list):
        return [
            f"Value '{types}' at 'functionResponseTypes' failed to satisfy constraint: Member must be a list"
        ]
    errors = []
    if len(types) > 1:
        errors.append(
            f"Value '[{', '.join(map(str, types))}]' at 'functionResponseTypes' failed to satisfy "
            "constraint: Member must have length less than or equal to 1"
        )
    if any(t != REPORT_BATCH_ITEM_FAILURES for t in types):
        errors.append(
            f"Value '[{', '.join(map(str, types))}]' at 'functionResponseTypes' failed to satisfy "
            f"constraint: Member must satisfy constraint: [Member must satisfy enum value set: "
            f"[{REPORT_BATCH_ITEM_FAILURES}]]"
        )
    return errors


def _raw_patterns(criteria: Any) -> list[Any]:
    if not isinstance(criteria, Mapping):
        return []
    filters = criteria.get("Filters") or []
    if not isinstance(filters, list):
        return []
    return [f.get("Pattern") if isinstance(f, Mapping) else f for f in filters]


def _check_service_rules(params: Mapping[str, Any]) -> None:
    age = params.get("MaximumRecordAgeInSeconds")
    # The model allows -1..604800; the service also refuses 0..59.
    if age is not None and age != -1 and not 60 <= age <= 604800:
        raise InvalidParameterValueError(
            "MaximumRecordAgeInSeconds must be either -1 (forever) or between 60 and 604800 (inclusive)"
        )
    _check_window_parallelization(params)
    _check_filter_criteria(params.get("FilterCriteria"))
    _check_destination_config(params.get("DestinationConfig"))


def _check_window_parallelization(params: Mapping[str, Any]) -> None:
    """Tumbling windows keep one state per shard, so a shard cannot be split into lanes: AWS
    requires ParallelizationFactor 1 with TumblingWindowInSeconds. (The wording is ours; an
    update that sets only one of the two is checked when the runner reads the stored mapping.)"""
    window = params.get("TumblingWindowInSeconds") or 0
    factor = params.get("ParallelizationFactor") or 1
    if window > 0 and factor > 1:
        raise InvalidParameterValueError(
            f"TumblingWindowInSeconds ({window}) requires a ParallelizationFactor of 1, "
            f"not {factor}."
        )


def _check_filter_criteria(criteria: Any) -> None:
    """The filter engine owns the whole grammar: how many filters, each pattern's length (in
    UTF-16 code units, as AWS's API model counts), its shape and its operators."""
    if criteria is None:
        return
    from streamkit.filters import FilterCriteria  # the engine; imported late to stay light

    try:
        FilterCriteria.from_api(criteria)
    except InvalidParameterValueError:
        raise  # too many filters, or a pattern too long: already in AWS's words
    except (ValueError, TypeError) as exc:  # InvalidFilterPatternError and anything malformed
        raise InvalidParameterValueError("Invalid filter pattern definition.") from exc


def _normalized_criteria(criteria: Mapping[str, Any]) -> dict[str, Any]:
    """``{"Filters": [{"Pattern": "<json string>"}]}`` whatever form the endpoint echoed."""
    patterns = _raw_patterns(criteria)
    return {
        "Filters": [
            {"Pattern": p if isinstance(p, str) else json.dumps(p, separators=(",", ":"))}
            for p in patterns
        ]
    }


def _check_destination_config(config: Any) -> None:
    if config is None:
        return
    if not isinstance(config, Mapping):
        raise InvalidParameterValueError("Invalid DestinationConfig.")
    on_success = config.get("OnSuccess") or {}
    if on_success.get("Destination"):
        raise InvalidParameterValueError(
            "Unsupported DestinationConfig parameter for given event source mapping type."
        )
    destination = (config.get("OnFailure") or {}).get("Destination")
    if not destination:
        return
    parts = str(destination).split(":")
    if len(parts) < 6 or parts[0] != "arn" or parts[2] not in _DESTINATION_SERVICES:
        raise InvalidParameterValueError(
            "The provided destination config DestinationConfig(onSuccess=null, "
            f"onFailure=OnFailure(destination={destination})) is invalid."
        )


@dataclass(frozen=True)
class MappingConfig:
    """One event source mapping as the runner uses it, parsed from the Lambda API's dict.

    Numbers keep AWS's sentinels: ``max_retry_attempts == -1`` and ``max_record_age_s == -1``
    mean "forever". ``filter_patterns`` holds each filter's pattern as a JSON string.
    """

    uuid: str
    function_arn: str
    event_source_arn: str
    batch_size: int = DEFAULT_BATCH_SIZE
    max_batching_window_s: int = 0
    starting_position: str = "LATEST"
    parallelization_factor: int = 1
    max_retry_attempts: int = -1
    max_record_age_s: int = -1
    tumbling_window_s: int = 0
    report_batch_item_failures: bool = False
    filter_patterns: tuple[str, ...] = ()
    bisect: bool = False
    on_failure_destination: str | None = None
    enabled: bool = True
    last_modified: str = ""

    @classmethod
    def from_api(cls, mapping: Mapping[str, Any]) -> MappingConfig:
        """Parse a ListEventSourceMappings / GetEventSourceMapping entry.

        Raises :class:`InvalidParameterValueError` when a value is out of AWS's ranges, so an
        endpoint that stored a bad mapping never gets it run.
        """
        state = mapping.get("State")
        enabled = mapping.get("Enabled")
        if enabled is None:
            # Lambda runs a mapping that is Enabled, Enabling or Updating, and stops one that
            # is Disabling or Deleting (Deleting mappings stay listed for a while). A Creating
            # mapping may have been created disabled (it then settles to Disabled): it waits
            # until it settles, so `Enabled=False` never runs a batch.
            enabled = state in ("Enabled", "Enabling", "Updating")
        request_view = {k: v for k, v in mapping.items() if v is not None}
        request_view.pop("Enabled", None)
        validate_create_request(request_view)
        criteria = mapping.get("FilterCriteria")
        patterns = (
            tuple(_normalized_criteria(criteria)["Filters"])
            if isinstance(criteria, Mapping)
            else ()
        )
        destination = ((mapping.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
            "Destination"
        )
        last_modified = mapping.get("LastModified", "")
        return cls(
            uuid=str(mapping["UUID"]),
            function_arn=str(mapping["FunctionArn"]),
            event_source_arn=str(mapping["EventSourceArn"]),
            batch_size=_int(mapping, "BatchSize", DEFAULT_BATCH_SIZE),
            max_batching_window_s=_int(
                mapping,
                "MaximumBatchingWindowInSeconds",
                STREAM_MAPPING_DEFAULTS["MaximumBatchingWindowInSeconds"],
            ),
            starting_position=str(mapping.get("StartingPosition") or "LATEST"),
            parallelization_factor=_int(
                mapping, "ParallelizationFactor", STREAM_MAPPING_DEFAULTS["ParallelizationFactor"]
            ),
            max_retry_attempts=_int(
                mapping, "MaximumRetryAttempts", STREAM_MAPPING_DEFAULTS["MaximumRetryAttempts"]
            ),
            max_record_age_s=_int(
                mapping,
                "MaximumRecordAgeInSeconds",
                STREAM_MAPPING_DEFAULTS["MaximumRecordAgeInSeconds"],
            ),
            tumbling_window_s=_int(
                mapping,
                "TumblingWindowInSeconds",
                STREAM_MAPPING_DEFAULTS["TumblingWindowInSeconds"],
            ),
            report_batch_item_failures=REPORT_BATCH_ITEM_FAILURES
            in (mapping.get("FunctionResponseTypes") or []),
            filter_patterns=tuple(str(f["Pattern"]) for f in patterns),
            bisect=bool(mapping.get("BisectBatchOnFunctionError") or False),
            on_failure_destination=str(destination) if destination else None,
            enabled=bool(enabled),
            last_modified=str(last_modified),
        )

    def restart_key(self) -> tuple[Any, ...]:
        """What the mapping's workers are built from: a change here restarts them (from the
        checkpoint). Every field but ``enabled`` and ``last_modified``, which a restart would
        not change."""
        return tuple(getattr(self, name) for name in _restart_fields())

    def changed_fields(self, other: MappingConfig) -> list[str]:
        """The names of the fields whose change restarts the workers, where ``other`` differs."""
        return [name for name in _restart_fields() if getattr(self, name) != getattr(other, name)]


def _restart_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(MappingConfig) if f.name not in _NO_RESTART)


_NO_RESTART = frozenset({"enabled", "last_modified"})


def _int(mapping: Mapping[str, Any], key: str, default: int) -> int:
    value = mapping.get(key)
    return default if value is None else int(value)
