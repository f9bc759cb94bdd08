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
import sys
import tempfile
import time
import uuid
from pathlib import Path

from _reliability_doc import emulator, today, write_section


def main() -> int:
    import logging

    from tests.helpers import AwsClients
    from tests.reliability.platform_sinks import PLATFORM_SCENARIOS, run_platform_scenario
    from tests.reliability.scenarios import (
        HEADER,
        SCENARIOS,
        Context,
        run_scenario,
        scenario_factory,
    )

    from streamkit.local.faults import FaultsClient

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", default=None, help="scenario names containing this text")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    rows: list[str] = []
    notes: list[str] = []
    balanced = True
    with emulator() as emu, tempfile.TemporaryDirectory() as state:
        aws = AwsClients(emu.endpoint_url)
        faults = FaultsClient(emu.endpoint_url)
        make, made = scenario_factory(aws, emu.endpoint_url, Path(state))

        full = Context(quick=False)
        names = [n for n in [*SCENARIOS, *PLATFORM_SCENARIOS] if not args.only or args.only in n]
        for name in names:
            for _ in range(args.repeat):
                started = time.perf_counter()
                if name in PLATFORM_SCENARIOS:
                    accounting = run_platform_scenario(
                        name, aws, emu.endpoint_url, faults, Path(state) / uuid.uuid4().hex,
                        lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}",
                    )  # fmt: skip
                else:
                    try:
                        accounting = run_scenario(name, make, faults, context=full)
                    finally:
                        with contextlib.suppress(Exception):
                            for runner in made[-1].runners:
                                runner.stop()
                balanced &= accounting.balanced
                rows.append(accounting.row())
                if accounting.note:
                    notes.append(f"- {accounting.scenario}: {accounting.note}.")
                print(f"{accounting.row()}  ({time.perf_counter() - started:.0f} s)", flush=True)
    body = "\n".join(
        [
            f"Command: `python scripts/chaos.py{f' --repeat {args.repeat}' if args.repeat > 1 else ''}`"
            f" ({today()}), embedded emulator, in-process Runner, "
            "BatchSize 10, MaximumRetryAttempts 1 (the idempotent consumer: 5, with "
            "ReportBatchItemFailures), BisectBatchOnFunctionError, SQS on-failure destination; "
            "the platform rows run `handlers/order_events` with the recommended settings "
            "(MaximumRetryAttempts 10). CI runs the same scenarios, smaller (2 kills, a 3 s "
            "outage, a 100-record backlog, fewer store faults, the four sinks at once only): `pytest tests/reliability`.",
            "",
            HEADER,
            *rows,
            "",
            *notes,
        ]
    )
    print(body)
    if not args.no_write:
        write_section("chaos", body, "Fault scenarios")
    return 0 if balanced else 1


if __name__ == "__main__":
    sys.exit(main())
