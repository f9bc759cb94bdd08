"""The embedded emulator with a per-operation cost meter: where the emulator's CPU goes.

    python scripts/loadtest/emulator_cost.py [--port N]      # prints its endpoint, serves
    python scripts/load_test.py --endpoint-url URL ...        # drive the platform through it
    curl URL/_cost                                            # {op: calls, cpu_ms, wall_ms}

Each request is timed in its own server thread with ``time.thread_time`` (CPU of that thread
only: robust on a loaded machine, where wall time mostly measures waiting for a core or for the
GIL) and ``perf_counter`` (wall, waits included). The operation is read from the request the way
AWS routes it: ``X-Amz-Target`` (JSON protocols), ``Action=`` (query protocols: SES, SNS, SQS),
or service + method for REST ones (S3, Lambda, Logs' paths). A benchmark tool, not part of the
emulator: the meter's own cost (a header parse and two clock reads) is not in the figures.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import signal
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

from streamkit.local.emulator.server import Emulator

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


class CostMeter:
    """WSGI middleware: calls, CPU and wall milliseconds per operation."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.costs: dict[str, list[float]] = {}

    def operation(self, environ: dict[str, Any]) -> str:
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            return target.rsplit(".", 1)[-1] + " (" + target.split("_")[0].split(".")[0] + ")"
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        service = scope.group(1) if scope else "unsigned"
        method = environ.get("REQUEST_METHOD", "")
        if method == "POST" and "form-urlencoded" in environ.get("CONTENT_TYPE", ""):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            action = urllib.parse.parse_qs(body.decode(errors="replace")).get("Action", ["?"])
            return f"{action[0]} ({service})"
        path = environ.get("PATH_INFO", "")
        if service == "unsigned":
            return f"{method} {path.split('/')[1] if path.count('/') else path} (unsigned)"
        depth = "object" if path.strip("/").count("/") >= 1 else "bucket"
        if service == "s3":
            return f"{method} {depth} (s3)"
        return f"{method} {'/'.join(path.split('/')[:3])} ({service})"

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/_cost":
            with self.lock:
                body = json.dumps(
                    {
                        op: {"calls": int(c), "cpu_ms": round(cpu, 1), "wall_ms": round(w, 1)}
                        for op, (c, cpu, w) in sorted(self.costs.items())
                    }
                ).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        op = self.operation(environ)
        cpu0, wall0 = time.thread_time(), time.perf_counter()
        chunks = list(self.app(environ, start_response))
        cpu, wall = time.thread_time() - cpu0, time.perf_counter() - wall0
        with self.lock:
            entry = self.costs.setdefault(op, [0, 0.0, 0.0])
            entry[0] += 1
            entry[1] += cpu * 1000
            entry[2] += wall * 1000
        return chunks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    emulator = Emulator(host=args.host, port=args.port).start()
    server = emulator._require_server()
    server.app = CostMeter(server.app)
    print(emulator.endpoint_url, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
