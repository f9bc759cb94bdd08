"""Run a Lambda function's deployed code locally, in warm worker subprocesses.

Each worker is one execution environment, as in Lambda: a fresh Python process whose init
phase imports the handler once, then serves invokes one at a time until it is killed (timeout,
crash) or the invoker closes. ``FunctionInvoker`` keeps up to ``max_concurrency`` of them, so
that many invokes can run at once (the ESM runner's ParallelizationFactor lanes).

What the local runtime does *not* enforce, and why:

- MemorySize: capping the address space (RLIMIT_AS) breaks CPython and native libraries that
  reserve large virtual ranges, and an RSS cap needs cgroups. Instead the worker reports its peak
  RSS ("Max Memory Used" in Lambda's REPORT line), the invoker warns when it exceeds MemorySize,
  and the handler sees MemorySize in ``AWS_LAMBDA_FUNCTION_MEMORY_SIZE`` and the context.
- Isolation: the worker runs the runner's interpreter, so its site-packages (boto3, as the
  Lambda runtime provides it, but also anything else installed there, streamkit included) stay
  importable *after* the function's code, which goes first on ``sys.path`` as /var/task does in
  Lambda: a library the zip bundles (its own streamkit, say) always wins. The handler's module
  itself must come from the code; a same-named module from anywhere else is refused.

Worker environment: the function's Environment variables, then Lambda's reserved variables
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime),
``AWS_ENDPOINT_URL`` plus dummy credentials so plain boto3 clients in the handler talk to the
local endpoint (as under LocalStack). Of the runner's own environment only ``PATH``, ``LANG``,
``LC_ALL`` and ``TMPDIR`` pass through; ``HOME`` does not, and ``AWS_CONFIG_FILE`` /
``AWS_SHARED_CREDENTIALS_FILE`` point at /dev/null so botocore in the worker never reads the
developer's AWS profiles (which may name real accounts).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from streamkit.exceptions import FunctionCodeError, InvokerClosedError
from streamkit.local.functions import FunctionSpec, LoadedFunction

__all__ = [
    "DEFAULT_CREDENTIALS",
    "INIT_TIMEOUT_S",
    "TIMEOUT_GRACE_S",
    "FunctionInvoker",
    "InvokeResult",
    "build_worker_environment",
]

logger = logging.getLogger("streamkit.local.invoker")

_WORKER_MAIN = Path(__file__).with_name("_worker_main.py")
_FRAME_PREFIX = struct.Struct(">II")

# Lambda gives the init phase of an on-demand environment 10 seconds.
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
INIT_TIMEOUT_S = 10.0
# Added to the function's Timeout before the worker is killed: covers the pipe round trip, so
# a handler that returns just in time is not reported as timed out.
TIMEOUT_GRACE_S = 0.1
LOG_TAIL_LINES = 100
_MAX_LOG_LINE_BYTES = 8192
_END_MARKER_WAIT_S = 2.0
_EXIT_WAIT_S = 2.0

DEFAULT_CREDENTIALS: Mapping[str, str] = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_SESSION_TOKEN": "test",
}
_PASSTHROUGH_ENV = ("PATH", "LANG", "LC_ALL", "TMPDIR")
_LAMBDA_TASK_ROOT = "/var/task"

# How Lambda (its Go runtime manager) words a worker killed by a signal.
_SIGNAL_WORDS = {
    signal.SIGKILL: "killed",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGTERM: "terminated",
    signal.SIGBUS: "bus error",
    signal.SIGFPE: "floating point exception",
    signal.SIGILL: "illegal instruction",
    signal.SIGINT: "interrupt",
}


@dataclass(frozen=True)
class InvokeResult:
    """The outcome of one invoke, as Lambda's Invoke API reports it (plus local details).

    ``payload`` is the decoded JSON response; for a function error it is Lambda's error shape
    ``{"errorMessage", "errorType", "stackTrace", "requestId"}``. A handler that returns
    ``bytes`` gets them back as is (``payload`` is then those bytes unless they are JSON).
    """

    request_id: str
    ok: bool
    function_error: str | None
    """None, or "Unhandled" as in Invoke's X-Amz-Function-Error."""
    payload: Any
    raw_payload: bytes
    duration_ms: float
    init_duration_ms: float | None
    """Set on a cold start: how long the new worker took to start and import the handler."""
    log_tail: str
    """The last lines (up to 100) the worker wrote during this invoke, and during its init on a
    cold start."""
    timed_out: bool = False
    init_error: bool = False
    """The handler could not be loaded (import error, missing handler, exception in init code):
    the code is broken, as opposed to the handler failing on this event."""
    max_memory_used_mb: int | None = None
    executed_version: str = "$LATEST"
    status_code: int = 200

    @property
    def error_type(self) -> str | None:
        if self.ok or not isinstance(self.payload, Mapping):
            return None
        error_type = self.payload.get("errorType")
        return str(error_type) if error_type is not None else None

    @property
    def error_message(self) -> str | None:
        if self.ok or not isinstance(self.payload, Mapping):
            return None
        message = self.payload.get("errorMessage")
        return str(message) if message is not None else None

    @property
    def cold_start(self) -> bool:
        return self.init_duration_ms is not None


def build_worker_environment(
    spec: FunctionSpec,
    code_dir: Path,
    *,
    endpoint_url: str | None,
    region: str,
    log_stream_name: str,
    credentials: Mapping[str, str] = DEFAULT_CREDENTIALS,
) -> dict[str, str]:
    """The environment a worker of ``spec`` runs with (see the module docstring)."""
    env = {name: os.environ[name] for name in _PASSTHROUGH_ENV if name in os.environ}
    env.setdefault("LANG", "C.UTF-8")
    env["TZ"] = ":UTC"  # as in Lambda
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env.update(spec.environment)
    if endpoint_url:
        # Ours wins over a value in the function's configuration: that one names wherever the
        # function was deployed for (a LocalStack hostname, last run's port), not this endpoint.
        configured = spec.environment.get("AWS_ENDPOINT_URL")
        if configured and configured != endpoint_url:
            logger.info(
                "function %s: AWS_ENDPOINT_URL %s replaced by the local endpoint %s",
                spec.name,
                configured,
                endpoint_url,
            )
        env["AWS_ENDPOINT_URL"] = endpoint_url
    env.update(credentials)
    env.update(
        {
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": spec.version,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "_HANDLER": spec.handler,
            "LAMBDA_TASK_ROOT": str(code_dir),
            "LAMBDA_RUNTIME_DIR": str(_WORKER_MAIN.parent),
            # Leave the unpacked code as it was downloaded (Lambda's /var/task is read-only).
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    python_path = _python_path(code_dir, spec.environment.get("PYTHONPATH"))
    if python_path:
        env["PYTHONPATH"] = python_path
    else:
        env.pop("PYTHONPATH", None)
    return env


def _python_path(code_dir: Path, configured: str | None) -> str:
    """The function's own PYTHONPATH, with /var/task read as the code directory.

    The code directory itself is not on it: the worker puts it first on ``sys.path`` once its
    own imports are done (as Lambda's runtime does with /var/task), so a module in the zip that
    shares a name with one of the standard library cannot break the worker itself.
    """
    entries: list[str] = []
    for entry in (configured or "").split(os.pathsep):
        if entry.startswith(_LAMBDA_TASK_ROOT):
            entry = str(code_dir) + entry[len(_LAMBDA_TASK_ROOT) :]
        if entry and entry not in entries:
            entries.append(entry)
    return os.pathsep.join(entries)


def _log_stream_name(version: str) -> str:
    return f"{datetime.now(UTC):%Y/%m/%d}/[{version}]{uuid.uuid4().hex}"


class _OutputCollector:
    """Drains a worker's log pipe (its stdout and stderr) and splits it by invoke.

    Lines written between invokes (init, background threads) are kept and given to the next
    invoke. An invoke's output ends at the worker's ``END RequestId: <id>`` line.
    """

    def __init__(self, stream: IO[bytes], label: str) -> None:
        self._label = label
        self._cond = threading.Condition()
        self._pending: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self._current: deque[str] | None = None
        self._end_marker: str | None = None
        self._ended = False
        self._eof = False
        threading.Thread(
            target=self._drain, args=(stream,), name=f"{label}-log", daemon=True
        ).start()

    def _drain(self, stream: IO[bytes]) -> None:
        try:
            for raw in iter(lambda: stream.readline(_MAX_LOG_LINE_BYTES), b""):
                self._add(raw.decode("utf-8", "replace").rstrip("\r\n"))
        except (OSError, ValueError):  # the pipe was closed under us: the worker is gone
            pass
        finally:
            stream.close()
            with self._cond:
                self._eof = True
                self._cond.notify_all()

    def _add(self, line: str) -> None:
        with self._cond:
            marker = self._end_marker
            if marker is not None and self._current is not None and line.endswith(marker):
                if line != marker:  # output that did not end with a newline
                    self._current.append(line[: -len(marker)])
                self._end_marker = None
                self._ended = True
                self._cond.notify_all()
                return
            if self._current is not None and not self._ended:
                self._current.append(line)
            else:
                self._pending.append(line)
        logger.debug("[%s] %s", self._label, line)

    def begin(self, request_id: str) -> None:
        with self._cond:
            self._current, self._pending = self._pending, deque(maxlen=LOG_TAIL_LINES)
            self._end_marker = f"END RequestId: {request_id}"
            self._ended = False

    def finish(self, wait_s: float) -> str:
        """This invoke's output, once its END line (or the end of the pipe) is seen."""
        with self._cond:
            self._cond.wait_for(lambda: self._ended or self._eof, timeout=wait_s)
            lines = list(self._current or ())
            self._current = None
            self._end_marker = None
            return "\n".join(lines)

    def take_pending(self, wait_s: float) -> str:
        """Output outside any invoke (e.g. a failed init), once the pipe closes."""
        with self._cond:
            self._cond.wait_for(lambda: self._eof, timeout=wait_s)
            lines = list(self._pending)
            self._pending.clear()
            return "\n".join(lines)


class _Worker:
    """One worker subprocess: the protocol pipe, the log pipe, and how to end it."""

    def __init__(self, function: LoadedFunction, env: Mapping[str, str]) -> None:
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            # -P: keep the worker script's directory off sys.path; -u: unbuffered stdout and
            # stderr, so output reaches the log pipe in order and survives a kill.
            [sys.executable, "-P", "-u", str(_WORKER_MAIN)],
            cwd=function.code_dir,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            # Its own process group, so a kill also reaches processes the handler started.
            start_new_session=True,
        )
        self.pid = self.process.pid
        self.label = f"{function.spec.name}:{self.pid}"
        self.warned_memory = False
        self._messages: queue.Queue[tuple[dict[str, Any], bytes] | None] = queue.Queue()
        assert self.process.stdout is not None and self.process.stderr is not None
        self.output = _OutputCollector(self.process.stderr, self.label)
        threading.Thread(
            target=self._read_frames, args=(self.process.stdout,), name=self.label, daemon=True
        ).start()

    def _read_frames(self, stream: IO[bytes]) -> None:
        try:
            while True:
                prefix = stream.read(_FRAME_PREFIX.size)
                if len(prefix) < _FRAME_PREFIX.size:
                    break
                header_length, body_length = _FRAME_PREFIX.unpack(prefix)
                header = stream.read(header_length)
                body = stream.read(body_length)
                if len(header) < header_length or len(body) < body_length:
                    break
                self._messages.put((json.loads(header), body))
        except (OSError, ValueError):
            pass
        finally:
            stream.close()
            self._messages.put(None)

    def send(self, header: Mapping[str, Any], body: bytes) -> bool:
        """False when the worker is gone (its exit shows up as EOF on receive)."""
        encoded = json.dumps(header).encode()
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(_FRAME_PREFIX.pack(len(encoded), len(body)) + encoded + body)
            stdin.flush()
        except (OSError, ValueError):
            return False
        return True

    def receive(self, timeout_s: float) -> tuple[dict[str, Any], bytes] | None:
        """The next message, or None at EOF. Raises ``queue.Empty`` after ``timeout_s``."""
        return self._messages.get(timeout=max(timeout_s, 0.001))

    def kill(self) -> None:
        """SIGKILL the worker's process group, then reap the worker."""
        # Only while the worker is unreaped: its pid (= the group id) cannot be reused yet.
        if self.process.returncode is None:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        if self.process.stdin is not None:
            with suppress(OSError):
                self.process.stdin.close()
        self.process.wait()

    def exit_description(self) -> str:
        """How the worker ended, worded like Lambda's Runtime.ExitError ("exit status 1",
        "signal: killed"). Waits briefly for it to exit, then kills what is left of its group."""
        deadline = time.monotonic() + _EXIT_WAIT_S
        while time.monotonic() < deadline and not self._has_exited():
            time.sleep(0.01)
        self.kill()
        code = self.process.returncode
        if code < 0:
            signum = -code
            try:
                word = _SIGNAL_WORDS.get(signal.Signals(signum), signal.Signals(signum).name)
            except ValueError:
                word = f"signal {signum}"
            return f"signal: {word}"
        return f"exit status {code}"

    def _has_exited(self) -> bool:
        # WNOWAIT leaves the worker unreaped, so kill() can still signal its group safely.
        if not hasattr(os, "waitid"):
            return self.process.poll() is not None
        try:
            status = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return status is not None


class FunctionInvoker:
    """Invokes one function version's code in up to ``max_concurrency`` warm workers.

    ``invoke`` is blocking and thread-safe: call it from as many threads as there are lanes;
    calls beyond ``max_concurrency`` wait for a free worker. ``close`` kills every worker.
    """

    def __init__(
        self,
        function: LoadedFunction,
        *,
        endpoint_url: str | None,
        region: str,
        max_concurrency: int = 1,
        credentials: Mapping[str, str] = DEFAULT_CREDENTIALS,
        init_timeout_s: float = INIT_TIMEOUT_S,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self._function = function
        self._spec = function.spec
        self._endpoint_url = endpoint_url
        self._region = region
        self._credentials = dict(credentials)
        self._init_timeout_s = init_timeout_s
        self._max_concurrency = max_concurrency
        self._slots = threading.BoundedSemaphore(max_concurrency)
        self._lock = threading.Lock()
        self._idle: list[_Worker] = []
        self._live: set[_Worker] = set()
        self._closed = False
        self._warned_streamkit = False

    @property
    def function(self) -> LoadedFunction:
        return self._function

    @property
    def max_concurrency(self) -> int:
        return self._max_concurrency

    def __enter__(self) -> FunctionInvoker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def invoke(
        self, payload: Mapping[str, Any] | bytes | str, *, request_id: str | None = None
    ) -> InvokeResult:
        """Run the handler on ``payload`` (the event; JSON-encoded here unless already bytes or
        str) and wait for the outcome. Function errors, timeouts and crashes come back as
        results; ``InvokerClosedError`` is raised if the invoker is or gets closed."""
        request_id = request_id or str(uuid.uuid4())
        if isinstance(payload, bytes):
            event_body = payload
        elif isinstance(payload, str):
            event_body = payload.encode()
        else:
            event_body = json.dumps(payload).encode()
        with self._slot():
            worker = self._take_idle()
            init_duration_ms: float | None = None
            if worker is None:
                started = self._cold_start(request_id)
                if isinstance(started, InvokeResult):
                    return started
                worker, init_duration_ms = started
            return self._run(worker, request_id, event_body, init_duration_ms)

    def warm(self) -> None:
        """Start one worker ahead of the first invoke.

        Raises ``FunctionCodeError`` when the handler cannot be loaded, so a runner can report
        broken code early (invokes would keep failing with the same init error).
        """
        with self._slot():
            started = self._cold_start(f"warm-up-{uuid.uuid4()}")
            if isinstance(started, InvokeResult):
                raise FunctionCodeError(
                    self._spec.name,
                    self._function.code_location or str(self._function.code_dir),
                    f"init failed: {started.error_type}: {started.error_message}",
                )
            self._release(started[0])

    def close(self) -> None:
        """Kill every worker. In-flight invokes raise ``InvokerClosedError``."""
        with self._lock:
            self._closed = True
            workers = list(self._live)
            self._idle.clear()
        for worker in workers:
            worker.kill()

    @contextmanager
    def _slot(self) -> Iterator[None]:
        self._check_open()
        with self._slots:
            self._check_open()
            yield

    def _check_open(self) -> None:
        if self._closed:
            raise InvokerClosedError(self._spec.name)

    def _take_idle(self) -> _Worker | None:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()  # the most recently used one: the warmest
                if worker.process.poll() is None:
                    return worker
                self._live.discard(worker)
            return None

    def _release(self, worker: _Worker) -> None:
        with self._lock:
            if not self._closed:
                self._idle.append(worker)
                return
        worker.kill()

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._live.discard(worker)

    def _cold_start(self, request_id: str) -> tuple[_Worker, float] | InvokeResult:
        env = build_worker_environment(
            self._spec,
            self._function.code_dir,
            endpoint_url=self._endpoint_url,
            region=self._region,
            log_stream_name=_log_stream_name(self._spec.version),
            credentials=self._credentials,
        )
        try:
            worker = _Worker(self._function, env)
        except OSError as exc:  # e.g. the code directory was deleted under us
            raise FunctionCodeError(
                self._spec.name,
                self._function.code_location or str(self._function.code_dir),
                f"cannot start a worker in {self._function.code_dir}: {exc}",
            ) from exc
        with self._lock:
            if self._closed:
                worker.kill()
                raise InvokerClosedError(self._spec.name)
            self._live.add(worker)
        try:
            message = worker.receive(self._init_timeout_s)
        except queue.Empty:
            message = None
            worker.kill()
            error = self._platform_error(
                "Sandbox.Timedout",
                f"RequestId: {request_id} Error: Init timed out after "
                f"{self._init_timeout_s:.2f} seconds",
                request_id,
            )
        else:
            if message is None:
                description = worker.exit_description()
                self._raise_if_closed()
                error = self._platform_error(
                    "Runtime.ExitError",
                    f"RequestId: {request_id} Error: Runtime exited with error: {description}",
                    request_id,
                )
            elif message[0].get("type") == "ready":
                init_duration_ms = (time.monotonic() - worker.started) * 1000
                logger.info(
                    "cold start: function %s, worker pid %d ready in %.1f ms (request %s)",
                    self._spec.name,
                    worker.pid,
                    init_duration_ms,
                    request_id,
                )
                self._check_streamkit_origin(message[0].get("streamkit_file"))
                return worker, init_duration_ms
            else:
                error = {**message[0]["error"], "requestId": request_id}
                worker.exit_description()  # it exits by itself after an init error
        self._discard(worker)
        init_duration_ms = (time.monotonic() - worker.started) * 1000
        logger.warning(
            "init failed: function %s, request %s, worker pid %d: %s: %s",
            self._spec.name,
            request_id,
            worker.pid,
            error["errorType"],
            error["errorMessage"],
        )
        raw = json.dumps(error).encode()
        return InvokeResult(
            request_id=request_id,
            ok=False,
            function_error="Unhandled",
            payload=error,
            raw_payload=raw,
            duration_ms=0.0,
            init_duration_ms=init_duration_ms,
            log_tail=worker.output.take_pending(_END_MARKER_WAIT_S),
            timed_out=error["errorType"] == "Sandbox.Timedout",
            init_error=True,
            executed_version=self._spec.version,
        )

    def _run(
        self,
        worker: _Worker,
        request_id: str,
        event_body: bytes,
        init_duration_ms: float | None,
    ) -> InvokeResult:
        timeout_s = self._spec.timeout_s
        started = time.monotonic()
        worker.output.begin(request_id)
        worker.send(
            {
                "type": "invoke",
                "request_id": request_id,
                "deadline_ms": int((time.time() + timeout_s) * 1000),
                "invoked_function_arn": self._spec.arn,
                "client_context": None,
                "cognito_identity": None,
            },
            event_body,
        )
        try:
            message = worker.receive(timeout_s + TIMEOUT_GRACE_S)
        except queue.Empty:
            return self._timed_out(worker, request_id, started, init_duration_ms)
        if message is None:
            return self._crashed(worker, request_id, started, init_duration_ms)
        header, body = message
        log_tail = worker.output.finish(_END_MARKER_WAIT_S)
        duration_ms = float(header["duration_ms"])
        max_memory_used_mb = int(header["max_memory_used_mb"])
        self._report(worker, request_id, duration_ms, max_memory_used_mb, init_duration_ms)
        self._release(worker)
        error: dict[str, Any] | None = header.get("error")
        if error is not None:
            logger.info(
                "function error: function %s, request %s: %s: %s (%.1f ms)",
                self._spec.name,
                request_id,
                error.get("errorType"),
                error.get("errorMessage"),
                duration_ms,
            )
            payload: Any = error
            body = json.dumps(error).encode()
        else:
            try:
                payload = json.loads(body)
            except ValueError:  # the handler returned bytes that are not JSON
                payload = body
        return InvokeResult(
            request_id=request_id,
            ok=error is None,
            function_error=None if error is None else "Unhandled",
            payload=payload,
            raw_payload=body,
            duration_ms=duration_ms,
            init_duration_ms=init_duration_ms,
            log_tail=log_tail,
            max_memory_used_mb=max_memory_used_mb,
            executed_version=self._spec.version,
        )

    def _timed_out(
        self, worker: _Worker, request_id: str, started: float, init_duration_ms: float | None
    ) -> InvokeResult:
        worker.kill()
        self._discard(worker)
        self._raise_if_closed()
        elapsed_s = time.monotonic() - started
        logger.warning(
            "timeout: function %s, request %s: task timed out after %.2f s; killed worker pid %d "
            "(the next invoke starts a new one)",
            self._spec.name,
            request_id,
            elapsed_s,
            worker.pid,
        )
        # Lambda's wording since the 2023 runtime update; like Lambda's, the figure is the
        # function's Timeout (not counting the grace added here for the pipe round trip).
        # https://docs.aws.amazon.com/lambda/latest/dg/troubleshooting-invocation.html
        error = self._platform_error(
            "Sandbox.Timedout",
            f"RequestId: {request_id} Error: Task timed out after "
            f"{self._spec.timeout_s:.2f} seconds",
            request_id,
        )
        return self._platform_failure(
            worker, request_id, error, elapsed_s * 1000, init_duration_ms, timed_out=True
        )

    def _crashed(
        self, worker: _Worker, request_id: str, started: float, init_duration_ms: float | None
    ) -> InvokeResult:
        description = worker.exit_description()
        self._discard(worker)
        self._raise_if_closed()
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.warning(
            "crash: function %s, request %s: worker pid %d exited (%s) after %.1f ms",
            self._spec.name,
            request_id,
            worker.pid,
            description,
            elapsed_ms,
        )
        if description == "exit status 0":
            message = f"RequestId: {request_id} Error: Runtime exited without providing a reason"
        else:
            message = f"RequestId: {request_id} Error: Runtime exited with error: {description}"
        error = self._platform_error("Runtime.ExitError", message, request_id)
        return self._platform_failure(worker, request_id, error, elapsed_ms, init_duration_ms)

    def _platform_failure(
        self,
        worker: _Worker,
        request_id: str,
        error: dict[str, Any],
        duration_ms: float,
        init_duration_ms: float | None,
        *,
        timed_out: bool = False,
    ) -> InvokeResult:
        return InvokeResult(
            request_id=request_id,
            ok=False,
            function_error="Unhandled",
            payload=error,
            raw_payload=json.dumps(error).encode(),
            duration_ms=duration_ms,
            init_duration_ms=init_duration_ms,
            log_tail=worker.output.finish(_END_MARKER_WAIT_S),
            timed_out=timed_out,
            executed_version=self._spec.version,
        )

    @staticmethod
    def _platform_error(error_type: str, message: str, request_id: str) -> dict[str, Any]:
        return {"errorMessage": message, "errorType": error_type, "requestId": request_id}

    def _raise_if_closed(self) -> None:
        if self._closed:
            raise InvokerClosedError(self._spec.name)

    def _report(
        self,
        worker: _Worker,
        request_id: str,
        duration_ms: float,
        max_memory_used_mb: int,
        init_duration_ms: float | None,
    ) -> None:
        init = f"\tInit Duration: {init_duration_ms:.2f} ms" if init_duration_ms else ""
        logger.debug(
            "REPORT %s RequestId: %s\tDuration: %.2f ms\tMemory Size: %d MB\t"
            "Max Memory Used: %d MB%s",
            self._spec.name,
            request_id,
            duration_ms,
            self._spec.memory_mb,
            max_memory_used_mb,
            init,
        )
        if max_memory_used_mb > self._spec.memory_mb and not worker.warned_memory:
            worker.warned_memory = True
            logger.warning(
                "function %s used %d MB, more than its MemorySize of %d MB: Lambda would stop it "
                "(Runtime.OutOfMemory); the local runtime does not enforce MemorySize",
                self._spec.name,
                max_memory_used_mb,
                self._spec.memory_mb,
            )

    def _check_streamkit_origin(self, streamkit_file: str | None) -> None:
        if streamkit_file is None or self._warned_streamkit:
            return
        code_dir = str(self._function.code_dir) + os.sep
        if not os.path.realpath(streamkit_file).startswith(code_dir):
            self._warned_streamkit = True
            logger.warning(
                "function %s imports streamkit from %s, not from its own code: on Lambda it "
                "must be bundled in the zip (layers are not used locally)",
                self._spec.name,
                streamkit_file,
            )
