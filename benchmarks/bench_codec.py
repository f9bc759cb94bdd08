"""Codec benchmarks: streamkit.deserialize / serialize against boto3 and Powertools.

Deserialization cases decode every record's Keys, NewImage and OldImage from the parsed
event dict, as a Lambda handler receives it. Fairness notes:

- In a Lambda event, B/BS values are base64 text. boto3's TypeDeserializer only takes raw
  bytes, so boto3 is given a copy of the event whose binary values were decoded beforehand
  (untimed): boto3 is spared the base64 work that streamkit does.
- Powertools' DynamoDBStreamEvent is given the event as is; it returns binary values as the
  base64 text, without decoding them (again less work than streamkit does).
- Before timing, each case checks that both sides produce equal values.

Serialization cases turn the same items (plain Python: Decimal, int, str, bytes, sets,
nested lists and maps) into DynamoDB JSON; boto3's TypeSerializer is called per attribute,
as ``{k: serializer.serialize(v) for k, v in item.items()}``, which is what boto3's Table
resource does.
"""

from __future__ import annotations

import base64
import copy
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.data_classes import DynamoDBStreamEvent
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from tests.helpers import stream_data as _data

from benchmarks import Case, run_cases
from streamkit import codec
from streamkit.codec import deserialize, serialize
from streamkit.codec._walker import pure_python_deserializer
from streamkit.records import parse_event

IMAGE_NAMES = ("Keys", "NewImage", "OldImage")
DESERIALIZE_TARGET = 2.2  # vs boto3 TypeDeserializer
POWERTOOLS_TARGET = 3.0  # vs Powertools DynamoDBStreamEvent
# The pure-Python walker has targets of its own (STREAMKIT_PURE_PYTHON=1, or no compiled
# build): it is what runs wherever nothing was compiled for the interpreter.
PURE_DESERIALIZE_TARGET = 2.5
PURE_POWERTOOLS_TARGET = 3.3
SERIALIZE_TARGET = 2.0  # vs boto3 TypeSerializer
CPU = time.process_time  # everything here is CPU-bound: time it in CPU time (less noise)


def _decode_binary(node: Any) -> Any:
    """A copy of DynamoDB JSON with B/BS base64 text decoded to bytes (what boto3 needs)."""
    if isinstance(node, dict):
        if len(node) == 1 and "B" in node:
            return {"B": base64.b64decode(node["B"])}
        if len(node) == 1 and "BS" in node:
            return {"BS": [base64.b64decode(m) for m in node["BS"]]}
        return {k: _decode_binary(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_decode_binary(v) for v in node]
    return node


def _unwrap_binary(value: Any) -> Any:
    """boto3's result with its Binary wrappers replaced by bytes, to compare with ours."""
    if isinstance(value, Binary):
        return value.value
    if isinstance(value, dict):
        return {k: _unwrap_binary(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_binary(v) for v in value]
    if isinstance(value, set):
        return {_unwrap_binary(v) for v in value}
    return value


def _images(event: dict[str, Any]) -> list[dict[str, Any]]:
    return [r["dynamodb"] for r in event["Records"]]


def streamkit_deserializer(event: dict[str, Any], numbers: Any = "decimal") -> Callable[[], Any]:
    bodies = _images(event)

    def run() -> list[dict[str, Any]]:
        out = []
        for body in bodies:
            for name in IMAGE_NAMES:
                image = body.get(name)
                if image is not None:
                    out.append(deserialize(image, numbers=numbers))
        return out

    return run


def streamkit_cold_deserializer(event: dict[str, Any]) -> Callable[[], Any]:
    """streamkit.deserialize with its table of short number texts emptied before each call.

    That is the state of a fresh Lambda container; it shows the table does not owe its
    effect to the benchmark repeating the same batch.
    """
    run = streamkit_deserializer(event)
    forget_numbers = codec._deserializer.forget_numbers

    def cold() -> Any:
        forget_numbers()
        return run()

    return cold


def boto3_deserializer(event: dict[str, Any]) -> Callable[[], Any]:
    bodies = _images(_decode_binary(copy.deepcopy(event)))
    deserializer = TypeDeserializer()

    def run() -> list[dict[str, Any]]:
        out = []
        for body in bodies:
            for name in IMAGE_NAMES:
                image = body.get(name)
                if image is not None:
                    out.append(deserializer.deserialize({"M": image}))
        return out

    return run


def powertools_deserializer(event: dict[str, Any]) -> Callable[[], Any]:
    def run() -> list[Any]:
        out = []
        for record in DynamoDBStreamEvent(event).records:
            body = record.dynamodb
            assert body is not None
            out.extend((body.keys, body.new_image, body.old_image))
        return out

    return run


def streamkit_records(event: dict[str, Any]) -> Callable[[], Any]:
    def run() -> list[Any]:
        out = []
        for record in parse_event(event):
            out.extend((record.keys, record.new_image, record.old_image))
        return out

    return run


def streamkit_serializer(items: list[dict[str, Any]]) -> Callable[[], Any]:
    return lambda: [serialize(item) for item in items]


def boto3_serializer(items: list[dict[str, Any]]) -> Callable[[], Any]:
    serializer = TypeSerializer()
    return lambda: [{k: serializer.serialize(v) for k, v in item.items()} for item in items]


def _check_same_values(event: dict[str, Any]) -> None:
    ours = streamkit_deserializer(event)()
    theirs = [_unwrap_binary(image) for image in boto3_deserializer(event)()]
    if ours != theirs:
        raise AssertionError("streamkit and boto3 disagree on the benchmark input")


def _check_same_json(items: list[dict[str, Any]]) -> None:
    def canonical(node: Any) -> Any:  # set members come out in any order
        if isinstance(node, dict):
            return {
                k: sorted(v, key=repr) if k in ("SS", "NS", "BS") else canonical(v)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [canonical(v) for v in node]
        return node

    if canonical(streamkit_serializer(items)()) != canonical(boto3_serializer(items)()):
        raise AssertionError("streamkit and boto3 serialize the benchmark input differently")


def deserialize_cases(
    label: str, event: dict[str, Any], *, targets: bool, collector: bool = False
) -> list[Case]:
    """The two deserialization cases (boto3, Powertools); ``collector``: see ``Case``."""
    _check_same_values(event)
    n = len(event["Records"])
    boto3_target, powertools_target = (
        (DESERIALIZE_TARGET, POWERTOOLS_TARGET)
        if codec.COMPILED
        else (PURE_DESERIALIZE_TARGET, PURE_POWERTOOLS_TARGET)
    )
    return [
        Case(
            f"deserialize {label}",
            streamkit_deserializer(event),
            boto3_deserializer(event),
            "boto3 TypeDeserializer",
            n,
            boto3_target if targets else None,
            CPU,
            collector,
        ),
        Case(
            f"deserialize {label}",
            streamkit_deserializer(event),
            powertools_deserializer(event),
            "Powertools StreamEvent",
            n,
            powertools_target if targets else None,
            CPU,
            collector,
        ),
    ]


def serialize_case(label: str, items: list[dict[str, Any]], *, target: float | None) -> Case:
    _check_same_json(items)
    return Case(
        f"serialize {label}",
        streamkit_serializer(items),
        boto3_serializer(items),
        "boto3 TypeSerializer",
        len(items),
        target,
        CPU,
    )


def pure_python_walk(event: dict[str, Any]) -> Callable[[], Any]:
    """What ``deserialize`` does with the pure-Python walker: the anchor of the compiled one.

    Called directly (``deserialize`` itself picks the compiled walker when there is one), on
    the same images; valid images never leave the fast walker, so this is the whole decode.
    """
    bodies = _images(event)
    walk = pure_python_deserializer().decimal_map

    def run() -> list[dict[str, Any]]:
        out = []
        for body in bodies:
            for name in IMAGE_NAMES:
                image = body.get(name)
                if image is not None:
                    out.append(walk(image))
        return out

    return run


def compiled_walker_case(orders: dict[str, Any]) -> list[Case]:
    """Compiled against pure-Python walker on the orders batch (info); none without a build."""
    if not codec.COMPILED:
        return []
    compiled, pure = streamkit_deserializer(orders), pure_python_walk(orders)
    if compiled() != pure():
        raise AssertionError("the compiled and pure-Python walkers decoded differently")
    return [
        Case(
            "deserialize orders, compiled vs pure walker",
            compiled,
            pure,
            "streamkit pure Python",
            1000,
            None,
            CPU,
        )
    ]


def main() -> bool:
    orders = _data.orders_event(1000)
    orders_items = _data.orders_items(1000)
    tiny = _data.tiny_event(1000)
    large = _data.large_event(10)
    cases = [
        *deserialize_cases("orders batch (1000)", orders, targets=True),
        *deserialize_cases("orders, collector on", orders, targets=False, collector=True),
        Case(
            "deserialize orders, cold number table",
            streamkit_cold_deserializer(orders),
            boto3_deserializer(orders),
            "boto3 TypeDeserializer",
            1000,
            None,
            CPU,
        ),
        Case(
            "parse_event + keys/new/old, orders (1000)",
            streamkit_records(orders),
            powertools_deserializer(orders),
            "Powertools StreamEvent",
            1000,
            None,
            CPU,
        ),
        Case(
            "deserialize orders, numbers='native'",
            streamkit_deserializer(orders, numbers="native"),
            boto3_deserializer(orders),
            "boto3 TypeDeserializer",
            1000,
            None,
            CPU,
        ),
        *compiled_walker_case(orders),
        serialize_case("orders items (1000)", orders_items, target=SERIALIZE_TARGET),
        *deserialize_cases("tiny batch (1000)", tiny, targets=False),
        serialize_case("tiny items (1000)", _data.tiny_items(1000), target=None),
        *deserialize_cases("large batch (10 x ~100 KB)", large, targets=False),
        serialize_case("large items (10 x ~100 KB)", _data.large_items(10), target=None),
    ]
    return run_cases("codec: streamkit.deserialize / serialize", cases)


if __name__ == "__main__":
    main()
