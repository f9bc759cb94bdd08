"""The Lambda event envelope for DynamoDB stream records, and the mapping's record filter.

GetRecords returns records as boto3 parses them (``ApproximateCreationDateTime`` as a datetime,
binary values as ``bytes``); Lambda hands the function JSON: epoch seconds and base64 text.
:class:`LambdaRecordConverter` turns one into the other, and :func:`build_record_filter`
applies a mapping's FilterCriteria to the converted record (patterns see what the function
would see). https://docs.aws.amazon.com/lambda/latest/dg/with-ddb.html#events-sample-dynamodb
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["LambdaRecordConverter", "build_record_filter", "epoch_seconds"]


def epoch_seconds(value: Any) -> float:
    """ApproximateCreationDateTime as epoch seconds, whatever form the endpoint used (boto3
    parses it to a datetime; raw JSON has a number; some emulators send ISO strings)."""
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.timestamp()
    if isinstance(value, (int, float)):
        number = float(value)
        return number / 1000.0 if number > 1e11 else number  # milliseconds, if that large
    if isinstance(value, str):
        try:
            return epoch_seconds(float(value))
        except ValueError:
            return epoch_seconds(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))
    raise ValueError(f"unrecognised ApproximateCreationDateTime: {value!r}")


def _b64(value: Any) -> str:
    return (
        base64.b64encode(value).decode("ascii")
        if isinstance(value, (bytes, bytearray))
        else str(value)
    )


def _json_attribute(av: Mapping[str, Any]) -> dict[str, Any]:
    """An attribute value as Lambda delivers it: binary (B, BS) base64-encoded."""
    ((tag, value),) = av.items()
    if tag == "B":
        return {"B": _b64(value)}
    if tag == "BS":
        return {"BS": [_b64(v) for v in value]}
    if tag == "M":
        return {"M": _json_image(value)}
    if tag == "L":
        return {"L": [_json_attribute(v) for v in value]}
    return {tag: value}


def _json_image(image: Mapping[str, Any]) -> dict[str, Any]:
    return {name: _json_attribute(av) for name, av in image.items()}


def _lambda_identity(identity: Mapping[str, Any]) -> dict[str, Any]:
    """GetRecords spells the identity ``{"PrincipalId", "Type"}`` (its API model); Lambda's
    event ``{"type", "principalId"}``, e.g. a TTL delete's ``{"type": "Service",
    "principalId": "dynamodb.amazonaws.com"}``
    (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/time-to-live-ttl-streams.html)."""
    out = {k[0].lower() + k[1:]: v for k, v in identity.items() if k not in ("Type", "type")}
    kind = identity.get("Type", identity.get("type"))
    return {"type": kind, **out} if kind is not None else out


class LambdaRecordConverter:
    """A GetRecords record -> the record Lambda puts in ``event["Records"]``:
    ``eventID, eventName, eventVersion, eventSource, awsRegion, dynamodb{
    ApproximateCreationDateTime (epoch seconds, rounded down as DynamoDB does), Keys,
    NewImage?, OldImage?, SequenceNumber, SizeBytes, StreamViewType}, eventSourceARN``
    (+ ``userIdentity`` for TTL deletes). ``awsRegion`` is the stream's region (moto always
    reports us-east-1)."""

    def __init__(self, stream_arn: str) -> None:
        self.stream_arn = stream_arn
        self.region = stream_arn.split(":")[3]

    def __call__(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        body = raw["dynamodb"]
        dynamodb: dict[str, Any] = {
            "ApproximateCreationDateTime": float(
                int(epoch_seconds(body["ApproximateCreationDateTime"]))
            ),
            "Keys": _json_image(body.get("Keys") or {}),
        }
        for image in ("NewImage", "OldImage"):
            if image in body:
                dynamodb[image] = _json_image(body[image])
        dynamodb["SequenceNumber"] = body["SequenceNumber"]
        dynamodb["SizeBytes"] = body.get("SizeBytes", 0)
        dynamodb["StreamViewType"] = body.get("StreamViewType")
        record: dict[str, Any] = {
            "eventID": raw.get("eventID"),
            "eventName": raw.get("eventName"),
            "eventVersion": raw.get("eventVersion", "1.1"),
            "eventSource": "aws:dynamodb",
            "awsRegion": self.region,
            "dynamodb": dynamodb,
            "eventSourceARN": self.stream_arn,
        }
        if raw.get("userIdentity"):
            record["userIdentity"] = _lambda_identity(raw["userIdentity"])
        return record


def build_record_filter(patterns: Sequence[str]) -> Callable[[Mapping[str, Any]], bool] | None:
    """The FilterCriteria matcher for a mapping, or None without filters. Raises ImportError
    when the filter engine is missing: never run a filtered mapping unfiltered."""
    if not patterns:
        return None
    from streamkit.filters import FilterCriteria

    criteria = FilterCriteria.from_api({"Filters": [{"Pattern": p} for p in patterns]})
    matches: Callable[[Mapping[str, Any]], bool] = criteria.matches
    return matches
