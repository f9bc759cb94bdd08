"""Fault scenarios through the local runtime, each balancing its accounting (CI subset;
``scripts/chaos.py`` runs them all, longer, and writes the table into RELIABILITY.md)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from streamkit.local.emulator import Emulator
from streamkit.local.faults import FaultsClient
from tests.helpers.runner_scenario import Scenario
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
