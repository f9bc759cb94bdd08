"""The console's pure parts: the bind address, the runner adapter, the history's rates and
histogram, and the fault relay (against a small HTTP stand-in: the emulator's admin endpoint
is still being built, and only its JSON shape matters here)."""

from __future__ import annotations

import enum
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from streamkit.console import ConsoleBindError, parse_bind
from streamkit.console.faults import Faults
from streamkit.console.history import History
from streamkit.console.runner_view import RunnerView


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8080", ("127.0.0.1", 8080)),
        ("0", ("127.0.0.1", 0)),
        ("0.0.0.0:9000", ("0.0.0.0", 9000)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:8080", ("::1", 8080)),
        (":7000", ("127.0.0.1", 7000)),
    ],
)
def test_parse_bind(text: str, expected: tuple[str, int]) -> None:
    assert parse_bind(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "127.0.0.1:http", "70000", "-1"])
def test_parse_bind_rejects_bad_input_clearly(text: str) -> None:
    with pytest.raises(ConsoleBindError, match="console"):
        parse_bind(text)


class _State(enum.Enum):
    POLLING = "polling"


class _FakeRunner:
    """Speaks the runner's read interface (stats(), list_mappings()) with set figures."""

    endpoint_url = "http://127.0.0.1:1"
    region = "us-east-1"
    state_dir = Path(".")

    def __init__(self) -> None:
        self.snapshot: dict[str, dict[Any, Any]] = {}

    def stats(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self.snapshot.items()}

    def list_mappings(self) -> list[dict[str, Any]]:
        raise ConnectionError("endpoint down")

    def client(self, service: str) -> Any:
        raise AssertionError("not used")


def _snapshot(**counters: Any) -> dict[Any, Any]:
    return {
        "uuid": "u-1",
        "function_arn": "arn:aws:lambda:us-east-1:1:function:work:live",
        "event_source_arn": "arn:aws:dynamodb:us-east-1:1:table/orders/stream/2024",
        "state": "polling",
        "iterator_age_ms": 12.0,
        "last_error": None,
        "shards_running": 2,
        **counters,
    }


def test_the_view_reads_enum_states_and_missing_counters() -> None:
    runner = _FakeRunner()
    runner.snapshot["u-1"] = {**_snapshot(polled=5), "state": _State.POLLING}
    runner.snapshot["u-2"] = {**_snapshot(), "uuid": "u-2", "state": "deleted"}
    (figures,) = RunnerView(runner).figures()
    assert figures.state == "polling"
    assert figures.counters["polled"] == 5 and figures.counters["failed"] == 0
    assert figures.function_name == "work" and figures.table_name == "orders"
    assert figures.lanes == 2
    assert RunnerView(runner).configurations() == {}  # endpoint down: nothing, no raise


def test_history_rates_series_and_histogram() -> None:
    runner = _FakeRunner()
    now = [1000.0]
    history = History(RunnerView(runner), rate_window_s=5.0, clock=lambda: now[0])
    for second, (polled, invoked, age) in enumerate(
        [(0, 0, 12.0), (10, 1, 40.0), (30, 3, 300.0), (30, 3, 300.0)]
    ):
        now[0] = 1000.0 + second
        runner.snapshot["u-1"] = _snapshot(polled=polled, invoked=invoked, iterator_age_ms=age)
        history.sample()
    assert history.rate("u-1", "polled") == pytest.approx(10.0)  # 30 records in 3 s
    series = history.series("u-1")
    assert series["records_per_s"] == [10.0, 20.0, 0.0]
    assert series["records_per_invoke"] == [10.0, 10.0, None]
    assert series["iterator_age_ms"] == [40.0, 300.0, None]  # no invoke: no age sample
    buckets = {b["le_ms"]: b["count"] for b in history.age_histogram("u-1")}
    assert buckets[50] == 1 and buckets[500] == 1 and sum(buckets.values()) == 2


class _FaultsStandIn(BaseHTTPRequestHandler):
    rules: list[dict[str, Any]] = []

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send(200, {"rules": self.rules})

    def do_POST(self) -> None:
        rule = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if "service" not in rule:
            self._send(400, {"error": "service is required"})
            return
        self.rules.append({"id": str(len(self.rules) + 1), **rule})
        self._send(200, self.rules[-1])

    def do_DELETE(self) -> None:
        self.rules.clear()
        self._send(200, {"cleared": True})

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def faults_endpoint() -> Iterator[str]:
    _FaultsStandIn.rules = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FaultsStandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_faults_relay_lists_adds_and_clears(faults_endpoint: str) -> None:
    faults = Faults(faults_endpoint)
    assert faults.available()
    added = faults.add({"service": "dynamodb", "error": "ThrottlingException"})
    assert added["id"] == "1"
    assert faults.rules() == {"rules": [added]}
    with pytest.raises(ValueError, match="service is required"):
        faults.add({"error": "x"})
    with pytest.raises(ValueError, match="JSON object"):
        faults.add(["not", "a", "rule"])
    faults.clear()
    assert faults.rules() == {"rules": []}


def test_faults_are_unavailable_without_the_endpoint() -> None:
    assert not Faults("http://127.0.0.1:9", timeout_s=0.5).available()


def test_the_faults_page_appears_when_the_endpoint_has_fault_injection(
    faults_endpoint: str,
) -> None:
    import urllib.request

    from streamkit.console import Console

    runner = _FakeRunner()
    runner.endpoint_url = faults_endpoint
    runner.snapshot["u-1"] = _snapshot()
    with Console(runner, "127.0.0.1:0") as console:
        request = urllib.request.Request(
            console.url + "api/faults",
            data=json.dumps({"service": "sqs", "error": "InternalServerError"}).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert json.loads(response.read())["service"] == "sqs"
        with urllib.request.urlopen(console.url + "faults", timeout=10) as response:
            page = response.read().decode()
        assert 'href="/faults"' in page and "InternalServerError" in page
        with urllib.request.urlopen(console.url + "api/health", timeout=10) as response:
            assert json.loads(response.read())["faults"] is True


def test_a_mapping_first_seen_after_the_first_round_starts_from_zero() -> None:
    """Its counters were created at zero since the last round: a burst it handled before the
    console's first look still shows as a rate."""
    runner = _FakeRunner()
    now = [1000.0]
    history = History(RunnerView(runner), rate_window_s=5.0, clock=lambda: now[0])
    history.sample()  # no mappings yet
    now[0] = 1001.0
    runner.snapshot["u-1"] = _snapshot(polled=20, invoked=2)
    history.sample()
    assert history.rate("u-1", "polled") == pytest.approx(20.0)
    # Mappings present at the console's first round have no such baseline.
    late = History(RunnerView(runner), clock=lambda: now[0])
    late.sample()
    assert late.rate("u-1", "polled") == 0.0
