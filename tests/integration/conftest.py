"""Tests under tests/integration talk to an AWS endpoint over real HTTP.

Every test here gets the ``integration`` marker. The endpoint fixtures (``endpoint_url``,
``aws``, ``unique_name``, ``emulator``, ``embedded_emulator``, ``region``) live in
tests/conftest.py so the e2e suite shares the same session emulator.
"""

from __future__ import annotations

from pathlib import Path

import pytest

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.integration)
