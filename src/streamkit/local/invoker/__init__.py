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
- Isolation: the worker runs the interpreter of the function's declared ``Runtime``
  (``runtime_python``: CPython 3.12 for python3.12, found on PATH, in pyenv or at
  ``STREAMKIT_PYTHON_PYTHON3_12``). On the runner's own interpreter its site-packages (boto3,
  as the Lambda runtime provides it, but also anything else installed there, streamkit
  included) stay importable *after* the function's code, which goes first on ``sys.path`` as
  /var/task does in Lambda: a library the zip bundles (its own streamkit, say) always wins. A
  worker on another interpreter gets the same site-packages after its own (pure-Python
  packages import on any CPython 3). The handler's module itself must come from the code; a
  same-named module from anywhere else is refused.

Worker environment: the function's Environment variables, then Lambda's reserved variables
(https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime),
``AWS_ENDPOINT_URL`` plus dummy credentials so plain boto3 clients in the handler talk to the
local endpoint (as under LocalStack). Of the runner's own environment only ``PATH``, ``LANG``,
``LC_ALL`` and ``TMPDIR`` pass through; ``HOME`` does not, and ``AWS_CONFIG_FILE`` /
``AWS_SHARED_CREDENTIALS_FILE`` point at /dev/null so botocore in the worker never reads the
developer's AWS profiles (which may name real accounts). ``AWS_XRAY_DAEMON_ADDRESS`` is the
runner's own if it has one (else the SDK's default, 127.0.0.1:2000), and each invocation gets
a fresh ``_X_AMZN_TRACE_ID``, sampled for ``TracingConfig.Mode = Active`` functions
(``streamkit.local.invoker.trace_header``).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from streamkit.exceptions import FunctionCodeError
from streamkit.local.invoker._environment import (
    DEFAULT_CREDENTIALS,
    build_worker_environment,
    new_log_stream_name,
)
from streamkit.local.invoker._pool import WorkerPool
from streamkit.local.invoker._result import (
    InvokeResult,
    answered_invoke,
    failed_invoke,
    log_report,
    platform_error,
)
from streamkit.local.invoker._worker import Worker
from streamkit.local.invoker.functions import LoadedFunction
from streamkit.local.invoker.runtime_python import worker_python
from streamkit.local.invoker.trace_header import new_trace_header

if TYPE_CHECKING:
    from streamkit.local.invoker.log_shipper import LogShipper

__all__ = [
    "DEFAULT_CREDENTIALS",
    "INIT_TIMEOUT_S",
    "TIMEOUT_GRACE_S",
    "FunctionInvoker",
    "InvokeResult",
    "build_worker_environment",
]

logger = logging.getLogger(__name__)

# Lambda gives the init phase of an on-demand environment 10 seconds.
# https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html
INIT_TIMEOUT_S = 10.0
# Added to the function's Timeout before the worker is killed: covers the pipe round trip, so
# a handler that returns just in time is not reported as timed out.
TIMEOUT_GRACE_S = 0.1
_END_MARKER_WAIT_S = 2.0
# Cold starts in flight at once, in this process: one per core. On AWS every execution
# environment initializes on its own CPU; here they share the machine's cores, and a runner with
# several functions and ParallelizationFactor lanes starts many at once (the order platform at
# ParallelizationFactor 4: twelve). Their imports then slowed each other past the 10 s init limit
# (seen: Sandbox.Timedout on a 2-core machine), a failure AWS would not have. Waiting for a turn
# is not part of the init time: the clock starts when the worker does.
_COLD_STARTS = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))


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
        log_shipper: LogShipper | None = None,
        hold_fds: Sequence[int] = (),
    ) -> None:
        """``hold_fds``: descriptors every worker keeps open while it lives (a runner's lock
        on its state directory)."""
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {max_concurrency}")
        self._function = function
        self._spec = function.spec
        self._endpoint_url = endpoint_url
        self._region = region
        self._credentials = dict(credentials)
        self._init_timeout_s = init_timeout_s
        self._max_concurrency = max_concurrency
        self._workers = WorkerPool(self._spec.name, max_concurrency)
        self._warned_streamkit = False
        # The declared runtime's interpreter, chosen once per function version (runtime_python).
        self._python = worker_python(function)
        # Each worker's output also goes to CloudWatch Logs when set, as Lambda ships it.
        self._log_shipper = log_shipper
        self._hold_fds = tuple(hold_fds)

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
        with self._workers.slot():
            worker = self._workers.take_idle()
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
        with self._workers.slot():
            started = self._cold_start(f"warm-up-{uuid.uuid4()}")
            if isinstance(started, InvokeResult):
                raise FunctionCodeError(
                    self._spec.name,
                    self._function.code_location or str(self._function.code_dir),
                    f"init failed: {started.error_type}: {started.error_message}",
                )
            self._workers.release(started[0])

    def close(self) -> None:
        """Kill every worker. In-flight invokes raise ``InvokerClosedError``."""
        self._workers.close()

    def _cold_start(self, request_id: str) -> tuple[Worker, float] | InvokeResult:
        with _COLD_STARTS:
            return self._start_worker(request_id)

    def _start_worker(self, request_id: str) -> tuple[Worker, float] | InvokeResult:
        env = build_worker_environment(
            self._spec,
            self._function.code_dir,
            endpoint_url=self._endpoint_url,
            region=self._region,
            log_stream_name=new_log_stream_name(self._spec.version),
            credentials=self._credentials,
        )
        on_line = None
        if self._log_shipper is not None:
            on_line = self._log_shipper.writer(
                env["AWS_LAMBDA_LOG_GROUP_NAME"], env["AWS_LAMBDA_LOG_STREAM_NAME"]
            )
        try:
            worker = Worker(self._function, env, self._python, on_line, hold_fds=self._hold_fds)
        except OSError as exc:  # e.g. the code directory was deleted under us
            raise FunctionCodeError(
                self._spec.name,
                self._function.code_location or str(self._function.code_dir),
                f"cannot start a worker in {self._function.code_dir}: {exc}",
            ) from exc
        self._workers.adopt(worker)
        try:
            message = worker.receive(self._init_timeout_s)
        except queue.Empty:
            message = None
            worker.kill()
            error = platform_error(
                "Sandbox.Timedout",
                f"RequestId: {request_id} Error: Init timed out after "
                f"{self._init_timeout_s:.2f} seconds",
                request_id,
            )
        else:
            if message is None:
                description = worker.exit_description()
                self._workers.check_open()
                error = platform_error(
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
        self._workers.discard(worker)
        init_duration_ms = (time.monotonic() - worker.started) * 1000
        logger.warning(
            "init failed: function %s, request %s, worker pid %d: %s: %s",
            self._spec.name,
            request_id,
            worker.pid,
            error["errorType"],
            error["errorMessage"],
        )
        return failed_invoke(
            request_id,
            error,
            duration_ms=0.0,
            init_duration_ms=init_duration_ms,
            log_tail=worker.output.take_pending(_END_MARKER_WAIT_S),
            executed_version=self._spec.version,
            timed_out=error["errorType"] == "Sandbox.Timedout",
            init_error=True,
        )

    def _run(
        self,
        worker: Worker,
        request_id: str,
        event_body: bytes,
        init_duration_ms: float | None,
    ) -> InvokeResult:
        timeout_s = self._spec.timeout_s
        started = time.monotonic()
        worker.output.begin(request_id, self._spec.version)
        worker.send(
            {
                "type": "invoke",
                "request_id": request_id,
                "deadline_ms": int((time.time() + timeout_s) * 1000),
                "invoked_function_arn": self._spec.arn,
                "client_context": None,
                "cognito_identity": None,
                "trace_header": new_trace_header(self._spec.tracing_mode),
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
        log_report(
            self._spec, worker, request_id, duration_ms, max_memory_used_mb, init_duration_ms
        )
        self._workers.release(worker)
        return answered_invoke(
            self._spec,
            request_id,
            header,
            body,
            duration_ms=duration_ms,
            init_duration_ms=init_duration_ms,
            max_memory_used_mb=max_memory_used_mb,
            log_tail=log_tail,
        )

    def _timed_out(
        self, worker: Worker, request_id: str, started: float, init_duration_ms: float | None
    ) -> InvokeResult:
        worker.kill()
        self._workers.discard(worker)
        self._workers.check_open()
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
        error = platform_error(
            "Sandbox.Timedout",
            f"RequestId: {request_id} Error: Task timed out after "
            f"{self._spec.timeout_s:.2f} seconds",
            request_id,
        )
        return self._platform_failure(
            worker, request_id, error, elapsed_s * 1000, init_duration_ms, timed_out=True
        )

    def _crashed(
        self, worker: Worker, request_id: str, started: float, init_duration_ms: float | None
    ) -> InvokeResult:
        description = worker.exit_description()
        self._workers.discard(worker)
        self._workers.check_open()
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
        error = platform_error("Runtime.ExitError", message, request_id)
        return self._platform_failure(worker, request_id, error, elapsed_ms, init_duration_ms)

    def _platform_failure(
        self,
        worker: Worker,
        request_id: str,
        error: dict[str, Any],
        duration_ms: float,
        init_duration_ms: float | None,
        *,
        timed_out: bool = False,
    ) -> InvokeResult:
        return failed_invoke(
            request_id,
            error,
            duration_ms=duration_ms,
            init_duration_ms=init_duration_ms,
            log_tail=worker.output.finish(_END_MARKER_WAIT_S),
            executed_version=self._spec.version,
            timed_out=timed_out,
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
