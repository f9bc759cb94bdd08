"""Fuzz streamkit's input handling and write the counts into RELIABILITY.md.

    python scripts/fuzz.py                      # 2,000 hypothesis cases per target
    python scripts/fuzz.py --cases 20000        # longer
    python scripts/fuzz.py --atheris-runs 20000 # also coverage-guided atheris, if installed

Targets and their contracts are in tests/fuzz/targets.py (the same checks CI runs on a few
cases per target in tests/fuzz/test_fuzz.py). Every case must end in the documented result or
the documented error; a case that does not is counted as "contract broken" with its input, and
the exit status is 1. The table goes between the ``fuzz`` markers of RELIABILITY.md.

atheris (libFuzzer for Python, ``pip install atheris``) feeds coverage-guided bytes, read as
JSON where the target takes an object, to the same checks; it is optional.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings

from _reliability_doc import today, write_section

if TYPE_CHECKING:
    from tests.fuzz.targets import Target


def run_hypothesis(target: Target, cases: int) -> tuple[Counter[str], list[str], float]:
    outcomes: Counter[str] = Counter()
    broken: list[str] = []
    started = time.perf_counter()

    @settings(
        max_examples=cases,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy)
    def run(case: Any) -> None:
        try:
            outcomes[target.check(case)] += 1
        except Exception as exc:  # a broken contract or an undocumented exception: record it
            outcomes["contract broken"] += 1
            if len(broken) < 5:
                broken.append(f"{type(exc).__name__}: {exc!s:.300} <- {case!r:.300}")

    run()
    return outcomes, broken, time.perf_counter() - started


# atheris: bytes -> the target's input type.
def _json_or_text(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")


ATHERIS_INPUTS: dict[str, Any] = {
    "codec.deserialize": _json_or_text,
    "parse_event": _json_or_text,
    "judge_response": lambda data: (data, ["1", "2", "3"], False),
    "process_batch": lambda data: (_json_or_text(data), frozenset({1}), "per_key"),
    "filters": lambda data: (
        data.decode("utf-8", "replace"),
        {"eventName": "INSERT", "dynamodb": {"NewImage": {"status": {"S": "PAID"}}}},
        "lambda",
    ),
    "mapping_config": lambda data: {
        "EventSourceArn": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2020",
        "FunctionName": "f",
        **(lambda v: v if isinstance(v, dict) else {"BatchSize": v})(_json_or_text(data)),
    },
}


# Seeds: one valid input per target, so libFuzzer mutates from the interesting side of each
# parser instead of from random bytes that are rarely JSON.
_RECORD = {
    "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
    "awsRegion": "us-east-1", "eventSourceARN": "arn:aws:dynamodb:us-east-1:1:table/t/stream/x",
    "dynamodb": {"ApproximateCreationDateTime": 1700000000, "Keys": {"pk": {"S": "a"}},
                 "NewImage": {"pk": {"S": "a"}, "n": {"N": "1.5"}, "b": {"B": "YWJj"},
                              "l": {"L": [{"NULL": True}, {"BOOL": False}]}, "m": {"M": {}},
                              "ss": {"SS": ["x"]}, "ns": {"NS": ["1"]}},
                 "SequenceNumber": "100", "SizeBytes": 10, "StreamViewType": "NEW_IMAGE"},
}  # fmt: skip
ATHERIS_SEEDS: dict[str, list[bytes]] = {
    "codec.deserialize": [json.dumps(_RECORD["dynamodb"]["NewImage"]).encode()],  # type: ignore[index]
    "parse_event": [json.dumps({"Records": [_RECORD]}).encode()],
    "process_batch": [
        json.dumps(
            {
                "Records": [
                    _RECORD,
                    {**_RECORD, "dynamodb": {**_RECORD["dynamodb"], "SequenceNumber": "101"}},
                ]
            }
        ).encode()
    ],  # type: ignore[dict-item]
    "judge_response": [b'{"batchItemFailures": [{"itemIdentifier": "2"}]}', b"null"],
    "filters": [
        b'{"eventName": ["INSERT"], "dynamodb": {"NewImage": {"status": {"S": [{"prefix": "PA"}]}}}}'
    ],
    "mapping_config": [
        b'{"StartingPosition": "LATEST", "BatchSize": 10, "FilterCriteria": {"Filters": [{"Pattern": "{}"}]}}'
    ],
}


def run_atheris(target: Target, runs: int) -> tuple[Counter[str], list[str], float] | None:
    """Run atheris in a child process (libFuzzer exits the process when done)."""
    import subprocess

    if target.name not in ATHERIS_INPUTS:
        return None
    import tempfile

    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        counts = Path(tmp) / "counts.json"
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--atheris-child",
                target.name,
                "--atheris-runs",
                str(runs),
                "--atheris-counts",
                str(counts),
            ],
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if not counts.exists():
            return Counter({"atheris failed to run": 1}), [child.stderr[-500:]], 0.0
        result = json.loads(counts.read_text())
    return Counter(result["outcomes"]), result["broken"], time.perf_counter() - started


def atheris_child(name: str, runs: int, counts_path: str) -> None:
    import atheris

    # Coverage feedback from streamkit's code: it is imported (through the targets) under
    # atheris' import hook, and nothing else is instrumented.
    with atheris.instrument_imports(include=["streamkit"]):
        from tests.fuzz.targets import TARGETS

    counts = Path(counts_path)

    target = next(t for t in TARGETS if t.name == name)
    convert = ATHERIS_INPUTS[name]
    outcomes: Counter[str] = Counter()
    broken: list[str] = []

    def one_input(data: bytes) -> None:
        try:
            outcomes[target.check(convert(data))] += 1
        except Exception as exc:
            outcomes["contract broken"] += 1
            if len(broken) < 5:
                broken.append(f"{type(exc).__name__}: {exc!s:.300} <- {data!r:.200}")
        # libFuzzer ends the process with C's exit(): Python's atexit never runs, so the
        # counts are kept on disk as they grow.
        counts.write_text(json.dumps({"outcomes": outcomes, "broken": broken}))

    import tempfile

    corpus = Path(tempfile.mkdtemp(prefix="streamkit-fuzz-"))
    for number, seed in enumerate(ATHERIS_SEEDS.get(name, [])):
        (corpus / f"seed{number}").write_bytes(seed)
    atheris.Setup([sys.argv[0], f"-runs={runs}", "-max_len=4096", str(corpus)], one_input)
    atheris.Fuzz()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2000, help="hypothesis cases per target")
    parser.add_argument("--atheris-runs", type=int, default=0, help="atheris runs per target")
    parser.add_argument("--only", default=None, help="one target by name")
    parser.add_argument("--no-write", action="store_true", help="print; leave RELIABILITY.md")
    parser.add_argument("--atheris-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--atheris-counts", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the batch processor logs every poison record
    if args.atheris_child:
        atheris_child(args.atheris_child, args.atheris_runs, args.atheris_counts)
        return 0

    from tests.fuzz.targets import TARGETS

    rows = []
    broken_total = 0
    for target in TARGETS:
        if args.only and target.name != args.only:
            continue
        outcomes, broken, seconds = run_hypothesis(target, args.cases)
        rows.append(("hypothesis", target, outcomes, broken, seconds))
        if args.atheris_runs:
            fuzzed = run_atheris(target, args.atheris_runs)
            if fuzzed is not None:
                rows.append(("atheris", target, *fuzzed))
    lines = [
        f"Command: `python scripts/fuzz.py --cases {args.cases}"
        + (f" --atheris-runs {args.atheris_runs}" if args.atheris_runs else "")
        + f"` ({today()}, Python {platform.python_version()}).",
        "",
        "| Target | Engine | Cases | Contract broken | Outcomes | Seconds |",
        "|---|---|---:|---:|---|---:|",
    ]
    for engine, target, outcomes, broken, seconds in rows:
        total = sum(outcomes.values())
        bad = outcomes.get("contract broken", 0)
        broken_total += bad
        spread = ", ".join(
            f"{k} {v}" for k, v in sorted(outcomes.items()) if k != "contract broken"
        )
        lines.append(f"| `{target.name}` | {engine} | {total} | {bad} | {spread} | {seconds:.1f} |")
        for example in broken:
            lines.append(f"|  | | | | broken: `{example}` | |")
    lines += ["", "What each target feeds:", ""]
    lines += [f"- `{t.name}`: {t.what}." for t in TARGETS if not args.only or t.name == args.only]
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        write_section("fuzz", table, "Bad input, with counts")
    return 1 if broken_total else 0


if __name__ == "__main__":
    sys.exit(main())
