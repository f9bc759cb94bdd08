"""The soak's CI version: 60 s at a steady rate through the local runtime (scripts/soak.py).

RSS and open descriptors of the emulator, the runner and its workers stay flat, median latency
does not drift, and every write is processed; the script's exit status says all of that.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_sixty_second_soak_stays_flat(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "soak.py"), "--seconds", "60", "--rate", "10",
         "--no-write", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=400, check=False,
    )  # fmt: skip
    report = json.loads((tmp_path / "soak.json").read_text())
    assert report["written"] >= 300  # 10 writes/s is best effort on a loaded machine
    assert report["processed"] == report["written"], (report["runner_stats"], result.stdout)
    assert report["verdict"]["flat"], report["verdict"]
    assert (tmp_path / "soak.png").stat().st_size > 0
    assert result.returncode == 0, result.stdout + result.stderr[-3000:]
