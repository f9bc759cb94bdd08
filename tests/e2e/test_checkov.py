"""checkov finds nothing in terraform/ (every skip is inline, with its reason).

checkov lives in its own virtualenv (.venv-checkov, created by scripts/checkov.sh on first
use; that takes about a minute). If it cannot be installed, CI fails; elsewhere the test
skips, loudly.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.helpers.terraform import REPO, unavailable

SCRIPT = REPO / "scripts" / "checkov.sh"

pytestmark = pytest.mark.timeout(900)


def test_checkov_passes_with_only_justified_skips() -> None:
    env = {**os.environ, "CHECKOV_INSTALL_ONLY": "1"}
    install = subprocess.run(
        [str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    if install.returncode != 0:
        unavailable(f"checkov could not be installed:\n{install.stderr[-3000:]}")
    scan = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=600, check=False)
    assert scan.returncode == 0, f"checkov findings:\n{scan.stdout[-8000:]}\n{scan.stderr[-2000:]}"
    assert "Failed checks: 0" in scan.stdout, scan.stdout[-4000:]
