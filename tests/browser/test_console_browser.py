"""The console in a real headless Chromium, against a running pipeline (real Runner, embedded
emulator; tests/helpers/console_pipeline.py). In file order: the overview lists every mapping;
the live tail shows a write within a second; a poison record shows in the mapping's failures
and on the destination page; a replay after fixing the handler empties it.
Each page is saved as a screenshot in test-artifacts/console/."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from tests.helpers import AwsClients
from tests.helpers.console_pipeline import SECRET, ConsolePipeline, console_pipeline


@pytest.fixture(scope="module")
def pipeline(
    _session_clients: AwsClients, endpoint_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsolePipeline]:
    with console_pipeline(
        _session_clients, endpoint_url, tmp_path_factory.mktemp("console-browser")
    ) as running:
        yield running


def _wait(driver: Any, condition: Callable[[Any], Any], timeout: float = 15.0) -> Any:
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition)


def _failure_rows(driver: Any) -> list[str]:
    """The failure rows' text once the page's script has drawn them (read in one script call,
    so a redraw between finding and reading a row cannot get in the way)."""
    _wait(driver, lambda d: d.find_element(By.ID, "failures").get_attribute("data-signature"))
    rows: list[str] = driver.execute_script(
        "return Array.from(document.querySelectorAll('#failures tr.failure'), r => r.innerText)"
    )
    return rows


def _text(driver: Any, css: str) -> str:
    text: str = driver.find_element(By.CSS_SELECTOR, css).text
    return text


def test_overview_lists_every_mapping(
    browser: Any, pipeline: ConsolePipeline, screenshot: Any
) -> None:
    for i in range(10):
        pipeline.put(pipeline.payments, f"warm-{i}")
    browser.get(pipeline.url + "/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#mappings tr[data-uuid]")
    assert {r.get_attribute("data-uuid") for r in rows} == set(pipeline.mapping_uuids)
    # Live: the payments mapping's invocations rise on the page without a reload.
    payments = pipeline.mapping_uuids[2]
    _wait(
        browser,
        lambda d: int(_text(d, f'tr[data-uuid="{payments}"] [data-f="invocations"]')) > 0,
    )
    _wait(
        browser,
        lambda d: float(_text(d, f'tr[data-uuid="{payments}"] [data-f="records_per_s"]')) > 0,
    )
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, ".sparkline canvas"))
    assert _text(browser, f'tr[data-uuid="{payments}"] [data-f="state"]') == "polling"
    tables = _text(browser, "#tables")
    assert pipeline.orders in tables and pipeline.payments in tables
    screenshot(browser, "overview")
    # The filter keeps only the matching mapping.
    box = browser.find_element(By.ID, "filter")
    box.send_keys(pipeline.payments)
    box.submit()
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#mappings tr[data-uuid]")) == 1)
    assert "1-1 of 1" in _text(browser, "#shown")


def test_live_tail_shows_a_write_within_a_second(
    browser: Any, pipeline: ConsolePipeline, screenshot: Any
) -> None:
    browser.get(f"{pipeline.url}/tables/{pipeline.payments}")
    _wait(
        browser, lambda d: d.find_element(By.ID, "tail-status").get_attribute("data-ready") == "1"
    )
    pipeline.put(pipeline.payments, "live-1", status="NEW")
    written = time.monotonic()
    row = _wait(
        browser,
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "#tail tr.record")),
        timeout=5,
    )
    assert time.monotonic() - written < 1.0
    assert '"live-1"' in row.text and "INSERT" in row.text
    assert SECRET not in browser.page_source  # images only on request
    screenshot(browser, "stream")


def test_poison_record_shows_in_failures_and_on_the_destination_page(
    browser: Any, pipeline: ConsolePipeline, screenshot: Any
) -> None:
    pipeline.put(pipeline.orders, "poison-7", poison="yes")
    browser.get(f"{pipeline.url}/mappings/{pipeline.work_uuid}")
    (failure,) = _wait(browser, _failure_rows, timeout=30)
    assert '"poison-7"' in failure and "RetryAttemptsExhausted" in failure
    _wait(browser, lambda d: _text(d, "#by-condition") == "RetryAttemptsExhausted 1")
    _wait(browser, lambda d: "poison record" in _text(d, "#last-error"))
    _wait(browser, lambda d: int(_text(d, '#summary [data-f="errors"]')) >= 1)
    time.sleep(1.2)  # let the charts draw a second sample for the screenshot
    screenshot(browser, "mapping")

    browser.get(f"{pipeline.url}/destinations")
    assert pipeline.work_uuid[:8] in _text(browser, "#destinations")
    screenshot(browser, "destinations")
    browser.get(f"{pipeline.url}/destinations/{pipeline.work_uuid}")
    (row,) = _failure_rows(browser)
    assert '"poison-7"' in row
    assert SECRET not in browser.page_source
    screenshot(browser, "destination")


def test_replay_after_fixing_the_handler_empties_the_destination(
    browser: Any, pipeline: ConsolePipeline, screenshot: Any
) -> None:
    pipeline.fix()
    browser.get(f"{pipeline.url}/destinations/{pipeline.work_uuid}")
    # The first poll redraws the server-rendered rows once; wait for it before clicking.
    _wait(browser, lambda d: d.find_element(By.ID, "failures").get_attribute("data-signature"))
    # Cancelling the confirmation changes nothing.
    browser.find_element(By.CSS_SELECTOR, "button.replay-one").click()
    _wait(browser, expected_conditions.alert_is_present()).dismiss()
    assert pipeline.dlq_visible() == 1
    browser.find_element(By.CSS_SELECTOR, "button.replay-one").click()
    _wait(browser, expected_conditions.alert_is_present()).accept()
    _wait(browser, lambda d: d.find_element(By.ID, "replay-result").get_attribute("data-ok"), 60)
    assert browser.find_element(By.ID, "replay-result").get_attribute("data-ok") == "1", _text(
        browser, "#replay-result"
    )
    _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#failures tr.empty"))
    assert not browser.find_elements(By.CSS_SELECTOR, "#failures tr.failure")
    assert pipeline.dlq_visible() == 0
    screenshot(browser, "destination-after-replay")
