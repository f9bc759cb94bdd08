"""Hypothesis strategies for bad (and good) input: DynamoDB JSON, stream events, responses.

Each strategy mixes valid values with the malformed ones real systems send: wrong types,
unknown type tags, bad base64, numbers out of DynamoDB's range, deep nesting, big values.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import strategies as st

# JSON-ish leaves of every type, including the ones that trip parsers.
WEIRD_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=20),
)
ANY_JSON = st.recursive(
    WEIRD_SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)

# Number texts: valid, at the edges of DynamoDB's range, and outside it.
NUMBER_TEXTS = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=None).map(str),
    st.sampled_from(
        [
            "1E+125",
            "9.9999999999999999999999999999999999999E+125",
            "1E+126",
            "1E-130",
            "1E-131",
            "-1E-130",
            "0",
            "-0",
            "0.000",
            "1" * 38,
            "1" * 39,
            "NaN",
            "Infinity",
            "-Infinity",
            "",
            " 1",
            "1 ",
            "0x10",
            "1_000",
            "+1",
            "1e5",
            ".5",
            "5.",
            "--1",
            "١٢",
        ]
    ),
    st.text(max_size=12),
)
B64_TEXTS = st.one_of(
    st.binary(max_size=40).map(lambda b: base64.b64encode(b).decode()),
    st.sampled_from(["", "=", "abc", "a===", "!!!!", "YQ", "YQ=", "Y Q==", "YWJj\n", "ä"]),
    st.text(max_size=12),
)
BAD_TAGS = st.sampled_from(["s", "Str", "X", "", "NN", "BOOLEAN", "Null", "m", "l"])


@st.composite
def attribute_values(draw: st.DrawFn, depth: int = 0) -> Any:
    """One DynamoDB JSON attribute value, valid or not."""
    if depth > 3 and draw(st.integers(0, 3)):
        return {"S": draw(st.text(max_size=5))}
    kind = draw(
        st.sampled_from(
            ["S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "L", "M", "bad", "junk", "two"]
        )
    )
    if kind == "S":
        return {"S": draw(st.one_of(st.text(max_size=30), WEIRD_SCALARS))}
    if kind == "N":
        return {"N": draw(st.one_of(NUMBER_TEXTS, WEIRD_SCALARS))}
    if kind == "B":
        return {"B": draw(st.one_of(B64_TEXTS, st.binary(max_size=10), WEIRD_SCALARS))}
    if kind == "BOOL":
        return {"BOOL": draw(st.one_of(st.booleans(), WEIRD_SCALARS))}
    if kind == "NULL":
        return {"NULL": draw(st.one_of(st.just(True), WEIRD_SCALARS))}
    if kind == "SS":
        return {"SS": draw(st.one_of(st.lists(st.text(max_size=5), max_size=4), WEIRD_SCALARS))}
    if kind == "NS":
        return {"NS": draw(st.one_of(st.lists(NUMBER_TEXTS, max_size=4), WEIRD_SCALARS))}
    if kind == "BS":
        return {"BS": draw(st.one_of(st.lists(B64_TEXTS, max_size=4), WEIRD_SCALARS))}
    if kind == "L":
        return {"L": draw(st.lists(attribute_values(depth + 1), max_size=3))}
    if kind == "M":
        return {"M": draw(images(depth + 1))}
    if kind == "bad":
        return {draw(BAD_TAGS): draw(WEIRD_SCALARS)}
    if kind == "two":
        return {"S": "a", "N": "1"}
    return draw(ANY_JSON)


@st.composite
def images(draw: st.DrawFn, depth: int = 0) -> Any:
    return draw(st.dictionaries(st.text(max_size=6), attribute_values(depth), max_size=4))


def deep_value(levels: int) -> dict[str, Any]:
    """A map nested ``levels`` deep: DynamoDB allows 32."""
    value: dict[str, Any] = {"S": "leaf"}
    for _ in range(levels):
        value = {"M": {"x": value}}
    return value


@st.composite
def codec_inputs(draw: st.DrawFn) -> Any:
    """An image for ``deserialize``: generated, deeply nested, oversized, or not a map at all."""
    shape = draw(st.sampled_from(["image", "image", "image", "deep", "big", "not-a-map"]))
    if shape == "deep":
        return {"a": deep_value(draw(st.integers(25, 40)))}
    if shape == "big":
        size = draw(st.sampled_from([400 * 1024, 1024 * 1024]))
        return {"blob": {"S": "x" * size}, "n": {"N": "1"}}
    if shape == "not-a-map":
        return draw(ANY_JSON)
    return draw(images())


SEQUENCES = st.integers(min_value=1, max_value=10**21).map(str)


@st.composite
def stream_records(draw: st.DrawFn, sequence: str | None = None) -> Any:
    """A stream record as Lambda delivers it, with any field possibly missing or malformed."""
    record: dict[str, Any] = {
        "eventID": draw(st.text(min_size=1, max_size=8)),
        "eventName": draw(st.sampled_from(["INSERT", "MODIFY", "REMOVE"])),
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2020",
        "dynamodb": {
            "ApproximateCreationDateTime": draw(
                st.one_of(st.integers(0, 2**33), st.floats(0, 2e9))
            ),
            "Keys": {"pk": {"S": draw(st.text(min_size=1, max_size=4))}},
            "NewImage": draw(images()),
            "SequenceNumber": sequence or draw(SEQUENCES),
            "SizeBytes": draw(st.integers(1, 400_000)),
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        },
    }
    breakage = draw(
        st.sampled_from(["none", "none", "drop", "retype", "body", "not-object", "keys"])
    )
    body = record["dynamodb"]
    if breakage == "drop":
        victim = draw(st.sampled_from([*record, *body]))
        (record if victim in record else body).pop(victim, None)
    elif breakage == "retype":
        victim = draw(st.sampled_from([*record, *body]))
        (record if victim in record else body)[victim] = draw(WEIRD_SCALARS)
    elif breakage == "body":
        record["dynamodb"] = draw(WEIRD_SCALARS)
    elif breakage == "not-object":
        return draw(WEIRD_SCALARS)
    elif breakage == "keys":
        body["Keys"] = draw(st.one_of(images(), WEIRD_SCALARS))
    return record


@st.composite
def stream_events(draw: st.DrawFn) -> Any:
    """A Lambda DynamoDB stream event; sometimes not one at all."""
    shape = draw(st.sampled_from(["event"] * 6 + ["no-records", "records-not-list", "not-map"]))
    if shape == "not-map":
        return draw(ANY_JSON.filter(lambda v: not isinstance(v, dict)))
    if shape == "no-records":
        return draw(st.dictionaries(st.text(max_size=5), ANY_JSON, max_size=3))
    if shape == "records-not-list":
        return {"Records": draw(WEIRD_SCALARS)}
    base = draw(st.integers(1, 10**12))
    count = draw(st.integers(0, 6))
    # Valid records get increasing sequence numbers, as in a shard.
    return {"Records": [draw(stream_records(str(base + i))) for i in range(count)]}


@st.composite
def function_responses(draw: st.DrawFn, sequences: list[str]) -> Any:
    """What a function might return for a batch: documented shapes, near misses, junk, bytes."""
    identifier = st.one_of(
        st.sampled_from(sequences) if sequences else st.nothing(),
        st.sampled_from(["", "0", "999999999999999999999999"]),
        WEIRD_SCALARS,
    )
    entry = st.one_of(
        st.fixed_dictionaries({"itemIdentifier": identifier}),
        st.fixed_dictionaries({"itemidentifier": identifier}),
        st.dictionaries(st.text(max_size=6), WEIRD_SCALARS, max_size=2),
        WEIRD_SCALARS,
    )
    body = st.one_of(
        st.fixed_dictionaries({"batchItemFailures": st.lists(entry, max_size=4)}),
        st.fixed_dictionaries({"batchItemFailures": WEIRD_SCALARS}),
        st.fixed_dictionaries({"BatchItemFailures": st.lists(entry, max_size=2)}),
        ANY_JSON,
    )
    value = draw(body)
    wire = draw(st.sampled_from(["object", "json-bytes", "text-bytes", "raw-bytes"]))
    if wire == "object":
        return value
    if wire == "json-bytes":
        return json.dumps(value, default=repr).encode()
    if wire == "text-bytes":
        return draw(st.text(max_size=30)).encode()
    return draw(st.binary(max_size=30))


MAPPING_KEYS = {
    "BatchSize": st.integers(-5, 20000),
    "MaximumBatchingWindowInSeconds": st.integers(-5, 400),
    "ParallelizationFactor": st.integers(-1, 12),
    "MaximumRetryAttempts": st.integers(-3, 10005),
    "MaximumRecordAgeInSeconds": st.integers(-3, 604_900),
    "TumblingWindowInSeconds": st.integers(-1, 1000),
    "StartingPosition": st.sampled_from(["TRIM_HORIZON", "LATEST", "AT_TIMESTAMP", "latest", ""]),
    "FunctionResponseTypes": st.one_of(
        st.just(["ReportBatchItemFailures"]),
        st.lists(st.sampled_from(["ReportBatchItemFailures", "Other", ""]), max_size=3),
    ),
    "BisectBatchOnFunctionError": st.booleans(),
    "Enabled": st.booleans(),
}


@st.composite
def mapping_requests(draw: st.DrawFn) -> dict[str, Any]:
    """A CreateEventSourceMapping body: in range, out of range, or of the wrong type."""
    request: dict[str, Any] = {
        "EventSourceArn": draw(
            st.sampled_from(
                [
                    "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2020-01-01T00:00:00.000",
                    "arn:aws:dynamodb:us-east-1:123456789012:table/t",
                    "arn:aws:sqs:us-east-1:123456789012:q",
                    "",
                ]
            )
        ),
        "FunctionName": "f",
    }
    for key in draw(st.lists(st.sampled_from(sorted(MAPPING_KEYS)), unique=True, max_size=6)):
        wrong_type = draw(st.integers(0, 7)) == 0
        request[key] = draw(WEIRD_SCALARS if wrong_type else MAPPING_KEYS[key])
    if draw(st.booleans()):
        request["FilterCriteria"] = draw(
            st.one_of(
                st.fixed_dictionaries(
                    {
                        "Filters": st.lists(
                            st.fixed_dictionaries({"Pattern": filter_pattern_texts()}), max_size=6
                        )
                    }
                ),
                ANY_JSON,
            )
        )
    if draw(st.integers(0, 3)) == 0:
        request["DestinationConfig"] = draw(
            st.one_of(
                st.just({"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:dlq"}}),
                st.just({"OnFailure": {"Destination": "arn:aws:dynamodb:us-east-1:1:table/x"}}),
                ANY_JSON,
            )
        )
    return request


OPERATOR_VALUES = st.one_of(
    st.fixed_dictionaries({"prefix": st.one_of(st.text(max_size=4), WEIRD_SCALARS)}),
    st.fixed_dictionaries({"suffix": st.one_of(st.text(max_size=4), WEIRD_SCALARS)}),
    st.fixed_dictionaries(
        {"anything-but": st.one_of(st.lists(WEIRD_SCALARS, max_size=3), WEIRD_SCALARS)}
    ),
    st.fixed_dictionaries(
        {
            "numeric": st.lists(
                st.one_of(st.sampled_from(["=", "<", ">=", "<=", ">"]), WEIRD_SCALARS), max_size=5
            )
        }
    ),
    st.fixed_dictionaries({"exists": WEIRD_SCALARS}),
    st.fixed_dictionaries({"equals-ignore-case": st.one_of(st.text(max_size=4), WEIRD_SCALARS)}),
    st.fixed_dictionaries({"wildcard": st.text(max_size=5)}),
    st.dictionaries(st.text(max_size=6), WEIRD_SCALARS, max_size=2),
    WEIRD_SCALARS,
)


@st.composite
def filter_patterns(draw: st.DrawFn, depth: int = 0) -> Any:
    """An EventBridge-style pattern object, valid or broken."""
    if depth > 2:
        return draw(st.lists(OPERATOR_VALUES, min_size=0, max_size=3))
    fields = draw(
        st.dictionaries(
            st.sampled_from(["eventName", "dynamodb", "NewImage", "status", "S", "N", "$or", "x"]),
            st.one_of(
                st.lists(OPERATOR_VALUES, max_size=3),
                filter_patterns(depth + 1),
                st.lists(filter_patterns(depth + 1), max_size=2),
                WEIRD_SCALARS,
            ),
            max_size=3,
        )
    )
    return fields


@st.composite
def filter_pattern_texts(draw: st.DrawFn) -> Any:
    choice = draw(st.sampled_from(["json", "json", "text", "long", "value"]))
    if choice == "json":
        return json.dumps(draw(filter_patterns()), default=repr)
    if choice == "long":
        return json.dumps({"eventName": ["x" * draw(st.integers(4000, 5000))]})
    if choice == "value":
        return draw(WEIRD_SCALARS)
    return draw(st.text(max_size=20))
