"""The console's JSON API over HTTP, on a real Runner and the embedded emulator.

One pipeline for the module (tests/helpers/console_pipeline.py): three mappings over two
tables; ``work`` fails on a poison record and sends it to an SQS on-failure destination.
Tests run in file order where they build on each other (poison -> replay).
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import AwsClients
from tests.helpers.console_pipeline import SECRET, ConsolePipeline, console_pipeline, http_json
from tests.helpers.streamkit_zip import wait_for

_saved: dict[str, str] = {}

REQUIRED = {
    "uuid",
    "function_name",
    "event_source_arn",
    "state",
    "iterator_age_ms",
    "invocations",
    "errors",
    "records_per_s",
}


@pytest.fixture(scope="module")
def pipeline(
    _session_clients: AwsClients, endpoint_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsolePipeline]:
    with console_pipeline(
        _session_clients, endpoint_url, tmp_path_factory.mktemp("console")
    ) as running:
        yield running


def _get(pipeline: ConsolePipeline, path: str) -> Any:
    status, body, _ = http_json(pipeline.url + path)
    assert status == 200, body
    return body


def _entry(pipeline: ConsolePipeline, mapping_uuid: str) -> dict[str, Any]:
    return next(m for m in _get(pipeline, "/api/mappings") if m["uuid"] == mapping_uuid)


def test_the_console_binds_loopback_and_lists_every_mapping(pipeline: ConsolePipeline) -> None:
    assert pipeline.url.startswith("http://127.0.0.1:")
    mappings = _get(pipeline, "/api/mappings")
    assert isinstance(mappings, list)
    assert {m["uuid"] for m in mappings} == set(pipeline.mapping_uuids)
    for m in mappings:
        assert set(m) >= REQUIRED, m
        assert m["state"] == "polling"
    work = _entry(pipeline, pipeline.work_uuid)
    assert work["function_name"] == pipeline.work_arn.rsplit(":", 1)[-1]
    assert work["event_source_arn"].split("/")[1] == pipeline.orders


def test_figures_follow_the_writes(pipeline: ConsolePipeline) -> None:
    payments_uuid = pipeline.mapping_uuids[2]
    before = _entry(pipeline, payments_uuid)["invocations"]
    for i in range(20):
        pipeline.put(pipeline.payments, f"pay-{i}")
    seen: list[dict[str, Any]] = []

    def moved_on() -> dict[str, Any] | None:
        entry = _entry(pipeline, payments_uuid)
        seen.append(entry)
        if entry["invocations"] <= before or entry["records_per_s"] <= 0:
            return None
        # The 20 writes may arrive over more than one GetRecords (the first invoke can come
        # before the last records are polled), and the history samples once a second, so an
        # invoke shows in the age histogram only from the next sample on: wait for both.
        detail = _get(pipeline, f"/api/mappings/{payments_uuid}")
        ages_seen = sum(b["count"] for b in detail["iterator_age_histogram"])
        return entry if detail["counters"]["polled"] >= 20 and ages_seen >= 1 else None

    try:
        # Generous: on a loaded 2-core CI machine a cold worker start alone can take seconds;
        # what this test asserts is that the figures move, not how fast.
        moved = wait_for(moved_on, timeout=60)
    except TimeoutError:
        raise AssertionError(
            f"figures did not move: first {seen[0]}, last {seen[-1]}, "
            f"runner {pipeline.runner.stats()[payments_uuid]}"
        ) from None
    assert moved["iterator_age_ms"] is not None and moved["iterator_age_ms"] >= 0
    assert moved["errors"] == 0
    detail = _get(pipeline, f"/api/mappings/{payments_uuid}")
    assert detail["counters"]["polled"] >= 20
    assert detail["config"]["StartingPosition"] == "LATEST"
    assert sum(detail["series"]["records_per_s"]) > 0
    assert sum(b["count"] for b in detail["iterator_age_histogram"]) >= 1


def test_filter_and_pagination(pipeline: ConsolePipeline) -> None:
    only_payments = _get(pipeline, f"/api/mappings?q={pipeline.payments}")
    assert [m["uuid"] for m in only_payments] == [pipeline.mapping_uuids[2]]
    status, first, headers = http_json(pipeline.url + "/api/mappings?limit=2")
    assert status == 200 and len(first) == 2 and headers["X-Total-Count"] == "3"
    rest = _get(pipeline, "/api/mappings?limit=2&offset=2")
    assert len(rest) == 1
    assert {m["uuid"] for m in first + rest} == set(pipeline.mapping_uuids)
    assert _get(pipeline, "/api/mappings?state=error") == []


def test_tables_list_streams_and_their_mappings(pipeline: ConsolePipeline) -> None:
    tables = {t["table_name"]: t for t in _get(pipeline, "/api/tables")}
    assert set(tables[pipeline.orders]["mappings"]) == set(pipeline.mapping_uuids[:2])
    assert tables[pipeline.payments]["mappings"] == [pipeline.mapping_uuids[2]]
    assert tables[pipeline.orders]["stream_arn"].startswith("arn:aws:dynamodb:")


def test_live_tail_shows_a_write_within_a_second(pipeline: ConsolePipeline) -> None:
    path = f"/api/tables/{pipeline.payments}/tail"
    wait_for(lambda: _get(pipeline, path)["ready"], timeout=10, what="tail ready")
    cursor = _get(pipeline, path)["next"]
    pipeline.put(pipeline.payments, "tail-1", status="NEW")
    written = time.monotonic()
    tail = wait_for(
        lambda: _get(pipeline, f"{path}?after={cursor}")["records"], timeout=5, what="tail"
    )
    assert time.monotonic() - written < 1.0
    (record,) = tail
    assert record["keys"] == {"pk": "tail-1"} and record["event_name"] == "INSERT"
    assert "new_image" not in record and SECRET not in str(tail)
    # Images only on request, as with `streamkit tail --images`.
    with_images = f"{path}?images=1"
    wait_for(lambda: _get(pipeline, with_images)["ready"], timeout=10, what="images tail")
    pipeline.put(pipeline.payments, "tail-2")
    shown = wait_for(lambda: _get(pipeline, with_images)["records"], timeout=5, what="images")
    assert shown[-1]["new_image"]["address"] == SECRET


def test_an_unknown_table_is_a_clear_404(pipeline: ConsolePipeline) -> None:
    status, body, _ = http_json(pipeline.url + "/api/tables/no-such-table/tail")
    assert status == 404 and "no-such-table" in body["error"]


def test_a_poison_record_shows_in_failures_then_replay_after_the_fix_empties_it(
    pipeline: ConsolePipeline,
) -> None:
    uuid = pipeline.work_uuid
    pipeline.put(pipeline.orders, "poison-1", poison="yes")
    failures = wait_for(
        lambda: _get(pipeline, f"/api/mappings/{uuid}/failures")["failures"],
        timeout=30,
        what="failure record",
    )
    (failure,) = failures
    assert failure["condition"] == "RetryAttemptsExhausted"
    assert failure["function_error"] == "Unhandled"
    assert [r["keys"] for r in failure["records"]] == [{"pk": "poison-1"}]
    assert SECRET not in str(failures)
    by_condition = _get(pipeline, f"/api/mappings/{uuid}/failures")["by_condition"]
    assert by_condition == {"RetryAttemptsExhausted": 1}
    entry = _entry(pipeline, uuid)
    assert entry["errors"] >= 1 and "poison record" in (entry["last_error"] or "")
    (destination,) = [d for d in _get(pipeline, "/api/destinations") if d["mapping_uuid"] == uuid]
    assert destination["visible"] == 1 and destination["kind"] == "sqs"

    # Replay changes the queue: it needs an explicit confirmation, and JSON.
    replay = f"{pipeline.url}/api/destinations/{uuid}/replay"
    status, body, _ = http_json(replay, method="POST", body={"all": True})
    assert status == 400 and "confirm" in body["error"]
    status, body, _ = http_json(replay, method="POST", body={"confirm": True, "message_id": "x"})
    assert status == 404

    # Keep a copy of the real failure record for the "replay all" test.
    raw = pipeline.aws.sqs.receive_message(QueueUrl=pipeline.dlq_url, VisibilityTimeout=0)
    _saved["failure_body"] = raw["Messages"][0]["Body"]

    # Still broken: the replay fails and the message stays.
    status, body, _ = http_json(
        replay, method="POST", body={"confirm": True, "message_id": failure["message_id"]}
    )
    assert status == 200 and body["ok"] is False and body["status"] == "failed", body
    assert "poison record" in body["detail"]
    assert pipeline.dlq_visible() == 1

    pipeline.fix()
    status, body, _ = http_json(
        replay, method="POST", body={"confirm": True, "message_id": failure["message_id"]}
    )
    assert status == 200 and body["ok"] is True and body["records"] == 1, body
    assert pipeline.dlq_visible() == 0
    assert _get(pipeline, f"/api/mappings/{uuid}/failures")["failures"] == []


def test_replay_all_runs_dlq_replay(pipeline: ConsolePipeline) -> None:
    """A copy of the real failure record, put back in the queue, is replayed by "replay all"
    (``streamkit dlq replay``), whose report lines come back."""
    uuid = pipeline.work_uuid
    pipeline.aws.sqs.send_message(QueueUrl=pipeline.dlq_url, MessageBody=_saved["failure_body"])
    wait_for(lambda: pipeline.dlq_visible() == 1, timeout=10, what="message back in the queue")
    status, body, _ = http_json(
        f"{pipeline.url}/api/destinations/{uuid}/replay",
        method="POST",
        body={"confirm": True, "all": True},
    )
    assert status == 200 and body["ok"] is True, body
    assert body["log"][-1].startswith("1 batch replayed, 0 kept"), body
    assert any("replayed 1 record" in line for line in body["log"]), body
    assert pipeline.dlq_visible() == 0


def test_requests_from_other_hosts_and_non_json_changes_are_refused(
    pipeline: ConsolePipeline,
) -> None:
    status, body, _ = http_json(pipeline.url + "/api/mappings", headers={"Host": "evil.example:80"})
    assert status == 403
    status, body, _ = http_json(
        f"{pipeline.url}/api/destinations/{pipeline.work_uuid}/replay",
        method="POST",
        body={"confirm": True, "all": True},
        headers={"Content-Type": "text/plain"},
    )
    assert status == 415
    status, body, _ = http_json(
        f"{pipeline.url}/api/destinations/{pipeline.work_uuid}/replay",
        method="POST",
        body={"confirm": True, "padding": "x" * 100_000},
    )
    assert status == 413
    status, body, _ = http_json(pipeline.url + "/api/mappings/not-a-mapping")
    assert status == 404 and "not-a-mapping" in body["error"]


def test_the_faults_page_relays_the_emulators_rules(pipeline: ConsolePipeline) -> None:
    # The embedded emulator has fault injection, so the console shows the Faults page and
    # relays to /_streamkit/faults (hiding it for other endpoints: tests/unit).
    assert _get(pipeline, "/api/health")["faults"] is True
    assert 'href="/faults"' in _page(pipeline.url + "/")
    rule = {
        "service": "sqs",
        "operation": "SendMessage",
        "resource": "no-queue-has-this-name",  # fires for nothing the pipeline does
        "error": "ThrottlingException",
        "count": 1,
    }
    status, added, _ = http_json(pipeline.url + "/api/faults", method="POST", body=rule)
    assert status == 200, added
    rule_id = added["rule"]["id"]
    status, listed, _ = http_json(pipeline.url + "/api/faults")
    assert status == 200 and rule_id in [r["id"] for r in listed["rules"]]
    assert rule_id in _page(pipeline.url + "/faults")
    status, cleared, _ = http_json(
        pipeline.url + f"/api/faults/{rule_id}", method="DELETE", body={}
    )  # a JSON content type, as the console requires of every change
    assert status == 200 and cleared["removed"] == 1
    _, listed, _ = http_json(pipeline.url + "/api/faults")
    assert rule_id not in [r["id"] for r in listed["rules"]]


def test_pages_render(pipeline: ConsolePipeline) -> None:
    for path in (
        "/",
        f"/mappings/{pipeline.work_uuid}",
        f"/tables/{pipeline.orders}",
        "/destinations",
        f"/destinations/{pipeline.work_uuid}",
        "/static/uPlot.iife.min.js",
        "/static/console.js",
    ):
        assert _page(pipeline.url + path), path
    overview = _page(pipeline.url + "/")
    for mapping_uuid in pipeline.mapping_uuids:
        assert f'data-uuid="{mapping_uuid}"' in overview


def _page(url: str) -> str:
    """The body of a 200 response, as text."""
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
        text: str = response.read().decode()
        return text
