"""``streamkit run --console [HOST:]PORT``: the command prints the console's URL at start and
serves it until stopped; a bad address is a clear usage error. On an emulator of its own, so
this runner never runs other tests' mappings."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from streamkit.cli import main


def test_a_bad_console_address_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["run", "--endpoint-url", "http://127.0.0.1:9", "--state-dir", str(tmp_path),
         "--console", "localhost:http"]
    )  # fmt: skip
    assert code == 2
    assert "--console localhost:http" in capsys.readouterr().err


def test_run_prints_the_console_url_and_serves_it(tmp_path: Path) -> None:
    from streamkit.local.emulator import Emulator

    with Emulator(port=0) as emulator:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamkit.cli", "run", "--endpoint-url",
             emulator.endpoint_url, "--state-dir", str(tmp_path), "--console", "127.0.0.1:0"],
            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            assert process.stderr is not None
            deadline = time.monotonic() + 60
            url = None
            while url is None and time.monotonic() < deadline:
                line = process.stderr.readline()
                if not line:
                    break
                found = re.search(r"streamkit console: (http://127\.0\.0\.1:\d+/)", line)
                url = found.group(1) if found else None
            assert url is not None, "no console URL printed"
            with urllib.request.urlopen(url + "api/mappings", timeout=10) as response:
                assert json.loads(response.read()) == []
            process.send_signal(signal.SIGINT)
            assert process.wait(timeout=30) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
