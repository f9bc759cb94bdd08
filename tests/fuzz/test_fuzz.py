"""The fuzz targets under hypothesis, a fast subset for CI (``scripts/fuzz.py`` runs more).

Each target runs ``STREAMKIT_FUZZ_EXAMPLES`` cases (default 100): the contract checks are in
``targets.py``; here a broken contract is a failing example that hypothesis shrinks.

Under ``CI=true`` the cases are derandomized (the same 100 on every run): a CI run once failed
the "both sides of the contract reached" check on an unlucky draw, which says nothing about the
code under test. Random exploration is what ``scripts/fuzz.py`` (and a local run) is for.
"""

from __future__ import annotations

import os
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.fuzz.targets import TARGETS, Target

EXAMPLES = int(os.environ.get("STREAMKIT_FUZZ_EXAMPLES", "100"))
DERANDOMIZE = os.environ.get("CI", "").lower() == "true"


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_target_keeps_its_contract(target: Target) -> None:
    outcomes: Counter[str] = Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=DERANDOMIZE,
        suppress_health_check=list(HealthCheck),
    )
    @given(target.strategy)
    def run(case: Any) -> None:
        outcomes[target.check(case)] += 1

    run()
    # The generators reach both sides of each contract: some input accepted, some refused.
    assert len(outcomes) >= 2, outcomes
