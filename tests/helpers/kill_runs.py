"""Running ``streamkit run`` as a subprocess and killing it with SIGKILL: the runner command,
the runner's worker processes (read from /proc), and a function that records, per record, when
it started and ended it, in which worker of which runner (one JSON line each, appended to a
file, so nothing is lost when a worker is killed mid-write: each line is one ``write``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The function. ``RECORD_FILE``: where lines go; ``SLEEP_S``: time per record (``SLOW_S`` for
# the item ``pk=SLOW_KEY``, so its lane lags behind the others); a record whose NewImage has
# ``poison`` raises. With a tumbling window the state is the list of sequence
# numbers seen, and the final invoke writes it as a "window" line.
RECORDING_HANDLER = r"""
import json, os, time

_FILE = os.environ["RECORD_FILE"]
_SLEEP_S = float(os.environ.get("SLEEP_S", "0"))
_SLOW_KEY, _SLOW_S = os.environ.get("SLOW_KEY"), float(os.environ.get("SLOW_S", "0"))


def _line(kind, **fields):
    fields.update(e=kind, t=time.time(), pid=os.getpid(), ppid=os.getppid())
    fd = os.open(_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(fields) + "\n").encode())
    finally:
        os.close(fd)


def handler(event, context):
    records = event.get("Records", [])
    seqs = []
    for record in records:
        seq = record["dynamodb"]["SequenceNumber"]
        _line("start", seq=seq, key=record["dynamodb"]["Keys"]["pk"]["S"])
        slow = record["dynamodb"]["Keys"]["pk"]["S"] == _SLOW_KEY
        time.sleep(_SLOW_S if slow else _SLEEP_S)
        if "poison" in record["dynamodb"].get("NewImage", {}):
            _line("end", seq=seq, failed=True)
            raise RuntimeError("poison record")
        _line("end", seq=seq)
        seqs.append(seq)
    if "window" not in event:
        _line("ok", seqs=seqs)
        return None
    state = {"seqs": list(event["state"].get("seqs", [])) + seqs}
    if event["isFinalInvokeForWindow"]:
        _line("window", start=event["window"]["start"], seqs=state["seqs"])
    return {"state": state}
"""


def streamkit_run(endpoint: str, state_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    """``streamkit run`` on ``endpoint`` with ``state_dir``, its log appended to ``log``."""
    return subprocess.Popen(
        [sys.executable, "-m", "streamkit.cli", "run", "--endpoint-url", endpoint, "--state-dir", str(state_dir),
         "--reconcile-interval", "0.3"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("ab"),
    )  # fmt: skip


def children_of(pid: int) -> set[int]:
    """Live processes whose parent is ``pid`` (Linux /proc; zombies count as gone)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.add(int(entry.name))
    return found


def alive(pids: set[int]) -> set[int]:
    """Which of ``pids`` still run (zombies, awaiting a reaper, do not)."""
    running = set()
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] != "Z":
            running.add(pid)
    return running


def wait_until_gone(pids: set[int], timeout: float) -> set[int]:
    """Wait for ``pids`` to end; those still running after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (left := alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left


@dataclass
class Recording:
    """The recording function's lines, by kind."""

    lines: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(cls, path: Path) -> Recording:
        if not path.exists():
            return cls()
        lines = []
        for text in path.read_text().splitlines():
            if text.strip():
                lines.append(json.loads(text))
        return cls(lines)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line["e"] == kind]

    def succeeded(self) -> set[str]:
        """Sequence numbers of records in invokes that succeeded."""
        return {seq for line in self.of("ok") for seq in line["seqs"]}

    def intervals(self) -> dict[str, list[tuple[float, float | None, int]]]:
        """Per record: (start, end or None when never ended, runner pid), in start order."""
        runs: dict[str, list[tuple[float, float | None, int]]] = {}
        open_at: dict[tuple[str, int], int] = {}
        for line in sorted(self.lines, key=lambda line: line["t"]):
            if line["e"] == "start":
                runs.setdefault(line["seq"], []).append((line["t"], None, line["ppid"]))
                open_at[(line["seq"], line["pid"])] = len(runs[line["seq"]]) - 1
            elif line["e"] == "end":
                index = open_at.pop((line["seq"], line["pid"]))
                start, _, ppid = runs[line["seq"]][index]
                runs[line["seq"]][index] = (start, line["t"], ppid)
        return runs


def kill_9(process: subprocess.Popen[bytes]) -> None:
    os.kill(process.pid, 9)
    process.wait(timeout=10)
