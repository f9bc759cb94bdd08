"""The console with hundreds of mappings: 250 disabled mappings (10 tables x 25 functions) (the runner tracks them
without running them) on the embedded emulator; the API pages through all of them, the
filter finds one, and the overview page draws one page of rows with a link to the next."""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import AwsClients, create_function, create_stream_table
from tests.helpers.console_pipeline import FIXED, http_json

COUNT = 250


@pytest.fixture(scope="module")
def many(
    _session_clients: AwsClients, endpoint_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, list[str]]]:
    from streamkit.local.esm.runner import Runner

    aws = _session_clients
    suffix = str(int(time.time() * 1000))[-8:]
    # One mapping per (stream, function), as Lambda requires: 10 tables x 25 functions.
    streams = [create_stream_table(aws.dynamodb, f"many-{suffix}-{t}") for t in range(10)]
    functions = [
        create_function(aws.lambda_, f"many-{suffix}-{f}", {"app.py": FIXED}) for f in range(25)
    ]
    uuids = [
        aws.lambda_.create_event_source_mapping(
            EventSourceArn=stream, FunctionName=function, Enabled=False,
            StartingPosition="LATEST",
        )["UUID"]
        for stream in streams
        for function in functions
    ]  # fmt: skip
    assert len(uuids) == COUNT
    ours = set(uuids)
    runner = Runner(
        endpoint_url,
        Path(tmp_path_factory.mktemp("many")),
        reconcile_interval=0.5,
        mapping_filter=lambda m: m["UUID"] in ours,
        console="127.0.0.1:0",
    )
    runner.start()
    try:
        runner.wait_until(lambda s: sum(v["state"] == "disabled" for v in s.values()) == COUNT)
        yield runner, uuids
    finally:
        runner.stop()
        for mapping_uuid in uuids:
            aws.lambda_.delete_event_source_mapping(UUID=mapping_uuid)


def test_the_api_pages_through_every_mapping(many: tuple[Any, list[str]]) -> None:
    runner, uuids = many
    base = runner.console_url.rstrip("/")
    seen: list[str] = []
    offset = 0
    while True:
        status, page, headers = http_json(f"{base}/api/mappings?limit=100&offset={offset}")
        assert status == 200 and headers["X-Total-Count"] == str(COUNT)
        if not page:
            break
        seen.extend(m["uuid"] for m in page)
        offset += len(page)
    assert sorted(seen) == sorted(uuids)
    status, found, _ = http_json(f"{base}/api/mappings?q={uuids[137]}")
    assert [m["uuid"] for m in found] == [uuids[137]] and found[0]["state"] == "disabled"


def test_the_overview_draws_one_page_with_a_link_to_the_next(many: tuple[Any, list[str]]) -> None:
    runner, _ = many
    with urllib.request.urlopen(runner.console_url + "?q=disabled", timeout=30) as response:
        html = response.read().decode()
    assert html.count('<tr data-uuid="') == 50
    assert f"1-50 of {COUNT}" in html and 'id="next"' in html
