"""Run the fault scenarios and write their accounting table into RELIABILITY.md.

    python scripts/chaos.py                  # every scenario once, on a fresh embedded emulator
    python scripts/chaos.py --repeat 3       # each scenario three times
    python scripts/chaos.py --no-write       # print only

Scenarios and the accounting are in tests/reliability/scenarios.py (tests/reliability runs the
same ones in CI). Exit status 1 when a scenario does not balance.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REPORT = ROOT / "RELIABILITY.md"
BEGIN, END = "<!-- chaos:begin -->", "<!-- chaos:end -->"

for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}.items():
    os.environ.setdefault(_name, _value)


def main() -> int:
    import logging

    from tests.helpers import AwsClients
    from tests.reliability.scenarios import HEADER, SCENARIOS, run_scenario, scenario_factory

    from streamkit.local.emulator import Emulator
    from streamkit.local.faults import FaultsClient

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", default=None, help="scenario names containing this text")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    rows: list[str] = []
    balanced = True
    with Emulator() as emulator, tempfile.TemporaryDirectory() as state:
        aws = AwsClients(emulator.endpoint_url)
        faults = FaultsClient(emulator.endpoint_url)
        make, made = scenario_factory(aws, emulator.endpoint_url, Path(state))

        for name in SCENARIOS:
            if args.only and args.only not in name:
                continue
            for _ in range(args.repeat):
                started = time.perf_counter()
                try:
                    accounting = run_scenario(name, make, faults)
                finally:
                    with contextlib.suppress(Exception):
                        for runner in made[-1].runners:
                            runner.stop()
                balanced &= accounting.balanced
                rows.append(accounting.row())
                print(f"{accounting.row()}  ({time.perf_counter() - started:.0f} s)", flush=True)
    body = "\n".join(
        [
            f"Command: `python scripts/chaos.py{f' --repeat {args.repeat}' if args.repeat > 1 else ''}`"
            f" ({time.strftime('%Y-%m-%d')}), embedded emulator, in-process Runner, "
            "BatchSize 10, MaximumRetryAttempts 1, BisectBatchOnFunctionError, SQS on-failure "
            "destination. CI runs the same scenarios: `pytest tests/reliability`.",
            "",
            HEADER,
            *rows,
        ]
    )
    print(body)
    if not args.no_write:
        _write_section(body)
    return 0 if balanced else 1


def _write_section(body: str) -> None:
    text = REPORT.read_text() if REPORT.exists() else "# Reliability\n"
    section = f"{BEGIN}\n{body}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## Fault scenarios\n\n" + section + "\n"
    REPORT.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
