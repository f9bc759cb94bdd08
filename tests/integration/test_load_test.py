"""The main job (`make demo` = scripts/load_test.py) runs end to end on the embedded default.

A small run (a second of steady writes and a short burst) as a subprocess, exactly as a user
starts it; the report must account for every write and carry the latency figures and plot.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(240)
def test_load_test_accounts_for_every_write(tmp_path: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "load_test.py"),
            "--rate",
            "40",
            "--seconds",
            "1",
            "--burst",
            "60",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=220,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((out / "load_test.json").read_text())
    phases = {phase["phase"]: phase for phase in report["phases"]}
    assert phases["steady"]["writes"] == phases["steady"]["handled"] == 40
    assert phases["burst"]["writes"] == phases["burst"]["handled"] == 60
    for phase in phases.values():
        latency = phase["latency_ms"]
        assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"] <= latency["max"]
    assert report["runner"]["succeeded"] == 100
    assert report["runner"]["failed"] == 0
    assert (out / "load_test.png").stat().st_size > 10_000
    assert "p50" in done.stdout
