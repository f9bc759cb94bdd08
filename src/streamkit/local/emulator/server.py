"""The embedded AWS emulator: moto's server, in-process, on real HTTP.

``Emulator`` runs moto's WSGI application (every service behind one endpoint, the service picked
from the request's SigV4 credential scope) on a threaded werkzeug server in a background thread.
boto3, the AWS CLI and Terraform talk to it like to any AWS endpoint.

moto keeps its state in process-wide backends: two emulators in one process share it, and
``moto.mock_aws`` in the same process resets it when it starts and stops.
"""

from __future__ import annotations

import errno
import socket
import threading
import time
import urllib.error
import urllib.request
from types import TracebackType
from typing import Any, Self

from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import BaseWSGIServer, make_server

from streamkit.exceptions import EmulatorError, PortInUseError
from streamkit.local.emulator.code_server import HEALTH_PATH, StreamkitRoutesMiddleware
from streamkit.local.emulator.integrations import enable_step_functions
from streamkit.local.emulator.moto_patches import (
    add_running_base_url,
    apply_moto_patches,
    remove_running_base_url,
)
from streamkit.local.emulator.streams_api import handle_streams_request
from streamkit.local.emulator.ttl_sweeper import TtlSweeper

__all__ = ["Emulator"]

# moto's own request log line per call is noise for tests and the CLI.
MotoRequestHandler.log_request = lambda *args, **kwargs: None  # type: ignore[method-assign]


# Services whose requests run one at a time, under one shared lock (see _Dispatcher.__call__).
_SERIALIZED_SERVICES = frozenset({"dynamodb", "dynamodbstreams"})


class _Dispatcher(DomainDispatcherApplication):
    """moto's dispatcher, with DynamoDB requests serialized and the backend lookup cached.

    - DynamoDB applies each write atomically, in one order per item, and numbers stream records
      uniquely. moto does neither under concurrent requests: StreamShard.add computes the next
      sequence number as ``len(items) + start`` before appending, and put/update read the old
      item before writing the new one. Concurrent writers (load tests, runners, handlers) then
      get duplicate sequence numbers and OldImage/NewImage chains that skip a version. Running
      DynamoDB requests one at a time restores AWS's guarantees; moto's DynamoDB handlers take
      about a millisecond and hold the GIL anyway, so little throughput is lost.
    - Stream reads share that lock. A cancelled TransactWriteItems in moto appends its stream
      records and then rolls the shard back (records and sequence counter); a GetRecords in
      between would see a change that never happened, and the next real write would reuse its
      sequence number, so a reader that checkpointed the phantom could skip a real record.
    - The host -> backend lookup is a pure function of the host string and scans moto's
      package directory on every call (see moto_patches.py, 5); it is cached.
    """

    def __init__(self) -> None:
        super().__init__(create_backend_app)
        self._backend_for_host: dict[str | None, Any] = {}
        shared = threading.Lock()
        self.dynamodb_lock = shared  # also held by the TTL sweeper while it deletes
        self._service_locks = dict.fromkeys(_SERIALIZED_SERVICES, shared)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        app = self.get_application(environ)
        lock = self._service_locks.get(getattr(app, "service", ""))
        if lock is None:
            return app(environ, start_response)
        with lock:
            # DynamoDB Streams reads are served by streams_api (faster, shards that live);
            # anything it leaves comes back as None and goes to moto.
            if getattr(app, "service", "") == "dynamodbstreams":
                answered = handle_streams_request(environ, start_response)
                if answered is not None:
                    return answered
            # Drain the body inside the lock: the response is built before it is returned.
            return list(app(environ, start_response))

    def get_backend_for_host(self, host: str | None) -> Any:
        try:
            return self._backend_for_host[host]
        except KeyError:
            backend = super().get_backend_for_host(host)
            self._backend_for_host[host] = backend
            return backend


class Emulator:
    """moto's server in a background thread.

    >>> with Emulator() as emu:          # port 0 (the default) picks a free port
    ...     boto3.client("dynamodb", endpoint_url=emu.endpoint_url)
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.requested_port = port
        self.startup_seconds: float | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._ttl: TtlSweeper | None = None

    @property
    def port(self) -> int:
        """The bound port (differs from the requested one when that was 0)."""
        return int(self._require_server().port)

    @property
    def endpoint_url(self) -> str:
        return _endpoint_url(self.host, self.port)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        """Bind, start serving, and wait until the first request is answered."""
        if self._server is not None:
            raise EmulatorError(f"emulator already running at {self.endpoint_url}")
        started = time.perf_counter()
        apply_moto_patches()
        enable_step_functions()  # state machines execute, integrations call this emulator
        listener = _bind(self.host, self.requested_port)
        dispatcher = _Dispatcher()
        app = StreamkitRoutesMiddleware(dispatcher)
        try:
            # werkzeug binds itself unless given a socket, and on EADDRINUSE it calls sys.exit;
            # handing it our own bound socket keeps errors ours to report.
            self._server = make_server(
                self.host,
                self.requested_port,
                app,
                threaded=True,
                request_handler=MotoRequestHandler,
                fd=listener.fileno(),
            )
        finally:
            listener.close()  # werkzeug duplicated the descriptor
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name=f"streamkit-emulator-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._ttl = TtlSweeper(dispatcher.dynamodb_lock).start()
        self._wait_until_answering()
        add_running_base_url(self.endpoint_url)
        self.startup_seconds = time.perf_counter() - started
        return self

    def stop(self) -> None:
        """Stop serving and release the port. Safe to call twice."""
        server, thread, ttl = self._server, self._thread, self._ttl
        self._server, self._thread, self._ttl = None, None, None
        if ttl is not None:
            ttl.stop()
        if server is None:
            return
        remove_running_base_url(_endpoint_url(self.host, int(server.port)))
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=10)

    def reset(self) -> None:
        """Drop every resource in every service (moto's ``POST /moto-api/reset``).

        moto's state is process-wide: this also empties other emulators in this process.
        """
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.endpoint_url if self._server else f"{self.host}:{self.requested_port}"
        return f"Emulator({where}, running={self.running})"

    def _require_server(self) -> BaseWSGIServer:
        if self._server is None:
            raise EmulatorError("emulator is not running; call start() first")
        return self._server

    def _wait_until_answering(self, timeout: float = 30.0) -> None:
        # The listening socket exists before the thread starts, so the kernel accepts the
        # connection at once; the answer proves the serving thread is running requests. The
        # probe is answered by streamkit's middleware, not moto: moto's /moto-api/data.json
        # serializes every resource in the process and fails with HTTP 500 once any Lambda
        # function exists (its lambda model starts a docker client), and moto's state is shared
        # by every emulator in the process, so a second emulator could never become ready.
        deadline = time.monotonic() + timeout
        url = f"{self.endpoint_url}{HEALTH_PATH}"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    response.read()
                return
            except urllib.error.HTTPError as exc:
                # The server answered, wrongly: waiting would not change that.
                self.stop()
                raise EmulatorError(f"emulator answered {url} with HTTP {exc.code}") from exc
            except OSError as exc:
                if time.monotonic() > deadline:
                    self.stop()
                    raise EmulatorError(f"emulator did not answer at {url}: {exc}") from exc
                time.sleep(0.02)


def _endpoint_url(host: str, port: int) -> str:
    # A wildcard bind is reachable on loopback; a client cannot connect to "0.0.0.0".
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Same as werkzeug/socketserver: lets a restarted emulator reuse a port in TIME_WAIT.
        # On Linux it does not allow binding a port another socket is listening on.
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
    except OSError as exc:
        listener.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(host, port) from exc
        raise EmulatorError(f"cannot start the emulator on {host}:{port}: {exc}") from exc
    return listener
