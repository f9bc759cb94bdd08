"""Filter pattern benchmarks: streamkit's compiled patterns against moto's EventBridge matcher.

The ESM runner applies a mapping's FilterCriteria to every stream record, so what matters is
the time to judge one record with an already-compiled pattern. Records are the orders batch
(``tests.helpers.stream_data.orders_event(1000)``: realistic orders, INSERT/MODIFY/REMOVE mixed, images
in DynamoDB JSON), round-tripped through JSON once (untimed) as the runner would receive them.

Anchors:

- moto's ``EventPattern.matches_event`` (moto.events.models), the matcher the embedded
  emulator would otherwise offer. Target: streamkit at least 10x faster.
- a hand-written Python predicate doing the same test with plain dict lookups: the floor for
  any generic engine (informational; the ratio shows the engine's overhead).

Before timing, each case checks that every engine gives the same answer for every record.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.events.models import EventPattern
from tests.helpers import stream_data as _data

from benchmarks import Case, run_cases
from streamkit.filters import FilterCriteria, FilterPattern

RECORDS = 1000
MOTO_TARGET = 10.0

Record = dict[str, Any]


def _image_value(record: Record, image: str, name: str, kind: str) -> Any:
    return record["dynamodb"].get(image, {}).get(name, {}).get(kind)


# (name, pattern, hand-written equivalent, whether moto supports it)
PATTERNS: list[tuple[str, dict[str, Any], Callable[[Record], bool], bool]] = [
    (
        "eventName + NewImage.status",
        {"eventName": ["INSERT", "MODIFY"], "dynamodb": {"NewImage": {"status": {"S": ["PAID"]}}}},
        lambda r: (
            r["eventName"] in ("INSERT", "MODIFY")
            and _image_value(r, "NewImage", "status", "S") == "PAID"
        ),
        True,
    ),
    (
        "MODIFY with anything-but on OldImage",
        {
            "eventName": ["MODIFY"],
            "dynamodb": {
                "NewImage": {"status": {"S": ["SHIPPED"]}},
                "OldImage": {"status": {"S": [{"anything-but": ["SHIPPED"]}]}},
            },
        },
        lambda r: (
            r["eventName"] == "MODIFY"
            and _image_value(r, "NewImage", "status", "S") == "SHIPPED"
            and _image_value(r, "OldImage", "status", "S") not in (None, "SHIPPED")
        ),
        True,
    ),
    (
        "$or: prefix / BOOL / numeric",
        {
            "$or": [
                {"dynamodb": {"NewImage": {"channel": {"S": [{"prefix": "i"}]}}}},
                {"dynamodb": {"OldImage": {"gift": {"BOOL": [True]}}}},
                {"dynamodb": {"SizeBytes": [{"numeric": [">", 4000]}]}},
            ]
        },
        lambda r: (
            str(_image_value(r, "NewImage", "channel", "S") or "").startswith("i")
            or _image_value(r, "OldImage", "gift", "BOOL") is True
            or r["dynamodb"]["SizeBytes"] > 4000
        ),
        True,
    ),
    (
        "array of maps: order line sku prefix",
        {"dynamodb": {"NewImage": {"lines": {"L": {"M": {"sku": {"S": [{"prefix": "SKU-1"}]}}}}}}},
        lambda r: any(
            line["M"]["sku"]["S"].startswith("SKU-1")
            for line in (_image_value(r, "NewImage", "lines", "L") or [])
        ),
        False,  # moto does not descend into arrays of objects
    ),
]


def lambda_records(n: int = RECORDS) -> list[Record]:
    records: list[Record] = json.loads(json.dumps(_data.orders_event(n)))["Records"]
    return records


def _loop(predicate: Callable[[Record], Any], records: list[Record]) -> Callable[[], int]:
    def run() -> int:
        return sum(1 for record in records if predicate(record))

    return run


def cases(records: list[Record]) -> list[Case]:
    result = []
    for name, pattern, hand_written, moto_supports in PATTERNS:
        text = json.dumps(pattern)
        ours = FilterCriteria.from_api({"Filters": [{"Pattern": text}]}).matches
        answers = [ours(r) for r in records]
        if answers != [bool(hand_written(r)) for r in records]:
            raise AssertionError(f"{name}: streamkit and the hand-written predicate disagree")
        if not 0 < sum(answers) < len(records):
            raise AssertionError(f"{name}: matches {sum(answers)} of {len(records)} records")
        if moto_supports:
            moto = EventPattern.load(text).matches_event
            if answers != [moto(r) for r in records]:
                raise AssertionError(f"{name}: streamkit and moto disagree")
            anchor = _loop(moto, records)
            result.append(
                Case(
                    name,
                    _loop(ours, records),
                    anchor,
                    "moto EventPattern",
                    len(records),
                    MOTO_TARGET,
                )
            )
        floor = _loop(hand_written, records)
        result.append(
            Case(name, _loop(ours, records), floor, "hand-written predicate", len(records), None)
        )
    return result


def compile_case() -> Case:
    """Compiling (validating) a pattern, e.g. at CreateEventSourceMapping time."""
    texts = [json.dumps(pattern) for _, pattern, _, _ in PATTERNS]

    def ours() -> None:
        for text in texts:
            FilterPattern.parse(text)

    def theirs() -> None:
        for text in texts:
            EventPattern.load(text)

    return Case("compile a pattern", ours, theirs, "moto EventPattern.load", len(texts), None)


def main() -> bool:
    records = lambda_records()
    return run_cases(
        f"Filter patterns: {len(records)} order records, per record",
        [*cases(records), compile_case()],
        seconds=2.0,
    )


if __name__ == "__main__":
    main()
