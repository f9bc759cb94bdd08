"""Fault scenarios through the local runtime, each balancing its accounting (CI subset;
``scripts/chaos.py`` runs them all, longer, and writes the table into RELIABILITY.md)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from streamkit.local.emulator import Emulator
from streamkit.local.faults import FaultsClient
from tests.helpers import AwsClients
from tests.helpers.runner_scenario import Scenario
from tests.reliability.platform_sinks import CI_PLATFORM_SCENARIOS, run_platform_scenario
from tests.reliability.scenarios import SCENARIOS, Context, run_scenario


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_balances(
    name: str,
    scenario: Callable[..., Scenario],
    embedded_emulator: Emulator,
) -> None:
    accounting = run_scenario(
        name, scenario, FaultsClient(embedded_emulator.endpoint_url), context=Context(quick=True)
    )
    assert accounting.written > 0
    assert accounting.missing == [], accounting
    assert accounting.unexpected_duplicates == 0, accounting
    assert accounting.order_violations == 0, accounting
    assert accounting.processed_once + accounting.in_dlq == accounting.written, accounting
    if "poison" in name or "destination" in name:
        assert accounting.in_dlq >= 1, accounting
    if accounting.faults_added:
        assert accounting.faults_fired > 0, accounting  # the fault did happen
    if "side effect and idempotency marker" in name:
        # The crash fell between the effects of the batch so far and their markers: each of
        # those records ran again, and the accounting says so (allowed, not unexpected).
        assert accounting.allowed_duplicates >= 1, accounting
    if "trimmed" in name:
        assert "gap reported 1 x" in accounting.note, accounting


@pytest.mark.parametrize("name", CI_PLATFORM_SCENARIOS)
def test_platform_sink_faults_balance(
    name: str,
    aws: AwsClients,
    endpoint_url: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
    embedded_emulator: Emulator,
) -> None:
    """The platform's fan-out with its sinks failing (CI: all four at once; scripts/chaos.py
    also runs each alone): every change reaches every sink exactly once, none is lost, and a
    failing target never reruns its siblings (an email or a cache generation would double)."""
    from scripts.redis_server import PrerequisiteMissing

    try:
        accounting = run_platform_scenario(
            name, aws, endpoint_url, FaultsClient(endpoint_url), tmp_path, unique_name
        )
    except PrerequisiteMissing as exc:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI=true and {exc}", pytrace=False)
        pytest.skip(f"!!! NOT RUN: {exc} (under CI=true this is a failure)")
    assert accounting.written == 8, accounting
    assert accounting.missing == [], accounting
    assert accounting.processed_once == accounting.written, accounting  # nothing in the DLQ
    assert accounting.unexpected_duplicates == 0, accounting
    assert accounting.faults_fired > 0, accounting
    assert " 0 failed invokes" not in accounting.note, accounting  # the sinks did fail
