"""What the reliability scripts share: their section of RELIABILITY.md and the emulator they run on.

chaos.py, soak.py, fuzz.py and dependency_audit.py each own one section of RELIABILITY.md,
between ``<!-- name:begin -->`` and ``<!-- name:end -->``; ``write_section`` replaces only that
section (or appends it under its heading the first time), so the scripts can run in any order
and never overwrite each other's figures or the hand-written text around them.

``emulator(process=...)`` starts the embedded emulator for a script: in this process
(``Emulator``; chaos.py, which restarts it on the same port for the "endpoint unreachable"
scenario) or as a ``streamkit emulator`` child (``spawn_emulator``; soak.py, which measures the
emulator's RSS and descriptors apart from its own). Importing this module sets the fake AWS
credentials and region every script talks to the emulator with, and puts the repository root
on ``sys.path`` so the scripts can import the shared test helpers (``tests.helpers``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "RELIABILITY.md"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The emulator accepts any credentials; setdefault keeps a caller's own (e.g. LocalStack's).
for _name, _value in {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}.items():
    os.environ.setdefault(_name, _value)

__all__ = ["REPORT", "ROOT", "RunningEmulator", "emulator", "today", "write_section"]


def today() -> str:
    return time.strftime("%Y-%m-%d")


def write_section(name: str, body: str, heading: str, report: Path = REPORT) -> None:
    """Put ``body`` between ``name``'s markers in ``report``; a report without them gets the
    section appended under ``## heading``."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = report.read_text() if report.exists() else "# Reliability\n"
    section = f"{begin}\n{body.strip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + f"\n\n## {heading}\n\n" + section + "\n"
    report.write_text(text)


@dataclass
class RunningEmulator:
    endpoint_url: str
    pid: int  # the process serving it (this one when in process)
    server: object | None = None  # the in-process ``Emulator``, to stop and restart it


@contextlib.contextmanager
def emulator(*, process: bool = False) -> Iterator[RunningEmulator]:
    """The embedded emulator on a free port, stopped on exit (see the module doc)."""
    if process:
        from streamkit.local.emulator.process import spawn_emulator

        with spawn_emulator() as endpoint:
            yield RunningEmulator(endpoint, _child_serving(endpoint))
        return
    from streamkit.local.emulator import Emulator

    with Emulator() as server:
        yield RunningEmulator(server.endpoint_url, os.getpid(), server)


def _child_serving(endpoint: str) -> int:
    """The pid of this process's ``streamkit emulator`` child (spawn_emulator hides its Popen)."""
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            if int(stat[1]) == me and b"emulator" in cmdline:
                return int(entry)
    raise RuntimeError(f"no emulator child of {me} serves {endpoint}")
