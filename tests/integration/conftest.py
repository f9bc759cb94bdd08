"""Tests under tests/integration talk to an AWS endpoint over real HTTP.

Every test here gets the ``integration`` marker. The endpoint fixtures (``endpoint_url``,
``aws``, ``unique_name``, ``emulator``, ``embedded_emulator``, ``region``) live in
tests/conftest.py so the e2e suite shares the same session emulator.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import AwsClients
from tests.helpers.runner_scenario import Scenario, scenarios

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture
def scenario(
    aws: AwsClients, endpoint_url: str, unique_name: Callable[[str], str], tmp_path: Path
) -> Iterator[Callable[..., Scenario]]:
    """``scenario(view_type=..., timeout=..., **env)`` makes a runner scenario (see
    tests/helpers/runner_scenario.py); its runners and mappings are cleaned up afterwards."""
    with scenarios(aws, endpoint_url, unique_name, tmp_path) as make:
        yield make
