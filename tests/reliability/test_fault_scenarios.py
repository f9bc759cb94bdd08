"""Fault scenarios through the local runtime, each balancing its accounting (CI subset;
``scripts/chaos.py`` runs them all and writes the table into RELIABILITY.md)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streamkit.local.emulator import Emulator
from streamkit.local.faults import FaultsClient
from tests.helpers.runner_scenario import Scenario
from tests.reliability.scenarios import SCENARIOS, run_scenario


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_balances(
    name: str,
    scenario: Callable[..., Scenario],
    embedded_emulator: Emulator,
) -> None:
    accounting = run_scenario(name, scenario, FaultsClient(embedded_emulator.endpoint_url))
    assert accounting.written > 0
    assert accounting.missing == [], accounting
    assert accounting.unexpected_duplicates == 0, accounting
    assert accounting.order_violations == 0, accounting
    assert accounting.processed_once + accounting.in_dlq == accounting.written, accounting
    if "poison" in name or "destination" in name:
        assert accounting.in_dlq >= 1, accounting
    if accounting.faults_added:
        assert accounting.faults_fired > 0, accounting  # the fault did happen
