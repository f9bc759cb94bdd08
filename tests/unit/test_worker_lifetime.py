"""Function workers die with the process that started them, even when it is killed with
SIGKILL in the middle of an invoke: the worker and what its handler started are gone within
moments (without the parent-watch pipe they would sleep on for a minute)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.helpers.kill_runs import alive, wait_until_gone

HANDLER = """
import os, subprocess, time

def handler(event, context):
    child = subprocess.Popen(["sleep", "60"])
    with open(os.environ["PIDS_FILE"], "w") as pids:
        pids.write(f"{os.getpid()} {child.pid}\\n")
    time.sleep(60)
"""

PARENT = """
import sys
from streamkit.local.invoker import FunctionInvoker
from streamkit.local.invoker.functions import FunctionSpec, load_function_from_directory

spec = FunctionSpec(
    name="fn",
    arn="arn:aws:lambda:us-east-1:123456789012:function:fn",
    handler="app.handler",
    runtime=f"python3.{sys.version_info.minor}",
    timeout_s=120.0,
    environment={"PIDS_FILE": sys.argv[2]},
)
invoker = FunctionInvoker(
    load_function_from_directory(spec, sys.argv[1]), endpoint_url=None, region="us-east-1"
)
invoker.invoke({"Records": []})
"""


def test_workers_and_their_children_die_with_a_killed_parent(tmp_path: Path) -> None:
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    (code_dir / "app.py").write_text(textwrap.dedent(HANDLER))
    pids_file = tmp_path / "pids"
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(code_dir), str(pids_file)])
    try:
        deadline = time.monotonic() + 60
        while not pids_file.exists() or not pids_file.read_text().endswith("\n"):
            assert parent.poll() is None, "the parent ended before its invoke started"
            assert time.monotonic() < deadline, "the invoke never started"
            time.sleep(0.02)
        worker, child = (int(pid) for pid in pids_file.read_text().split())
        assert alive({worker, child}) == {worker, child}
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        assert not wait_until_gone({worker, child}, timeout=5)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
