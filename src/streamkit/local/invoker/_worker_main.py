"""Entry point of a local Lambda worker: one process is one execution environment.

``streamkit.local.invoker`` starts it as ``python -P -u <this file> [--site-dir DIR ...]`` on the
interpreter of the function's runtime, with the function's code directory
(``LAMBDA_TASK_ROOT``) as working directory. It mimics the AWS Lambda Python
runtime (``awslambdaric``'s bootstrap): import the handler once (the init phase), then call it
for each invoke, turning its return value into JSON and its exceptions into Lambda's error shape.

Only the standard library is imported here, never ``streamkit``: a copy of streamkit bundled in
the function's zip must be the one the handler gets, as in Lambda. ``-P`` keeps this file's
directory off ``sys.path`` for the same reason. The context class is loaded from its file under
a private module name.

Protocol. At startup the worker moves the pipes it got as stdin and stdout to private file
descriptors and uses them for frames only; fd 0 becomes /dev/null and fd 1 joins fd 2, so
whatever the handler prints (even from C code or child processes) lands in the log pipe and
cannot corrupt a frame. A frame is ``>II`` (header length, body length), a JSON header object,
then the raw body.

- worker -> parent, once: ``{"type": "ready", "streamkit_file": str | None}`` or
  ``{"type": "init_error", "error": {errorMessage, errorType, stackTrace}}`` (then it exits 1).
- parent -> worker: ``{"type": "invoke", "request_id", "deadline_ms", "invoked_function_arn",
  "client_context", "cognito_identity"}`` with the event's JSON as body.
- worker -> parent: ``{"type": "result", "request_id", "error": null | {...}, "duration_ms",
  "max_memory_used_mb"}`` with the response as body. Before it, the worker writes the line
  ``END RequestId: <id>`` to the log pipe, so the parent knows the invoke's output is complete.

EOF on the protocol pipe means "stop": the worker exits 0.

Options, in this order: ``--watch-fd FD`` (a pipe the parent never writes: EOF on it means the
parent is gone, even killed with SIGKILL, and the worker SIGKILLs its own process group at
once, mid-invoke too, so no batch of a dead runner goes on running beside its successor's),
``--hold-fd FD`` (repeated: kept open, not inherited by the handler's children, until exit),
``--site-dir DIR`` (repeated).
"""

from __future__ import annotations

import contextlib
import decimal
import importlib
import importlib.util
import json
import logging
import math
import os
import resource
import signal
import site
import struct
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any, BinaryIO

_FRAME_PREFIX = struct.Struct(">II")
# Lambda's limit on a synchronous invoke's response payload.
# https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
_MAX_RESPONSE_BYTES = 6_291_556
_THIS_FILE = os.path.abspath(__file__)

# Error types as awslambdaric's FaultException names them.
_MARSHAL_ERROR = "Runtime.MarshalError"
_UNMARSHAL_ERROR = "Runtime.UnmarshalError"
_USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
_HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
_IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
_BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
_MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
_RESPONSE_SIZE_TOO_LARGE = "Function.ResponseSizeTooLarge"

Handler = Callable[[Any, Any], Any]
_current_request_id = ""


class _Fault(Exception):
    """A runtime-detected failure with a Lambda error type (awslambdaric's FaultException)."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


class _Channel:
    """Framed messages over the two private protocol pipes."""

    def __init__(self, incoming: BinaryIO, outgoing: BinaryIO) -> None:
        self._incoming = incoming
        self._outgoing = outgoing

    def send(self, header: dict[str, Any], body: bytes = b"") -> None:
        encoded = json.dumps(header).encode()
        self._outgoing.write(_FRAME_PREFIX.pack(len(encoded), len(body)) + encoded + body)
        self._outgoing.flush()

    def receive(self) -> tuple[dict[str, Any], bytes] | None:
        prefix = self._incoming.read(_FRAME_PREFIX.size)
        if len(prefix) < _FRAME_PREFIX.size:
            return None
        header_length, body_length = _FRAME_PREFIX.unpack(prefix)
        header = self._incoming.read(header_length)
        body = self._incoming.read(body_length)
        if len(header) < header_length or len(body) < body_length:
            return None
        message: dict[str, Any] = json.loads(header)
        return message, body


def _take_over_stdio() -> _Channel:
    incoming = os.fdopen(os.dup(0), "rb")
    outgoing = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    return _Channel(incoming, outgoing)


def _load_context_class() -> Any:
    path = os.path.join(os.path.dirname(_THIS_FILE), "lambda_context.py")
    name = "_streamkit_local_lambda_context"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.LambdaContext


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _current_request_id
        return True


class _StdoutHandler(logging.Handler):
    """The root handler Lambda's runtime installs: every record goes to stdout (the log)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record))
        except Exception:
            self.handleError(record)


def _setup_logging() -> None:
    # Same text format and UTC timestamps as awslambdaric, so `logger.info` in a handler shows
    # up as it does in CloudWatch once the handler lowers the root level.
    logging.Formatter.converter = time.gmtime
    handler = _StdoutHandler()
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in logging.getLevelNamesMapping():
        root.setLevel(level)


def _load_handler(handler_name: str, task_root: str) -> Handler:
    """awslambdaric's ``_get_handler``, plus one check: the module must come from the code."""
    try:
        module_name, function_name = handler_name.rsplit(".", 1)
    except ValueError as exc:
        raise _Fault(_MALFORMED_HANDLER_NAME, f"Bad handler '{handler_name}': {exc}") from exc
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise _Fault(
            _BUILT_IN_MODULE_CONFLICT,
            f"Cannot use built-in module {module_name} as a handler module",
        )
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _Fault(
            _IMPORT_MODULE_ERROR, f"Unable to import module '{module_name}': {exc}"
        ) from exc
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise _Fault(
            _USER_CODE_SYNTAX_ERROR, f"Syntax error in module '{module_name}': {exc}", trace
        ) from exc
    # Never run a same-named module from elsewhere (the stdlib, site-packages) by accident.
    module_file = getattr(module, "__file__", None)
    if not module_file or not _is_within(os.path.realpath(module_file), task_root):
        raise _Fault(
            _IMPORT_MODULE_ERROR,
            f"Unable to import module '{module_name}': it resolved to "
            f"{module_file or 'a module without a file'}, "
            f"outside the function's code in {task_root}",
        )
    try:
        handler: Handler = getattr(module, function_name)
    except AttributeError as exc:
        raise _Fault(
            _HANDLER_NOT_FOUND, f"Handler '{function_name}' missing on module '{module_name}'"
        ) from exc
    return handler


def _is_within(path: str, directory: str) -> bool:
    return path == directory or path.startswith(directory.rstrip(os.sep) + os.sep)


def _error_from_exception(exc: BaseException) -> dict[str, Any]:
    """Lambda's error shape for an exception, with the worker's own frames trimmed off the top
    (as awslambdaric trims bootstrap.py's)."""
    frames = traceback.extract_tb(exc.__traceback__)
    while frames and (frames[0].filename == _THIS_FILE or frames[0].filename.startswith("<frozen")):
        frames.pop(0)
    return _error(str(exc), type(exc).__name__, traceback.format_list(frames))


def _error(message: str, error_type: str, trace: list[str]) -> dict[str, Any]:
    return {
        "errorMessage": message,
        "errorType": error_type,
        "requestId": _current_request_id,
        "stackTrace": trace,
    }


def _log_error(error: dict[str, Any]) -> None:
    """Write the error to the function's log, as the runtime does (``[ERROR] Type: message``)."""
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}"]
    if error["stackTrace"]:
        lines.append("Traceback (most recent call last):")
        lines.extend(line.rstrip("\n") for line in error["stackTrace"])
    sys.stdout.write("\n".join(lines) + "\n")


class _Encoder(json.JSONEncoder):
    """awslambdaric's marshaller: Decimal becomes a JSON number (through float, as the
    python3.12+ runtimes do), NaN Decimals become NaN; anything else unknown fails."""

    def default(self, o: Any) -> Any:
        if isinstance(o, decimal.Decimal):
            return math.nan if o.is_nan() else float(o)
        return super().default(o)


def _marshal(response: Any, ensure_ascii: bool) -> bytes:
    if isinstance(response, bytes):  # returned as is, like Lambda ("application/unknown")
        body = response
    else:
        try:
            text = _Encoder(allow_nan=True, ensure_ascii=ensure_ascii).encode(response)
            body = text.encode()
        except Exception as exc:
            raise _Fault(_MARSHAL_ERROR, f"Unable to marshal response: {exc}") from exc
    if len(body) > _MAX_RESPONSE_BYTES:
        raise _Fault(
            _RESPONSE_SIZE_TOO_LARGE,
            "Response payload size exceeded maximum allowed payload size "
            f"({_MAX_RESPONSE_BYTES} bytes).",
        )
    return body


def _max_memory_used_mb() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return int(peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024)


def _invoke(
    channel: _Channel,
    handler: Handler,
    context_class: Any,
    request: dict[str, Any],
    event_body: bytes,
    ensure_ascii: bool,
) -> None:
    global _current_request_id
    request_id = str(request["request_id"])
    _current_request_id = request_id
    # As Lambda's runtime does before each call: the X-Ray SDK reads it per invocation.
    trace_header = request.get("trace_header")
    if trace_header:
        os.environ["_X_AMZN_TRACE_ID"] = str(trace_header)
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)
    error: dict[str, Any] | None = None
    body = b""
    started = time.perf_counter()
    try:
        context = context_class(
            aws_request_id=request_id,
            deadline_epoch_ms=int(request["deadline_ms"]),
            invoked_function_arn=request["invoked_function_arn"],
            client_context=request.get("client_context"),
            cognito_identity=request.get("cognito_identity"),
        )
        try:
            event = json.loads(event_body)
        except ValueError as exc:
            raise _Fault(_UNMARSHAL_ERROR, f"Unable to unmarshal input: {exc}") from exc
        body = _marshal(handler(event, context), ensure_ascii)
    except _Fault as fault:
        error = _error(fault.message, fault.error_type, fault.trace)
    except Exception as exc:  # SystemExit & co. end the process, as in Lambda
        error = _error_from_exception(exc)
    duration_ms = (time.perf_counter() - started) * 1000
    if error is not None:
        _log_error(error)
    _end_of_output(request_id)
    channel.send(
        {
            "type": "result",
            "request_id": request_id,
            "error": error,
            "duration_ms": duration_ms,
            "max_memory_used_mb": _max_memory_used_mb(),
        },
        b"" if error is not None else body,
    )


def _end_of_output(request_id: str) -> None:
    """Flush what the handler wrote, then mark the end of this invoke's output for the parent.
    A handler that broke its streams must not take the worker down with it."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    with contextlib.suppress(OSError):
        os.write(1, f"END RequestId: {request_id}\n".encode())


def _die_with_parent(fd: int) -> None:
    """Watch the parent-watch pipe on a daemon thread; at EOF, end this process group."""
    os.set_inheritable(fd, False)

    def watch() -> None:
        with contextlib.suppress(OSError):
            while os.read(fd, 64):  # the parent never writes; b"" is EOF
                pass
        # The worker leads its own process group (the parent starts it in a new session):
        # the group is this worker and whatever its handler started. Anything else: just exit.
        if os.getpgid(0) == os.getpid():
            os.killpg(0, signal.SIGKILL)
        os._exit(137)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _options(arguments: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    """``--name VALUE`` pairs from the front of ``arguments``; the rest."""
    options: dict[str, list[str]] = {"--watch-fd": [], "--hold-fd": [], "--site-dir": []}
    while len(arguments) >= 2 and arguments[0] in options:
        options[arguments[0]].append(arguments[1])
        arguments = arguments[2:]
    return options, arguments


def main() -> int:
    options, _rest = _options(sys.argv[1:])
    for fd in options["--watch-fd"]:  # first of all: a slow import must not outlive the parent
        _die_with_parent(int(fd))
    for fd in options["--hold-fd"]:
        os.set_inheritable(int(fd), False)  # held until exit; the handler's children never get it
    channel = _take_over_stdio()
    task_root = os.path.realpath(os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd())
    context_class = _load_context_class()
    _setup_logging()
    # Only now, with the worker's own imports done, does the code go first on sys.path (Lambda's
    # runtime does the same with /var/task): its modules, and its bundled copies of libraries,
    # win over everything else, yet a file named like a stdlib module cannot break the worker.
    sys.path.insert(0, task_root)
    # On an interpreter other than the runner's, the runner's site-packages (boto3, as Lambda's
    # /var/runtime provides it) come after everything else: ``--site-dir DIR``, repeated.
    for directory in options["--site-dir"]:
        site.addsitedir(directory)
    try:
        handler = _load_handler(os.environ.get("_HANDLER", ""), task_root)
    except Exception as exc:  # a _Fault, or anything raised by the module's init code
        error = (
            _error(exc.message, exc.error_type, exc.trace)
            if isinstance(exc, _Fault)
            else _error_from_exception(exc)
        )
        _log_error(error)
        sys.stdout.flush()
        channel.send({"type": "init_error", "error": error})
        return 1
    streamkit = sys.modules.get("streamkit")
    channel.send({"type": "ready", "streamkit_file": getattr(streamkit, "__file__", None)})

    # The python3.12+ runtimes stopped escaping non-ASCII characters in responses.
    runtime = os.environ.get("AWS_EXECUTION_ENV", "").removeprefix("AWS_Lambda_python")
    ensure_ascii = tuple(int(p) for p in runtime.split(".") if p.isdigit()) < (3, 12)
    while True:
        message = channel.receive()
        if message is None:
            return 0
        request, event_body = message
        _invoke(channel, handler, context_class, request, event_body, ensure_ascii)


if __name__ == "__main__":
    sys.exit(main())
