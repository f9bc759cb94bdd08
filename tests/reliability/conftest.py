"""The fault suite builds its pipelines with the integration suite's runner scenario."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.helpers import AwsClients
from tests.helpers.runner_scenario import Scenario, scenarios


@pytest.fixture
def scenario(
    aws: AwsClients, endpoint_url: str, unique_name: Callable[[str], str], tmp_path: Path
) -> Iterator[Callable[..., Scenario]]:
    """``scenario(**env)``: a stream table, a recorder queue and a function (see
    tests/helpers/runner_scenario.py); runners and mappings are cleaned up afterwards."""
    with scenarios(aws, endpoint_url, unique_name, tmp_path) as make:
        yield make
