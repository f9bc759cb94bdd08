"""Fixtures shared by the unit tests."""

from __future__ import annotations

import pytest
from tests.helpers.fake_streams import FakeStreamsClient


@pytest.fixture
def streams() -> FakeStreamsClient:
    return FakeStreamsClient()
