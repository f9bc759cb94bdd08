"""Browser tests: the console in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver``, driven with Selenium; nothing is downloaded).

Every test here gets the ``browser`` marker. Without Chromium the tests skip with the reason,
except under ``CI=true``, where a missing browser is a failure (``.ci/run`` installs it).
Screenshots go to ``test-artifacts/console/`` (gitignored), one per page visited.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = Path(__file__).parent
ARTIFACTS = _HERE.parent.parent / "test-artifacts" / "console"

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if _HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


def _find(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """A headless Chromium WebDriver with a fresh profile."""
    chromium = _find("chromium", "chromium-browser")
    driver_path = _find("chromedriver")
    if chromium is None or driver_path is None:
        reason = (
            "needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests under CI=true: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="console-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="session")
def screenshot() -> Any:
    """``screenshot(driver, "overview")`` saves test-artifacts/console/overview.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def save(driver: Any, name: str) -> Path:
        path = ARTIFACTS / f"{name}.png"
        driver.save_screenshot(str(path))
        return path

    return save
